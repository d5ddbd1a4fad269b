"""Build contexts: the files sent to the engine, as a deterministic tar or a directory.

Sorted, root-owned, with one fixed modification time, so that the same
context gives the same bytes (and the engine's cache hits) on every machine.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

from envlock.errors import EngineError
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Iterable

_FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z


@record
class ContextFile:
    """One file of a build context (path inside the context, bytes, mode)."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    # A file on this machine to send instead of ``data`` (wheels can be
    # gigabytes: they are streamed from disk, never read into memory).
    source: str | None = None


def context_tar(files: Iterable[ContextFile]) -> bytes:
    """A deterministic tar of the build context: sorted, root-owned, fixed mtime."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in sorted(files, key=lambda f: f.path):
            _check_context_path(item.path)
            info = tarfile.TarInfo(item.path)
            info.mode = item.mode
            info.mtime = _FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if item.source is not None:
                info.size = os.path.getsize(item.source)
                with open(item.source, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                info.size = len(item.data)
                tar.addfile(info, io.BytesIO(item.data))
    return buffer.getvalue()


def write_context_dir(files: Iterable[ContextFile], directory: str | os.PathLike) -> None:
    """Write a build context to a directory, with the same fixed metadata as ``context_tar``."""
    root = Path(directory)
    for item in files:
        _check_context_path(item.path)
        target = root / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if item.source is not None:
            shutil.copyfile(item.source, target)
        else:
            target.write_bytes(item.data)
        os.chmod(target, item.mode)
        os.utime(target, (_FIXED_MTIME, _FIXED_MTIME))


def context_digest(files: Iterable[ContextFile], *facts: str) -> str:
    """One sha256 naming what a build starts from: every file's path, mode and content, and ``facts``.

    A file sent from disk counts by its path and size, not its bytes: a wheel
    is named with its sha256 in the requirements (whose bytes count) and the
    build installs it only if that hash matches; uv's binary was checked
    against the wheel sha256 pinned in envlock, whose uv wheel is one of the
    facts.  Reading gigabytes again would add nothing.  ``facts`` are what
    else decides the result (the base image's id, the builder, the network).
    """
    import hashlib

    digest = hashlib.sha256()
    for fact in facts:
        digest.update(f"fact {len(fact)} {fact}\n".encode())
    for item in sorted(files, key=lambda f: f.path):
        _check_context_path(item.path)
        if item.source is not None:
            content = f"file of {os.path.getsize(item.source)} bytes"
        else:
            content = hashlib.sha256(item.data).hexdigest()
        digest.update(f"{item.path}\0{item.mode:o}\0{content}\n".encode())
    return "sha256:" + digest.hexdigest()


def _check_context_path(path: str) -> None:
    parts = Path(path).parts
    if not parts or Path(path).is_absolute() or ".." in parts:
        raise EngineError(f"build context path {path!r} escapes the context")
