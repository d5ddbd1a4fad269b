"""Import a ``poetry.lock`` (TOML: ``[[package]]`` tables and a ``[metadata]`` table).

Each ``[[package]]`` becomes a Python package; ``[package.source]`` says how
it is installed: ``git`` (with ``resolved_reference``, the commit), ``url``,
``file``/``directory`` (a local install; ``develop = true`` makes it
editable), ``legacy`` (a named index: an index install).  The archive hash is
kept only when one file is listed (``files`` in lock-version 2, or
``[metadata.files]`` in 1.x).  Every group is recorded (``poetry install``
installs them all unless told otherwise).
"""

from __future__ import annotations

from typing import Any

from envlock.formats.importers import ImportContext
from envlock.formats.structured import (
    entries_of,
    first_of_each,
    header_lines,
    load_toml,
    location_url,
    python_package,
    sha256_of,
    table_value,
    text_value,
)
from envlock.lockfile import model as m


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    document = load_toml(text, ctx)
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or "package" not in document and "content-hash" not in metadata:
        raise ctx.fail("not a poetry.lock: no [[package]] tables and [metadata]", 1, hint="import a poetry.lock")
    old_files = table_value(metadata, "files")
    lines = header_lines(text, "package")
    packages: list[m.PythonPackage] = []
    for position, entry in enumerate(entries_of(document, "package", ctx, "a poetry.lock")):
        line = lines[position] if position < len(lines) else None
        where = f"package[{position}]"
        if not isinstance(entry, dict):
            raise ctx.fail(f"{where} is not a table", line)
        source = table_value(entry, "source")
        kind = text_value(source, "type")
        url = text_value(source, "url")
        values: dict[str, Any] = {"source": "index"}
        if kind == "git":
            commit = text_value(source, "resolved_reference") or text_value(source, "reference")
            values = {
                "source": "vcs",
                "vcs": "git",
                "url": location_url(url) if url else None,
                "commit": commit if commit and len(commit) >= 7 and commit.isalnum() else None,
                "subdirectory": text_value(source, "subdirectory"),
            }
        elif kind == "url":
            values = {"source": "url", "url": location_url(url) if url else None}
        elif kind in ("file", "directory"):
            values = {
                "source": "editable" if entry.get("develop") is True else "directory",
                "url": location_url(url) if url else None,
            }
        files = entry.get("files")
        name = entry.get("name")
        if not isinstance(files, list) and isinstance(name, str):
            files = old_files.get(name, [])  # lock-version 1.x: [metadata.files]
        files = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
        if len(files) == 1:
            values["archive_hash"] = sha256_of(files[0].get("hash"))
        package = python_package(ctx, entry.get("name"), text_value(entry, "version"), where, line, **values)
        if package is not None:
            packages.append(package)
    return {"python": m.PythonSection(packages=first_of_each(packages, ctx))}
