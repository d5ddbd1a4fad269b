"""Import a ``Pipfile.lock`` (pipenv's JSON lock: ``_meta``, ``default``, ``develop``).

``default`` is what ``pipenv install``/``pipenv sync`` installs, so it is
what is recorded; ``develop`` packages are installed only with ``--dev`` and
are named in a warning by count.  An entry's ``version`` is ``==X``; ``git``
with ``ref`` is a VCS install, ``path``/``file`` a local or URL install,
``editable`` an editable one.  The archive hash is kept when one is listed.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.importers import ImportContext, shown
from envlock.formats.structured import first_of_each, load_json, location_url, python_package, sha256_of, text_value
from envlock.lockfile import model as m


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    document = load_json(text, ctx)
    if not isinstance(document, dict) or not isinstance(document.get("_meta"), dict):
        raise ctx.fail("not a Pipfile.lock: no `_meta` table", 1, hint="import a Pipfile.lock")
    default = document.get("default", {})
    if not isinstance(default, dict):
        raise ctx.fail("`default` is not a table of packages", _line_of(text, '"default"'))
    packages: list[m.PythonPackage] = []
    for name, entry in default.items():
        line = _line_of(text, f'"{name}"')
        where = "default"
        if not isinstance(entry, dict):
            raise ctx.fail(f"default {shown(name)} is not a table", line)
        pinned = text_value(entry, "version")
        version = pinned[2:] if pinned and pinned.startswith("==") else None
        if pinned and version is None:
            ctx.warn(f"default {shown(name)}: {shown(pinned)} is not one version", line)
        values: dict[str, Any] = {"source": "index"}
        git = text_value(entry, "git")
        if git:
            ref = text_value(entry, "ref")
            values = {
                "source": "editable" if entry.get("editable") is True else "vcs",
                "vcs": "git",
                "url": location_url(re.sub(r"^git\+", "", git)),
                "commit": ref if ref and re.fullmatch(r"[0-9a-f]{7,64}", ref) else None,
            }
        elif text_value(entry, "path") or text_value(entry, "file"):
            where_from = text_value(entry, "path") or text_value(entry, "file") or ""
            values = {
                "source": "editable"
                if entry.get("editable") is True
                else ("url" if "://" in where_from else "directory"),
                "url": location_url(where_from),
            }
        hashes = entry.get("hashes")
        if isinstance(hashes, list) and len(hashes) == 1:
            values["archive_hash"] = sha256_of(hashes[0])
        package = python_package(ctx, name, version, where, line, **values)
        if package is not None:
            packages.append(package)
    develop = document.get("develop")
    if isinstance(develop, dict) and develop:
        ctx.warn(f"{len(develop)} develop packages (installed only by `pipenv install --dev`) are not recorded")
    meta = document["_meta"]
    requires = meta.get("requires") if isinstance(meta.get("requires"), dict) else {}
    python_version = text_value(requires, "python_full_version")
    section = m.PythonSection(packages=first_of_each(packages, ctx))
    if python_version and re.fullmatch(r"[0-9]+(\.[0-9]+){1,2}", python_version):
        section = m.PythonSection(version=python_version, packages=section.packages)
    return {"python": section}


def _line_of(text: str, needle: str) -> int | None:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else None
