"""What the lock-file importers share: reading untrusted TOML/JSON, and turning entries into packages.

uv.lock, poetry.lock, Pipfile.lock, pixi.lock and pip's JSON reports list
packages as tables.  Each entry is checked as it is read: an entry of the
wrong shape is refused naming where it is; a value that fails the lock
model's field check costs only that value (``checked``).  A name listed twice
(split by environment markers) keeps its first entry; the others are named in
a warning.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.importers import ImportContext, checked, shown
from envlock.lockfile import model as m
from envlock.names import canonical_name

# A package whose name was read but whose version was not: kept, with this version.
UNKNOWN_VERSION = "unknown"
# Far above any real lock file's package count (the largest uv.lock seen lists ~900).
MAX_ENTRIES = 100_000


def load_toml(text: str, ctx: ImportContext) -> dict[str, Any]:
    """TOML through the lockfile's own bounded loader, errors naming the line."""
    from envlock.errors import LockfileError
    from envlock.lockfile.io import parse_toml_bounded

    try:
        return parse_toml_bounded(text.encode("utf-8"))
    except LockfileError as exc:
        found = re.search(r"line (\d+)", exc.message)
        line = int(found.group(1)) if found else None
        if line is None and "end of document" in exc.message:
            line = text.count("\n") + (0 if text.endswith("\n") else 1)
        raise ctx.fail(exc.message, line, hint="the file may be cut off or damaged") from None


def load_json(text: str, ctx: ImportContext) -> Any:
    """JSON, with its error's line; deep nesting is refused (no real report nests beyond ~10)."""
    import json

    depth = max_depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            max_depth = max(max_depth, depth)
        elif char in "]}":
            depth -= 1
    if max_depth > 64:
        raise ctx.fail("JSON nested more than 64 levels deep; no report of this kind is")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(text.rstrip())
        raise ctx.fail(
            f"invalid JSON: {exc.msg}" + ("; the text ends early (cut off?)" if cut else ""),
            exc.lineno,
            hint="import the whole output, as the tool wrote it",
        ) from None


def json_item_lines(text: str, key: str | None = None) -> list[int]:
    """Line numbers where each element of a JSON array starts: the top-level array, or the array
    under top-level ``key``.  ``json`` keeps no positions; this scan gives errors their line."""
    if key is not None:
        found = re.search(r'"' + re.escape(key) + r'"\s*:\s*\[', text)
        if found is None:
            return []
        start = found.end()
    else:
        start = text.find("[") + 1
        if start == 0:
            return []
    lines: list[int] = []
    depth = 0
    in_string = escaped = False
    expecting = True
    line = text.count("\n", 0, start) + 1
    for char in text[start:]:
        if char == "\n":
            line += 1
        if in_string:
            escaped = not escaped and char == "\\"
            if char == '"' and not escaped:
                in_string = False
            continue
        if char.isspace():
            continue
        if depth == 0 and expecting and char not in ",]":
            lines.append(line)
            expecting = False
        if char == '"':
            in_string, escaped = True, False
        elif char in "[{":
            depth += 1
        elif char in "]}":
            if depth == 0:
                break
            depth -= 1
        elif char == "," and depth == 0:
            expecting = True
    return lines


def header_lines(text: str, header: str) -> list[int]:
    """Line numbers of each ``[[header]]`` table, in order (TOML loaders do not keep them)."""
    return [number for number, line in enumerate(text.split("\n"), 1) if line.strip() == f"[[{header}]]"]


def text_value(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return value if isinstance(value, str) and value else None


def table_value(entry: dict[str, Any], key: str) -> dict[str, Any]:
    """``entry[key]`` when it is a table, else an empty one (a value of the wrong type is unknown)."""
    value = entry.get(key)
    return value if isinstance(value, dict) else {}


def sha256_of(value: Any) -> str | None:
    """``sha256:<hex>`` from ``sha256:HEX``, ``sha256=HEX`` or a bare 64-hex string; else ``None``."""
    if not isinstance(value, str):
        return None
    found = re.fullmatch(r"(?:sha256[:=])?([0-9A-Fa-f]{64})", value.strip())
    return f"sha256:{found.group(1).lower()}" if found else None


def python_package(
    ctx: ImportContext, name: Any, version: Any, where: str, line: int | None, **values: Any
) -> m.PythonPackage | None:
    """A checked ``PythonPackage``; a missing version is kept as ``unknown`` with a warning saying so."""
    if not isinstance(name, str) or not name:
        raise ctx.fail(f"{where} has no name", line, hint="every entry names its package; the file looks damaged")
    if not isinstance(version, str) or not version:
        ctx.warn(f"{where} {shown(name)} names no version; recorded with version {UNKNOWN_VERSION!r}", line)
        version = UNKNOWN_VERSION
    clean = canonical_name(name) if re.fullmatch(r"[A-Za-z0-9._-]+", name) else name
    return checked(m.PythonPackage, {"name": clean, "version": version, **values}, f"{where} {shown(name)}", ctx, line)


def first_of_each(packages: list[m.PythonPackage], ctx: ImportContext) -> tuple[m.PythonPackage, ...]:
    """One package per name: a lock holds one environment, so the first entry of a split name is kept."""
    kept: dict[str, m.PythonPackage] = {}
    others: dict[str, list[str]] = {}
    for package in packages:
        if package.name in kept:
            others.setdefault(package.name, []).append(package.version)
            continue
        kept[package.name] = package
    for name, versions in others.items():
        ctx.warn(
            f"{name} is listed {len(versions) + 1} times (for different platforms or Python versions); "
            f"kept {kept[name].version}, not {', '.join(versions)}"
        )
    return tuple(kept.values())


def entries_of(document: Any, key: str, ctx: ImportContext, kind: str) -> list[Any]:
    value = document.get(key, []) if isinstance(document, dict) else None
    if not isinstance(value, list):
        raise ctx.fail(f"`{key}` is not a list of entries; this is not {kind}")
    if len(value) > MAX_ENTRIES:
        raise ctx.fail(f"`{key}` has {len(value)} entries; no real {kind} has more than {MAX_ENTRIES}")
    return value


def vcs_parts(url: str) -> tuple[str, str | None]:
    """``https://host/repo?rev=x#<commit>`` -> (``https://host/repo``, commit or ``None``)."""
    base, _, fragment = url.partition("#")
    base = base.split("?")[0]
    commit = fragment if re.fullmatch(r"[0-9a-f]{7,64}", fragment) else None
    return base, commit


def location_url(path: str) -> str | None:
    """A local path or URL as a private ``file://`` URL; ``None`` for a relative path (unknown base)."""
    from envlock.capture.privacy import private_url

    if "://" in path:
        return private_url(path)
    if path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path):
        return private_url("file://" + ("" if path.startswith("/") else "/") + path.replace("\\", "/"))
    return None
