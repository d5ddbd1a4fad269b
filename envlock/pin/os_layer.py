"""The OS layer's pin step: anchor the lock's Debian/Ubuntu packages in time (see :mod:`envlock.os_anchor`)."""

from __future__ import annotations

from envlock.pin import LayerPin, PinRequest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from envlock.lockfile import model as m


def pin_os(lock: m.Lock, request: PinRequest) -> LayerPin:
    """``os.snapshot-time`` and each hand-installed package's ``first-seen``, as the ``os`` section."""
    from envlock.os_anchor import anchor_os
    from envlock.replay.snapshot import DEBIAN_SNAPSHOT

    if lock.os is None or not lock.os.packages:
        return LayerPin("os", {}, notes=(), pinned=0, total=0)
    anchored, notes = anchor_os(lock, request.snapshot_url or DEBIAN_SNAPSHOT)
    assert anchored.os is not None  # anchoring keeps the OS section it was given
    manual = [p for p in anchored.os.packages if p.manual is True]
    placed = sum(1 for p in manual if p.first_seen)
    if anchored.os.snapshot_time:
        notes = [f"OS layer anchored at {anchored.os.snapshot_time} for the snapshot archive", *notes]
    return LayerPin("os", {"os": anchored.os}, notes=tuple(notes), pinned=placed, total=len(manual))
