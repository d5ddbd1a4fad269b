"""The lockfile: model, validation, and safe reading and writing.

One loader serves every command (capture, replay, diff, doctor), so the same
limits and the same errors apply everywhere (THREATS.md: no parser differential).

The names below are imported on first use (PEP 562): capture, which only
writes, would otherwise import the loader (``io``) and its TOML parser, and
every ``from envlock.lockfile import codec`` would import all of them.
"""

from __future__ import annotations

# name -> the module that defines it
_EXPORTS = {
    "canonical_json": "identity",
    "fingerprint": "identity",
    "strip_private": "private",
    "to_dict": "codec",
    "with_fingerprint": "identity",
    "LoadedLock": "io",
    "load_lock": "io",
    "parse_lock": "io",
    "atomic_write_text": "write",
    "dumps_lock": "write",
    "write_lock": "write",
    "LOCK_VERSION": "model",
    "CondaPackage": "model",
    "CondaSection": "model",
    "CpuSection": "model",
    "CudaComponent": "model",
    "CudaSection": "model",
    "FrameworkBuild": "model",
    "Gpu": "model",
    "Lock": "model",
    "NativeLibrary": "model",
    "NvidiaSection": "model",
    "OsPackage": "model",
    "OsSection": "model",
    "BaseImageSection": "model",
    "ProjectSection": "model",
    "PythonPackage": "model",
    "PythonSection": "model",
    "RuntimeSection": "model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
