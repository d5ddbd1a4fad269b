"""Import a PEP 751 ``pylock.toml`` (written by ``pip lock``, ``uv export``, ``uv pip compile``).

The TOML is read with the lockfile's own bounded loader
(``parse_toml_bounded``: size cap, nesting and dotted-key pre-scan), so a
hostile pylock costs what a hostile envlock.lock costs.

Each ``[[packages]]`` entry becomes a Python package: ``vcs`` -> a VCS
install with its commit; ``directory`` -> a local or editable install (path
written with ``~``); ``archive`` -> a direct URL with its sha256; otherwise an
index install, whose archive hash is kept only when the entry lists exactly
one file (with many wheels, which one was installed is unknown).  A pylock
may list one name several times, split by environment markers (uv writes
three numpy entries for three Python versions); a lock holds one environment,
so the first entry is kept and the others are named in a warning.  Entries
without a version (allowed for VCS and directory sources) are skipped.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.importers import ImportContext, checked, scrub, shown
from envlock.lockfile import model as m
from envlock.names import canonical_name


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    from envlock.formats.structured import load_toml

    document = load_toml(text, ctx)
    version = document.get("lock-version")
    if not isinstance(version, str):
        raise ctx.fail("not a pylock.toml: no `lock-version` key", 1, hint="import a PEP 751 pylock.toml")
    if not re.fullmatch(r"1\.[0-9]+", version):
        raise ctx.fail(
            f"pylock lock-version {shown(version)} is not supported (this envlock reads 1.x)",
            _line_of_key(text, "lock-version"),
        )
    entries = document.get("packages", [])
    if not isinstance(entries, list):
        raise ctx.fail("`packages` is not an array of tables", _line_of_key(text, "packages"))
    lines = _package_lines(text)
    kept: dict[str, tuple[m.PythonPackage, str]] = {}
    dropped: dict[str, list[str]] = {}
    with_markers = 0
    for position, entry in enumerate(entries):
        line = lines[position] if position < len(lines) else None
        where = f"packages[{position}]"
        if not isinstance(entry, dict):
            raise ctx.fail(f"{where} is not a table", line)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ctx.fail(f"{where} has no name", line, hint="every pylock package has a name; the file looks damaged")
        marker = entry.get("marker")
        with_markers += bool(marker)
        package = _package(entry, f"{where} {shown(name)}", line, ctx)
        if package is None:
            continue
        if package.name in kept:
            dropped.setdefault(package.name, []).append(package.version)
            continue
        kept[package.name] = (package, str(marker or ""))
    for name, versions in dropped.items():
        first, marker = kept[name]
        ctx.warn(
            f"{name} is listed {len(versions) + 1} times for different environments; kept {first.version}"
            + (f" (marker {shown(marker)})" if marker else "")
            + f", not {', '.join(versions)}"
        )
    if with_markers:
        ctx.warn(
            f"{with_markers} packages carry environment markers; they are recorded as if they applied to this environment"
        )
    return {"python": m.PythonSection(packages=tuple(package for package, _ in kept.values()))}


def _line_of_key(text: str, key: str) -> int | None:
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith(f"{key} ") or line.startswith(f"{key}="):
            return number
    return None


def _package_lines(text: str) -> list[int]:
    return [number for number, line in enumerate(text.split("\n"), 1) if line.strip() == "[[packages]]"]


def _sha256(hashes: Any) -> str | None:
    if isinstance(hashes, dict) and isinstance(hashes.get("sha256"), str):
        return "sha256:" + hashes["sha256"].lower()
    return None


def _package(entry: dict, where: str, line: int | None, ctx: ImportContext) -> m.PythonPackage | None:
    from envlock.capture.privacy import private_url

    version = entry.get("version")
    values: dict[str, Any] = {
        "name": canonical_name(entry["name"]),
        "version": version if isinstance(version, str) else None,
    }
    vcs = entry.get("vcs")
    directory = entry.get("directory")
    archive = entry.get("archive")
    if isinstance(vcs, dict):
        url = vcs.get("url") if isinstance(vcs.get("url"), str) else None
        values.update(
            source="vcs",
            vcs=vcs.get("type") if isinstance(vcs.get("type"), str) else None,
            url=private_url(url) if url else None,
            commit=vcs.get("commit-id") if isinstance(vcs.get("commit-id"), str) else None,
            subdirectory=vcs.get("subdirectory") if isinstance(vcs.get("subdirectory"), str) else None,
        )
    elif isinstance(directory, dict):
        given = directory.get("path")
        path = given if isinstance(given, str) else ""
        values.update(
            source="editable" if directory.get("editable") is True else "directory",
            url=_path_url(path),
            subdirectory=directory.get("subdirectory") if isinstance(directory.get("subdirectory"), str) else None,
        )
    elif isinstance(archive, dict):
        given_url, given_path = archive.get("url"), archive.get("path")
        url = given_url if isinstance(given_url, str) else None
        values.update(
            source="url",
            url=private_url(url) if url else _path_url(given_path if isinstance(given_path, str) else ""),
            archive_hash=_sha256(archive.get("hashes")),
        )
    else:
        files = []
        if isinstance(entry.get("sdist"), dict):
            files.append(entry["sdist"])
        wheels = entry.get("wheels")
        if isinstance(wheels, list):
            files.extend(w for w in wheels if isinstance(w, dict))
        values.update(source="index", archive_hash=_sha256(files[0].get("hashes")) if len(files) == 1 else None)
    if values["version"] is None:
        ctx.warn(f"{where}: has no version (allowed for {values.get('source')} sources); not recorded", line)
        return None
    return checked(m.PythonPackage, values, where, ctx, line)


def _path_url(path: str) -> str | None:
    """A ``file://`` URL for an absolute path (home as ``~``); relative paths depend on where the lock lives."""
    if not path or not (path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path)):
        return None
    clean = scrub(path).replace("\\", "/")
    return "file://" + clean if clean.startswith(("/", "~")) else "file:///" + clean
