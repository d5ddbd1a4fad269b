"""The one parser of dotted release numbers (drivers, Docker clients, glibc, Python and CUDA minors)."""

from __future__ import annotations

import pytest

from envlock.versions import major_minor, minor, release_tuple


@pytest.mark.parametrize(
    "text, expected",
    [
        ("580.65.06", (580, 65, 6)),
        ("570.26", (570, 26)),
        ("20.10.24+dfsg1", (20, 10, 24)),
        ("v23.0", (23, 0)),
        ("  19.03.15\n", (19, 3, 15)),
        ("3.11.7rc1", (3, 11, 7)),
        ("12.x", (12,)),
        ("dev", None),
        ("", None),
        (None, None),
    ],
)
def test_release_tuple(text, expected):
    assert release_tuple(text) == expected


def test_driver_versions_compare_field_by_field():
    assert release_tuple("570.124.06") > release_tuple("570.26")


@pytest.mark.parametrize(
    "text, pair, name",
    [("3.11.7", (3, 11), "3.11"), ("12.4", (12, 4), "12.4"), ("12", None, None), (None, None, None)],
)
def test_minor(text, pair, name):
    assert major_minor(text) == pair
    assert minor(text) == name
