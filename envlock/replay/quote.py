"""The one quoting helper for values written into a Dockerfile.

Docker's parser treats ``ENV`` and ``LABEL`` values as shell-like words: in a
double-quoted word ``\\`` escapes ``"``, ``$`` and ``\\`` itself, and ``$NAME`` /
``${NAME}`` are expanded from the build environment.  A lockfile value must come
out of the parser exactly as it went in, so every one of those characters is
escaped; characters that end or split a Dockerfile line (CR, LF, the other C0/C1
controls, U+2028/2029) have no escape at all and are refused: the lockfile
loader already rejects them, this is the second fence.

``RUN`` and ``COPY`` arguments go through :func:`exec_form` instead: a JSON
array, so no shell ever sees a lockfile value.  Docker falls back to *shell
form* when the JSON does not parse, so the array is produced by ``json.dumps``
and never by string concatenation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from envlock.errors import ReplayError

# Anything that could end a Dockerfile line, hide text or confuse a reader.
_UNQUOTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_ESCAPED = re.compile(r'(["$\\])')
# Keys we write ourselves (LABEL org.envlock.*) or names already checked by the
# lockfile (environment variables): no quoting needed, so a strict charset.
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _refuse_unquotable(value: str, what: str) -> None:
    match = _UNQUOTABLE.search(value)
    if match:
        raise ReplayError(
            f"{what}: contains U+{ord(match.group()):04X}, which cannot be written into a Dockerfile",
            hint="the lockfile loader rejects such values; was the lock built in code without validation?",
        )


def quote_value(value: str, what: str = "value") -> str:
    """``value`` as one double-quoted Dockerfile word that Docker reads back unchanged."""
    if not isinstance(value, str):
        raise ReplayError(f"{what}: must be text, not {type(value).__name__}")
    _refuse_unquotable(value, what)
    return '"' + _ESCAPED.sub(r"\\\1", value) + '"'


def check_key(key: str, what: str = "key") -> str:
    """An ENV name or LABEL key, refused unless it is a plain identifier."""
    if not _KEY.fullmatch(key) or len(key) > 128:
        raise ReplayError(f"{what}: {key[:60]!r} is not a valid Dockerfile key")
    return key


def key_value(key: str, value: str, what: str = "value") -> str:
    """``KEY="value"``, the pair form that both ENV and LABEL accept."""
    return f"{check_key(key, what)}={quote_value(value, what)}"


def exec_form(argv: Sequence[str], what: str = "command") -> str:
    """A JSON array for ``RUN``/``CMD`` exec form; every element is plain text on one line."""
    if not argv:
        raise ReplayError(f"{what}: an empty command cannot be run")
    for arg in argv:
        if not isinstance(arg, str):
            raise ReplayError(f"{what}: argument {arg!r} is not text")
        _refuse_unquotable(arg, what)
    # ensure_ascii keeps the line pure ASCII; Docker's Go JSON decoder reads the \\u escapes back.
    return json.dumps(list(argv), ensure_ascii=True)
