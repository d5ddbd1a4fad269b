"""The base image's pin step: record the image the environment ran in by its registry digest (``--base-image``)."""

from __future__ import annotations

from envlock.findings import DIFFERS, NOT_REPRODUCIBLE, Finding
from envlock.pin import LayerPin, PinRequest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from envlock.lockfile import model as m


def pin_base_image(lock: m.Lock, request: PinRequest) -> LayerPin:
    """``[base-image]`` with the digest the engine or its registry gives for ``request.base_image``."""
    if not request.base_image:
        return LayerPin("base-image", {})
    from envlock.lockfile import model as m
    from envlock.replay.base_matrix import check_image_ref
    from envlock.replay.engine import DockerEngine
    from envlock.replay.locked_base import repository_of

    reference = check_image_ref(request.base_image, "--base-image")
    engine = DockerEngine()
    found = engine.resolve(reference, pull=True)
    repo = repository_of(reference)
    digests = sorted(d.split("@", 1)[1] for d in (found.repo_digests if found else ()) if d.split("@", 1)[0] == repo)
    if not digests:
        why = (
            "it is not in the engine and cannot be pulled"
            if found is None
            else "it was never pushed to or pulled from a registry"
        )
        finding = Finding(
            "host",
            "base-image",
            DIFFERS,
            f"{reference} has no registry digest: {why}",
            fix="push it to a registry (or pull it from one) and pin again, or pack the lock with `envlock pack`",
            status=NOT_REPRODUCIBLE,
            rank=150,
        )
        return LayerPin("base-image", {}, findings=(finding,), total=1)
    section = m.BaseImageSection(reference=reference, digest=digests[0])
    return LayerPin(
        "base-image", {"base_image": section}, notes=(f"base image {reference} is {digests[0]}",), pinned=1, total=1
    )
