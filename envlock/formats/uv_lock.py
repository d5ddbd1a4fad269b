"""Import a ``uv.lock`` (uv's own project lock, TOML, ``version = 1``).

Each ``[[package]]`` becomes a Python package, its ``source`` table saying
how: ``registry`` -> an index install; ``git`` -> a VCS install with the
commit after ``#``; ``url`` -> a direct URL; ``path``/``directory`` -> a local
install; ``editable`` -> an editable install.  ``virtual`` entries are the
workspace itself, which uv does not install: named in a warning, not
recorded.  The archive hash is kept only when an entry lists exactly one
file (with many wheels, which one was installed is unknown).  A name split
by markers keeps its first entry, with a warning.
"""

from __future__ import annotations

from typing import Any

from envlock.formats.importers import ImportContext, shown
from envlock.formats.structured import (
    entries_of,
    first_of_each,
    header_lines,
    load_toml,
    location_url,
    python_package,
    sha256_of,
    text_value,
    vcs_parts,
)
from envlock.lockfile import model as m


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    document = load_toml(text, ctx)
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or "package" not in document:
        raise ctx.fail("not a uv.lock: no top-level `version = 1` and [[package]] tables", 1, hint="import a uv.lock")
    if version != 1:
        raise ctx.fail(f"uv.lock version {version} is not supported (this envlock reads version 1)", 1)
    lines = header_lines(text, "package")
    packages: list[m.PythonPackage] = []
    virtual: list[str] = []
    for position, entry in enumerate(entries_of(document, "package", ctx, "a uv.lock")):
        line = lines[position] if position < len(lines) else None
        where = f"package[{position}]"
        if not isinstance(entry, dict):
            raise ctx.fail(f"{where} is not a table", line)
        source = entry.get("source")
        if not isinstance(source, dict) or len(source) != 1:
            raise ctx.fail(f"{where}: `source` is not a table with one key", line)
        ((kind, where_from),) = source.items()
        if not isinstance(where_from, str):
            raise ctx.fail(f"{where}: source.{kind} is not text", line)
        if kind == "virtual":
            virtual.append(str(entry.get("name")))
            continue
        values: dict[str, Any] = {"source": "index"}
        if kind == "git":
            url, commit = vcs_parts(where_from)
            values = {"source": "vcs", "vcs": "git", "url": location_url(url), "commit": commit}
        elif kind == "url":
            values = {"source": "url", "url": location_url(where_from)}
        elif kind in ("path", "directory"):
            values = {"source": "directory", "url": location_url(where_from)}
        elif kind == "editable":
            values = {"source": "editable", "url": location_url(where_from)}
        elif kind != "registry":
            ctx.warn(f"{where}: unknown source kind {shown(kind)}; recorded as unknown", line)
            values = {"source": "unknown"}
        sdist = entry.get("sdist")
        files: list[dict[str, Any]] = [sdist] if isinstance(sdist, dict) else []
        wheels = entry.get("wheels")
        files += [w for w in wheels if isinstance(w, dict)] if isinstance(wheels, list) else []
        if len(files) == 1:
            values["archive_hash"] = sha256_of(files[0].get("hash"))
        package = python_package(ctx, entry.get("name"), text_value(entry, "version"), where, line, **values)
        if package is not None:
            packages.append(package)
    if virtual:
        ctx.warn(
            "the workspace's own project(s) "
            + ", ".join(shown(name, 40) for name in virtual)
            + " are virtual in uv.lock (not installed): not recorded"
        )
    return {"python": m.PythonSection(packages=first_of_each(packages, ctx))}
