"""Dotted release numbers as integers: the one parser for every version that is not a PEP 440 version.

Driver versions (``570.26`` vs ``570.124.06``), Docker client versions
(``20.10.24+dfsg1``), glibc, CUDA and Python releases compare field by field
as integers.  PEP 440 versions of Python packages go through ``packaging``.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[0-9]+")


def release_tuple(text: str | None) -> tuple[int, ...] | None:
    """The leading dotted numbers as integers: ``"580.65.06"`` -> ``(580, 65, 6)``.

    A leading ``v`` is allowed (``v23.0``); reading stops at the first field
    that does not start with a digit and after a field with a suffix
    (``"20.10.24+dfsg1"`` -> ``(20, 10, 24)``).  ``None`` when there is no
    leading number.
    """
    if not text:
        return None
    text = text.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    parts = []
    for piece in text.split("."):
        match = _NUMBER.match(piece)
        if not match:
            break
        parts.append(int(match.group()))
        if match.end() != len(piece):
            break
    return tuple(parts) or None


def major_minor(text: str | None) -> tuple[int, int] | None:
    """``(major, minor)`` of a release (``"3.11.7"`` -> ``(3, 11)``); ``None`` without both."""
    parts = release_tuple(text)
    return (parts[0], parts[1]) if parts and len(parts) >= 2 else None


def minor(text: str | None) -> str | None:
    """The ``major.minor`` text of a release (``"3.11.7"`` -> ``"3.11"``), as Python and CUDA minors are named."""
    pair = major_minor(text)
    return f"{pair[0]}.{pair[1]}" if pair else None
