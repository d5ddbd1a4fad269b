"""envlock's cache directory: answers a capture can reuse while their source files are unchanged.

Each cached answer is stored with the identity (size, mtime, inode, ...) of
the files it was derived from and used only while those are unchanged, so
the cache saves time and never changes a lock.  ``ENVLOCK_CACHE_DIR`` moves
the directory (default ``$XDG_CACHE_HOME/envlock``, else ``~/.cache/envlock``);
``ENVLOCK_NO_CACHE`` turns the caches that honour it off (measurements).
A cache that cannot be read is empty; one that cannot be written costs
speed, never the capture.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import Any


def cache_dir() -> str:
    configured = os.environ.get("ENVLOCK_CACHE_DIR")
    if configured:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "envlock")


def enabled() -> bool:
    return not os.environ.get("ENVLOCK_NO_CACHE")


def file_identity(path: str) -> list[int] | None:
    """What a cached answer about ``path`` is valid for: size, modification and change times, inode, device.

    The change time moves on every write and on every ``chmod``/``rename``
    onto the path, and cannot be set back by a program (``touch -d`` sets
    the modification time only).  ``None`` when the file cannot be stat'ed.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def load_json(name: str) -> Any:
    """The JSON document stored as ``name``, or ``None`` when it is missing or unreadable."""
    try:
        with open(os.path.join(cache_dir(), name), "rb") as handle:
            return json.loads(handle.read())
    except (OSError, ValueError, RecursionError):
        return None


def save_json(name: str, data: Any, **dumps_options: Any) -> None:
    """Store ``data`` as ``name``, replacing the file atomically."""
    from envlock.errors import EnvlockError
    from envlock.lockfile.write import atomic_write_text

    path = os.path.join(cache_dir(), name)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write_text(path, json.dumps(data, **dumps_options))
    except (OSError, ValueError, EnvlockError):
        pass  # a read-only home: the next capture computes the answer again
