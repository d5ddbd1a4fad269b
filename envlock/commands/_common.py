"""Small helpers shared by command modules."""

from __future__ import annotations

import sys

from envlock.lockfile.io import LoadedLock

DEFAULT_LOCK = "envlock.lock"


def load_lock_reporting(path: str) -> LoadedLock:
    """Load a lockfile and print its warnings (edited, newer minor version) to stderr."""
    from envlock.lockfile.io import load_lock

    loaded = load_lock(path)
    for warning in loaded.warnings:
        print(f"envlock: warning: {warning}", file=sys.stderr)
    return loaded


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
