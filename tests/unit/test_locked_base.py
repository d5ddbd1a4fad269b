"""The lock's base image by digest: references parsed, and the message when the digest is gone (pure parts)."""

from __future__ import annotations

import pytest

from envlock.errors import ReplayError
from envlock.lockfile import BaseImageSection, Lock
from envlock.replay.locked_base import locked_reference, repository_of, unavailable_message

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    "reference, repository",
    [
        ("python:3.11-slim", "python"),
        ("127.0.0.1:5000/team/base:1", "127.0.0.1:5000/team/base"),
        ("127.0.0.1:5000/team/base", "127.0.0.1:5000/team/base"),
        (f"nvcr.io/nvidia/cuda:12.1.0-runtime@{DIGEST}", "nvcr.io/nvidia/cuda"),
    ],
)
def test_repository_of_drops_tag_and_digest_but_not_a_registry_port(reference, repository):
    assert repository_of(reference) == repository


def test_locked_reference_names_the_digest_and_checks_both_values():
    lock = Lock(base_image=BaseImageSection(reference="127.0.0.1:5000/team/base:1", digest=DIGEST))
    assert locked_reference(lock) == ("127.0.0.1:5000/team/base:1", f"127.0.0.1:5000/team/base@{DIGEST}")
    assert locked_reference(Lock()) is None
    assert locked_reference(Lock(base_image=BaseImageSection(reference="python:3.11"))) is None
    with pytest.raises(ReplayError) as caught:
        locked_reference(Lock(base_image=BaseImageSection(reference="python:3.11 AS x", digest=DIGEST)))
    assert "base-image.reference" in caught.value.message


def test_unavailable_message_lists_what_would_work_and_never_picks_the_tag():
    message, hint = unavailable_message("reg/base:1", f"reg/base@{DIGEST}", OTHER)
    assert "manifest unknown" in message and DIGEST in message
    assert "docker load" in hint and "envlock pack" in hint
    assert f"{OTHER}, different bytes) with --base-image reg/base:1" in hint
    _, hint = unavailable_message("reg/base:1", f"reg/base@{DIGEST}", None)
    assert "the tag reg/base:1 is gone too" in hint
