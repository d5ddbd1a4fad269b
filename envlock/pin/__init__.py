"""``envlock pin``: the one deliberate network step, from versions to artifacts (issue 11).

A captured lock says *which* artifact was installed (wheel tags, build tag,
content digest) but not where to get it again.  Pinning asks the world once
and writes the answer into the lock (atomically; the fingerprint covers it):

- the Python layer (:mod:`envlock.pin.python`): for every distribution from an
  index, the exact file with its URL, sha256, size and upload time;
- other artifact kinds plug in as one step each: a function
  ``step(lock, request) -> LayerPin`` listed in :data:`STEPS`.  A step returns
  the sections it changed (``{"python": PythonSection(...)}``), never a whole
  lock, so steps run concurrently and cannot undo each other's work.

Nothing here is used by replay: replay reads the pins from the lock.
"""

from __future__ import annotations

from envlock import records
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from envlock.findings import Finding
    from envlock.lockfile import model as m


@record
class PinRequest:
    """What the user asked for: the indexes, in order (``--index-url`` first), and how long to wait."""

    index_urls: tuple[str, ...] = ()
    extra_index_urls: tuple[str, ...] = ()
    timeout: float = 30.0
    snapshot_url: str | None = None  # the snapshot archive's API (default: snapshot.debian.org)
    base_image: str | None = None  # the image the environment ran in, recorded by its registry digest


@record
class LayerPin:
    """One step's answer: the lock sections it replaces, what the report says, and how many items it pinned."""

    layer: str
    sections: dict[str, Any]
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()
    pinned: int = 0
    total: int = 0


@record
class PinOutcome:
    lock: m.Lock
    layers: tuple[LayerPin, ...]

    @property
    def findings(self) -> list[Finding]:
        return [f for layer in self.layers for f in layer.findings]

    @property
    def notes(self) -> list[str]:
        return [n for layer in self.layers for n in layer.notes]


def _python_step(lock: m.Lock, request: PinRequest) -> LayerPin:
    from envlock.pin.python import pin_python

    return pin_python(lock, request)


def _os_step(lock: m.Lock, request: PinRequest) -> LayerPin:
    from envlock.pin.os_layer import pin_os

    return pin_os(lock, request)


def _base_image_step(lock: m.Lock, request: PinRequest) -> LayerPin:
    from envlock.pin.base_image import pin_base_image

    return pin_base_image(lock, request)


# (layer, step) in report order.  Other artifact kinds add their step here.
STEPS: list[tuple[str, Callable[[m.Lock, PinRequest], LayerPin]]] = [
    ("python", _python_step),
    ("os", _os_step),
    ("base-image", _base_image_step),
]


def pin_lock(lock: m.Lock, request: PinRequest) -> PinOutcome:
    """Run every step (concurrently: each waits on the network) and merge their sections into the lock."""
    from concurrent.futures import ThreadPoolExecutor

    from envlock.lockfile import identity

    with ThreadPoolExecutor(max_workers=max(1, len(STEPS))) as pool:
        futures = [pool.submit(step, lock, request) for _name, step in STEPS]
        layers = tuple(future.result() for future in futures)
    sections: dict[str, Any] = {}
    for layer in layers:
        sections.update(layer.sections)
    pinned = records.replace(lock, **sections) if sections else lock
    return PinOutcome(identity.with_fingerprint(pinned), layers)
