"""The base image the lock names by digest: used when the engine or a registry has those bytes, never a re-pointed tag.

A lock's ``[base-image]`` table says which image the environment ran in
(``reference`` as pulled, ``digest`` of its manifest).  Replay starts from
``name@digest``: the engine's copy when it has one, else a pull by digest.
A tag is a pointer the registry may move (NVIDIA deletes CUDA tags after end
of life, and re-pushes fix releases under the same tag), so it is never
followed silently: when the digest cannot be had, replay stops and lists what
would work, including what the tag points to now, for the user to choose.
"""

from __future__ import annotations

from envlock.errors import EnvlockError
from envlock.lockfile import model as m
from envlock.replay.base_matrix import check_digest, check_image_ref


class BaseImageUnavailable(EnvlockError):
    """The locked base image's digest is neither in the engine nor in its registry: nothing was built (exit 1)."""

    exit_code = 1


def repository_of(reference: str) -> str:
    """``registry:5000/path/name:tag@sha256:...`` -> ``registry:5000/path/name`` (pure)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: len(name) - len(last[-1])] + last[-1].split(":", 1)[0]
    return name


def locked_reference(lock: m.Lock) -> tuple[str, str] | None:
    """(reference as locked, ``name@digest``) when the lock pins its base image by digest; checked (pure)."""
    base = lock.base_image
    if base is None or not base.digest or not base.reference:
        return None
    reference = check_image_ref(base.reference, "base-image.reference")
    digest = check_digest(base.digest)
    return reference, f"{repository_of(reference)}@{digest}"


def unavailable_message(reference: str, by_digest: str, tag_now: str | None) -> tuple[str, str]:
    """The error's message and hint: what is missing, and every way on (pure)."""
    ways = [
        f"`docker load` an image saved from {by_digest} (or replay from an `envlock pack`, which carries it)",
        "push those bytes back to the registry under any tag (the digest does not change)",
    ]
    if tag_now and tag_now != by_digest.split("@", 1)[1]:
        ways.append(f"accept what {reference} points to now ({tag_now}, different bytes) with --base-image {reference}")
    elif tag_now is None:
        ways.append(f"the tag {reference} is gone too; pass --base-image IMAGE to start from another image")
    message = (
        f"the lock's base image {by_digest} is not in the engine and the registry does not have it "
        "(manifest unknown); nothing was built, and the tag is not followed silently"
    )
    return message, "; or ".join(ways)


def resolve_locked_base(lock: m.Lock, engine, pull: bool = True) -> str | None:
    """``name@digest`` ready in the engine (pulled by digest if needed), ``None`` when the lock names no digest.

    ``BaseImageUnavailable`` when neither the engine nor the registry has the digest.
    """
    locked = locked_reference(lock)
    if locked is None:
        return None
    reference, by_digest = locked
    if engine.resolve(by_digest, pull=pull) is not None:
        return by_digest
    if not pull:
        return by_digest  # a dry run: the Dockerfile names the digest; nothing is fetched
    now = engine.resolve(reference, pull=True)
    tag_now = None
    if now is not None:
        repo = repository_of(reference)
        digests = [d.split("@", 1)[1] for d in now.repo_digests if d.split("@", 1)[0] == repo]
        tag_now = digests[0] if digests else now.id
    message, hint = unavailable_message(reference, by_digest, tag_now)
    raise BaseImageUnavailable(message, hint=hint)
