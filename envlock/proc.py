"""The one way envlock runs another program.

An argv list, never a shell; a timeout; the command logged with ``shlex.join``
when ``ENVLOCK_DEBUG`` is set.  A program that is missing or times out gives
``None`` (probes record the thing as absent), never an exception.
"""

from __future__ import annotations

import os
import subprocess
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Mapping, Sequence


def run(
    argv: Sequence[str],
    *,
    timeout: float = 30,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    input_text: str | None = None,
    text: bool = True,
) -> subprocess.CompletedProcess | None:
    """``text=False`` gives stdout as bytes, untranslated (a hash of ``git diff`` output needs its exact bytes)."""
    if os.environ.get("ENVLOCK_DEBUG"):
        import shlex

        print(f"envlock: running {shlex.join(argv)}", file=sys.stderr)
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=text,
            errors="replace" if text else None,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            input=input_text,
            shell=False,
            check=False,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError, subprocess.TimeoutExpired, OSError):
        return None
