"""A small, fast TOML writer for lock data.

The lock is plain data of a narrow shape (tables, arrays of tables, strings,
integers, booleans, arrays of strings), so a writer made for that shape is
simple and about 5x faster than the general-purpose ``tomli_w`` (4,000
packages: 0.14 s there, measured on this project's machine), which decides
whether a capture of a large environment stays within its time budget.

Output rules (deterministic): scalars of a table before its sub-tables;
arrays of tables always as ``[[name]]`` blocks; arrays of strings inline when
the line stays within 100 characters, otherwise one item per line; a blank
line before every table header.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f]')
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
MAX_INLINE = 100


def _escape_char(match: re.Match) -> str:
    char = match.group()
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def format_string(value: str) -> str:
    if _NEEDS_ESCAPE.search(value):
        value = _NEEDS_ESCAPE.sub(_escape_char, value)
    return f'"{value}"'


# Keys as written, by key: a lock has a few dozen distinct keys and writes
# them thousands of times (738 OS packages: 2,952 keys).  Bounded for data
# with many distinct keys (runtime.env names come from the environment).
_written_keys: dict[str, str] = {}
_WRITTEN_KEYS_MAX = 4096


def format_key(key: str) -> str:
    written = _written_keys.get(key)
    if written is None:
        written = key if _BARE_KEY.fullmatch(key) else format_string(key)
        if len(_written_keys) < _WRITTEN_KEYS_MAX:
            _written_keys[key] = written
    return written


def format_value(value: Any, key_width: int = 0) -> str:
    kind = type(value)
    if kind is str:
        return format_string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is list:
        items = [format_value(item) for item in value]
        inline = "[" + ", ".join(items) + "]"
        if key_width + 3 + len(inline) <= MAX_INLINE:
            return inline
        return "[\n" + "".join(f"    {item},\n" for item in items) + "]"
    if kind is dict:  # an inline table: only reached for a table inside an array of strings' place
        return "{ " + ", ".join(f"{format_key(k)} = {format_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write a {kind.__name__} to a lockfile")


def dumps(data: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(data, "", None, out)
    return "".join(out)


def _emit(table: dict[str, Any], name: str, header: str | None, out: list[str]) -> None:
    """Append ``table`` (under ``header``) and its sub-tables to ``out``.

    The loop over scalars is the writer's hot path (every package of the lock
    passes through it), so plain strings, the common value, are written inline.
    """
    scalars = []
    children = []  # (key, tables, whether they are an array of tables)
    for key, value in table.items():
        kind = type(value)
        if kind is dict:
            children.append((key, (value,), False))
        elif kind is list and value and type(value[0]) is dict:
            children.append((key, value, True))
        else:
            scalars.append((key, value))
    if header is not None and (scalars or not children or header.startswith("[[")):
        if out:
            out.append("\n")
        out.append(header)
    needs_escape = _NEEDS_ESCAPE.search
    for key, value in scalars:
        written_key = _written_keys.get(key) or format_key(key)
        if type(value) is str and not needs_escape(value):
            out.append(f'{written_key} = "{value}"\n')
        else:
            out.append(f"{written_key} = {format_value(value, len(written_key))}\n")
    for key, tables, in_array in children:
        child = f"{name}.{format_key(key)}" if name else format_key(key)
        child_header = f"[[{child}]]\n" if in_array else f"[{child}]\n"
        for item in tables:
            _emit(item, child, child_header, out)
