"""Test inputs for the replay tests: lockfiles and recorded resolver answers (tests/data/lockfiles)."""

from __future__ import annotations

import json
from pathlib import Path

from envlock.lockfile import load_lock
from envlock.resolve import Pin, PinSet, Problem

LOCKS = Path(__file__).resolve().parent.parent / "data" / "lockfiles"
DOCKERFILES = Path(__file__).resolve().parent.parent / "data" / "dockerfiles"


def lock(name: str):
    return load_lock(LOCKS / f"{name}.lock").lock


def pins(name: str) -> PinSet:
    """A PinSet from a recorded resolver answer (``<name>.pins.json``)."""
    data = json.loads((LOCKS / f"{name}.pins.json").read_text(encoding="utf-8"))
    return PinSet(
        pins=tuple(Pin(**item) for item in data["pins"]),
        problems=tuple(Problem(**item) for item in data["problems"]),
    )
