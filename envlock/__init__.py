"""envlock: lock, replay and audit the whole stack of a machine-learning environment.

The Python API, for a training script that records its environment with every run::

    import envlock

    lock = envlock.capture()                 # this interpreter's environment, private by default
    envlock.save(lock, "runs/42/envlock.lock")
    later = envlock.load("runs/42/envlock.lock")
    for finding in envlock.check(later):     # drift of this environment from the lock
        print(finding.path, finding.message)
    envlock.diff(later, envlock.capture())   # list[Finding], most likely to change numbers first

Each function does what the command of the same name does, with the same
validation and privacy (no host names, user names, home paths or GPU serials
unless ``include_private=True``).  Bad input raises
:class:`envlock.errors.EnvlockError` (a ``ValueError`` for a bad lockfile).

``import envlock`` imports nothing else: each function imports what it needs
when it is called, so the import stays as cheap as ``envlock --help``.

``envlock.capture``, ``envlock.diff`` and ``envlock.check`` are also the
names of modules (the probes, the diff, the check); once one is imported,
Python binds its name here to the module.  Those modules are therefore
callable and do what the function of the same name does (``_callable_module``).
"""

# No `from __future__ import annotations`: it would be one more module on every import;
# the annotations that name envlock types are strings instead.
__version__ = "0.1.0"
__all__ = ["capture", "check", "diff", "load", "save"]

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Callable

    from envlock.findings import Finding
    from envlock.lockfile.model import Lock


def capture(python: str | None = None, *, include_private: bool = False, project_dir: str = ".") -> "Lock":
    """Capture this machine and an interpreter's environment (``python``: a path; default: this one).

    The same capture as ``envlock capture``: every layer, never the network,
    never an import of your frameworks; ``project_dir`` is where git state is read.
    """
    from envlock.capture.collect import capture_lock

    return capture_lock(python, include_private=include_private, project_dir=project_dir)


def load(path: "str | os.PathLike") -> "Lock":
    """Read and fully validate a lockfile (the loader every command uses); raises on any problem."""
    from envlock.lockfile.io import load_lock

    return load_lock(path).lock


def save(lock: "Lock", path: "str | os.PathLike") -> None:
    """Write ``lock`` to ``path`` atomically, after checking it reads back valid.

    A lock that would not load again (a value the loader refuses) raises and
    leaves ``path`` as it was.
    """
    from envlock.lockfile.io import parse_lock
    from envlock.lockfile.write import atomic_write_text, dumps_lock

    text = dumps_lock(lock, "envlock.save()")
    parse_lock(text.encode("utf-8"), source=str(path))
    atomic_write_text(path, text)


def diff(a: "Lock | str | os.PathLike", b: "Lock | str | os.PathLike") -> "list[Finding]":
    """Every difference between two locks (or lockfile paths), most likely to change numbers first."""
    from envlock.diff import diff as diff_locks

    return diff_locks(_as_lock(a), _as_lock(b), labels=("A", "B"))


def check(lock: "Lock | str | os.PathLike", python: str | None = None) -> "list[Finding]":
    """Drift of this environment (or interpreter ``python``) from ``lock``, software layers only.

    As ``envlock check``: hardware and git state are left to ``diff``; an empty
    list (or only ``unknown`` findings) means no drift.
    """
    from envlock.check import check_live

    return check_live(_as_lock(lock), python)[0]


# The functions by name, for the modules that share their names (see the module docstring).
_API: "dict[str, Callable[..., object]]" = {"capture": capture, "diff": diff, "check": check}
_callable_class: "type | None" = None


def _callable_module(module_name: str) -> None:
    """Make ``envlock.<name>`` (a module of the same name as an API function) call that function."""
    import sys

    global _callable_class
    if _callable_class is None:
        from types import ModuleType

        class CallableModule(ModuleType):
            def __call__(self, *args: object, **kwargs: object) -> object:
                return _API[self.__name__.rsplit(".", 1)[1]](*args, **kwargs)

        _callable_class = CallableModule
    sys.modules[module_name].__class__ = _callable_class


def _as_lock(value: object) -> "Lock":
    import os

    from envlock.lockfile.model import Lock

    if isinstance(value, Lock):
        return value
    if isinstance(value, (str, os.PathLike)):
        return load(value)
    raise TypeError(f"expected an envlock Lock or a lockfile path, not {type(value).__name__}")
