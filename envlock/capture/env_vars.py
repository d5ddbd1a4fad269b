"""Read the numerics environment variables of this process (the allow-list is the lockfile's)."""

from __future__ import annotations

import os

from envlock.lockfile.allowed_env import is_allowed_env_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Mapping


def select_numerics_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed variables of ``environ`` (pure)."""
    return {name: environ[name] for name in sorted(environ) if is_allowed_env_name(name)}


def read_numerics_env() -> dict[str, str]:
    return select_numerics_env(os.environ)
