"""Package-name normalisation (PEP 503), the one spelling every part of envlock compares names in.

Written out rather than taken from ``packaging.utils``: importing that module
pulls in ``packaging.tags`` and ``logging`` (about 60 ms), which the loader and
capture would otherwise pay on every run.  ``tests/unit/test_loader_memos.py``
holds it equal to packaging's on generated names.
"""

from __future__ import annotations

import re

_NAME_SEPARATORS = re.compile(r"[-_.]+")
# What PEP 503 normalisation changes in ASCII: upper case, "_" and "."
# (always replaced by "-"), and runs of "-".  An ASCII name without any of
# these is already canonical, as every name capture writes is, and one search
# is cheaper than a substitution (5,000 names: 40 ms -> 8 ms).
_NOT_CANONICAL = re.compile(r"[A-Z_.]|--")


def canonical_name(name: str) -> str:
    """``name`` as PEP 503 normalises it: lower case, each run of ``-_.`` one ``-``."""
    if name.isascii() and _NOT_CANONICAL.search(name) is None:
        return name
    return _NAME_SEPARATORS.sub("-", name).lower()


def canonical_names(names: list[str]) -> list[str]:
    """``canonical_name`` of each name; one search over all of them when all are canonical already.

    Joined with a newline, which no valid name contains and which forms no
    "--" across two names.
    """
    joined = "\n".join(names)
    if joined.isascii() and _NOT_CANONICAL.search(joined) is None:
        return names
    return [canonical_name(name) for name in names]
