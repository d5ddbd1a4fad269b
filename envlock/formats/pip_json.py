"""Import pip's JSON reports: ``pip list --format=json`` and ``pip inspect``.

``pip list --format=json`` is a list of ``{"name", "version"}`` objects (and
``editable_project_location`` for editable installs).  ``pip inspect``
(pip 22.2+) has, per installed distribution, its core metadata, its
``direct_url.json`` (PEP 610: VCS commit, archive hash, editable directory),
``installer`` and ``requested``; and the interpreter it ran under.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.importers import ImportContext, shown
from envlock.formats.structured import (
    first_of_each,
    json_item_lines,
    load_json,
    location_url,
    python_package,
    sha256_of,
    table_value,
    text_value,
)
from envlock.lockfile import model as m


def parse_list(text: str, ctx: ImportContext) -> dict[str, Any]:
    document = load_json(text, ctx)
    if not isinstance(document, list):
        raise ctx.fail("not `pip list --format=json` output: not a JSON list", 1, hint="run `pip list --format=json`")
    packages = []
    lines = json_item_lines(text)
    for position, entry in enumerate(document):
        where = f"item {position}"
        line = lines[position] if position < len(lines) else None
        if not isinstance(entry, dict):
            raise ctx.fail(f"{where} is not an object with name and version", line)
        values: dict[str, Any] = {}
        editable = text_value(entry, "editable_project_location")
        if editable:
            values = {"source": "editable", "url": location_url(editable)}
        package = python_package(ctx, entry.get("name"), entry.get("version"), where, line, **values)
        if package is not None:
            packages.append(package)
    return {"python": m.PythonSection(packages=first_of_each(packages, ctx))}


def parse_inspect(text: str, ctx: ImportContext) -> dict[str, Any]:
    document = load_json(text, ctx)
    if not isinstance(document, dict) or not isinstance(document.get("installed"), list):
        raise ctx.fail("not `pip inspect` output: no `installed` list", 1, hint="run `pip inspect`")
    if document.get("version") not in ("0", "1"):
        ctx.warn(f"pip inspect report version {shown(str(document.get('version')))} is not one this envlock knows")
    packages = []
    lines = json_item_lines(text, "installed")
    for position, entry in enumerate(document["installed"]):
        where = f"installed[{position}]"
        line = lines[position] if position < len(lines) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("metadata"), dict):
            raise ctx.fail(f"{where} has no metadata object", line)
        metadata = entry["metadata"]
        values: dict[str, Any] = _direct_url(entry.get("direct_url"))
        installer = text_value(entry, "installer")
        if installer:
            values["installer"] = installer.strip()
        if isinstance(entry.get("requested"), bool):
            values["requested"] = entry["requested"]
        package = python_package(ctx, metadata.get("name"), metadata.get("version"), where, line, **values)
        if package is not None:
            packages.append(package)
    environment = table_value(document, "environment")
    version = text_value(environment, "python_full_version")
    implementation = text_value(environment, "implementation_name")
    return {
        "python": m.PythonSection(
            version=version if version and re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+\S*", version) else None,
            implementation=implementation if implementation and implementation.isalnum() else None,
            packages=first_of_each(packages, ctx),
        )
    }


def _direct_url(direct: Any) -> dict[str, Any]:
    if not isinstance(direct, dict):
        return {"source": "index"}
    url = text_value(direct, "url")
    vcs = direct.get("vcs_info")
    if isinstance(vcs, dict):
        commit = text_value(vcs, "commit_id")
        return {
            "source": "vcs",
            "vcs": text_value(vcs, "vcs"),
            "url": location_url(url) if url else None,
            "commit": commit if commit and re.fullmatch(r"[0-9a-f]{7,64}", commit) else None,
            "subdirectory": text_value(direct, "subdirectory"),
        }
    directory = direct.get("dir_info")
    if isinstance(directory, dict):
        return {
            "source": "editable" if directory.get("editable") is True else "directory",
            "url": location_url(url) if url else None,
        }
    archive = table_value(direct, "archive_info")
    hashes = table_value(archive, "hashes")
    return {
        "source": "url",
        "url": location_url(url) if url else None,
        "archive_hash": sha256_of(hashes.get("sha256")) or sha256_of(archive.get("hash")),
    }
