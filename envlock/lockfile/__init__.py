"""The lockfile: model, validation, and safe reading and writing.

One loader serves every command (capture, replay, diff, doctor), so the same
limits and the same errors apply everywhere (THREATS.md: no parser differential).
"""

from envlock.lockfile.codec import canonical_json, fingerprint, strip_private, to_dict, with_fingerprint
from envlock.lockfile.io import LoadedLock, load_lock, parse_lock
from envlock.lockfile.write import atomic_write_text, dumps_lock, write_lock
from envlock.lockfile.model import (
    LOCK_VERSION,
    CondaPackage,
    CondaSection,
    CpuSection,
    CudaComponent,
    CudaSection,
    FrameworkBuild,
    Gpu,
    Lock,
    NativeLibrary,
    NvidiaSection,
    OsPackage,
    OsSection,
    ProjectSection,
    PythonPackage,
    PythonSection,
    RuntimeSection,
)

__all__ = [
    "LOCK_VERSION",
    "CondaPackage",
    "CondaSection",
    "CpuSection",
    "CudaComponent",
    "CudaSection",
    "FrameworkBuild",
    "Gpu",
    "LoadedLock",
    "Lock",
    "NativeLibrary",
    "NvidiaSection",
    "OsPackage",
    "OsSection",
    "ProjectSection",
    "PythonPackage",
    "PythonSection",
    "RuntimeSection",
    "atomic_write_text",
    "canonical_json",
    "dumps_lock",
    "fingerprint",
    "load_lock",
    "parse_lock",
    "strip_private",
    "to_dict",
    "with_fingerprint",
    "write_lock",
]
