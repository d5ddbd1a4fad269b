"""Validate a whole lock: every field (through the codec) and the rules that span fields."""

from __future__ import annotations

from envlock.errors import LockfileError
from envlock.lockfile import model as m
from envlock.lockfile.allowed_env import is_allowed_env_name
from envlock.lockfile.codec import from_dict
from envlock.names import canonical_names

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable, Hashable, Sequence
    from typing import Any


def validate_lock_data(data: object) -> m.Lock:
    """Plain data (a parsed TOML document) to a validated Lock, or LockfileError listing every problem."""
    problems: list[str] = []
    lock = from_dict(m.Lock, data, "", problems)
    if lock is not None:
        problems.extend(semantic_problems(lock))
    if problems:
        raise LockfileError(
            f"the lockfile has {len(problems)} problem{'s' if len(problems) != 1 else ''}:",
            hint="fix the fields named above, or re-create the file with `envlock capture`",
            problems=problems,
        )
    return lock


def semantic_problems(lock: m.Lock) -> list[str]:
    """Checks that span fields: duplicates after normalisation, allowed env names."""
    problems: list[str] = []
    if lock.python is not None:
        packages = lock.python.packages
        names = canonical_names([pkg.name for pkg in packages])
        if len(set(names)) != len(names):
            seen: dict[str, int] = {}
            for i, (pkg, norm) in enumerate(zip(packages, names, strict=True)):
                if norm in seen:
                    problems.append(
                        f"python.packages[{i}].name: {pkg.name!r} duplicates python.packages[{seen[norm]}] after name normalisation"
                    )
                seen.setdefault(norm, i)
    if lock.conda is not None:
        _report_repeats([cpkg.name for cpkg in lock.conda.packages], "conda.packages", problems)
    if lock.os is not None:
        # dpkg lists one package once per architecture (libc6:amd64 and libc6:i386).
        idents = [(opkg.name, opkg.architecture) for opkg in lock.os.packages]
        _report_repeats(idents, "os.packages", problems, shown=lambda ident: ident[0])
    if lock.runtime is not None and lock.runtime.env:
        for name in lock.runtime.env:
            if not is_allowed_env_name(name):
                problems.append(
                    f"runtime.env.{name}: not an allow-listed numerics variable; envlock never records or sets it"
                )
    return problems


def _report_repeats(
    idents: Sequence[Hashable],
    where: str,
    problems: list[str],
    shown: Callable[[Any], object] | None = None,
) -> None:
    """``where[i].name: ... is listed twice`` for each identity seen before position ``i``.

    Duplicates are rare: distinct identities are counted first and searched
    for only when there are some.
    """
    if len(set(idents)) == len(idents):
        return
    seen: set[Hashable] = set()
    for i, ident in enumerate(idents):
        if ident in seen:
            problems.append(f"{where}[{i}].name: {(shown(ident) if shown else ident)!r} is listed twice")
        seen.add(ident)
