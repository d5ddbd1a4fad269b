"""Read a text file of the host, or of a recorded host folder standing in for it.

Every OS/CPU probe takes a ``root`` (default ``/``) so tests can point it at
``tests/data/hosts/<name>/``; this is the one place that joins and reads.
"""

from __future__ import annotations

import os


def read_host_text(root: str, path: str) -> str | None:
    """The text of ``root``/``path`` (undecodable bytes replaced), or ``None`` when it cannot be read."""
    try:
        with open(os.path.join(root, path.lstrip("/")), encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None
