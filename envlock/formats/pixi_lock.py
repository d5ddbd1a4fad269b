"""Import a ``pixi.lock`` (YAML; lock format versions 4 to 6).

A pixi.lock names, per environment and platform, the packages installed:
``environments.<env>.packages.<platform>`` is a list of ``{conda: URL}`` and
``{pypi: URL}`` references into the top-level ``packages`` list, whose
entries carry name, version, build and hashes (version 6 drops name and
version from conda entries: they are read from the file name in the URL).
One environment and platform are imported: ``default`` and ``--platform``,
else the only platform, else linux-64, with a warning naming the others.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.conda_explicit import split_conda_url, torch_build_section
from envlock.formats.conda_lock_import import _choose_platform
from envlock.formats.importers import ImportContext, checked, line_of, load_yaml, shown
from envlock.formats.structured import first_of_each, location_url, python_package, sha256_of, text_value
from envlock.lockfile import model as m

ENVIRONMENT = "default"


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    document = load_yaml(text, ctx)
    if not isinstance(document, dict) or not isinstance(document.get("environments"), dict):
        raise ctx.fail("not a pixi.lock: no `environments` table", 1, hint="import a pixi.lock")
    version = str(document.get("version", ""))
    if version not in ("4", "5", "6"):
        raise ctx.fail(f"pixi.lock version {shown(version)} is not supported (this envlock reads 4 to 6)", 1)
    environments = document["environments"]
    if ENVIRONMENT not in environments:
        raise ctx.fail(f"no `{ENVIRONMENT}` environment", line_of(environments, 1))
    environment = environments[ENVIRONMENT]
    if len(environments) > 1:
        ctx.warn(
            f"imported the `{ENVIRONMENT}` environment; not "
            + ", ".join(shown(str(name), 30) for name in environments if name != ENVIRONMENT)
        )
    by_platform = environment.get("packages") if isinstance(environment, dict) else None
    if not isinstance(by_platform, dict):
        raise ctx.fail(f"environment `{ENVIRONMENT}` has no packages table", line_of(environment, 1))
    platform = _choose_platform([str(p) for p in by_platform], ctx, line_of(by_platform, 1))
    wanted = by_platform[platform]
    if not isinstance(wanted, list):
        raise ctx.fail(f"packages of {platform} is not a list", line_of(by_platform, 1))
    entries = document.get("packages", [])
    if not isinstance(entries, list):
        raise ctx.fail("`packages` is not a list", line_of(document, 1))
    index: dict[tuple[str, str], dict] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ctx.fail("a `packages` entry is not a table", line_of(entry, 1))
        kind = str(entry.get("kind", "")) or ("conda" if "conda" in entry else "pypi" if "pypi" in entry else "")
        url = str(entry.get(kind) or entry.get("url") or "")
        index.setdefault((kind, url), entry)
    conda: list[m.CondaPackage] = []
    pypi: list[m.PythonPackage] = []
    for reference in wanted:
        line = line_of(reference)
        if not isinstance(reference, dict) or len(reference) != 1:
            raise ctx.fail(f"a reference under {platform} is not `conda: URL` or `pypi: URL`", line)
        ((kind, url),) = ((str(k), str(v)) for k, v in reference.items())
        entry = index.get((kind, url), {})
        if not entry:
            ctx.warn(f"{kind} {shown(url)} is not in the packages list; recorded from its URL only", line)
        if kind == "conda":
            conda_package = _conda(entry, url, line, ctx)
            if conda_package is not None:
                conda.append(conda_package)
        elif kind == "pypi":
            package = _pypi(entry, url, line, ctx)
            if package is not None:
                pypi.append(package)
        else:
            raise ctx.fail(f"unknown package kind {shown(kind)}", line)
    conda_packages = tuple({p.name: p for p in reversed(conda)}.values())[::-1]
    python_version = next((p.version for p in conda_packages if p.name == "python"), None)
    sections: dict[str, Any] = {
        "conda": m.CondaSection(packages=conda_packages),
        "cuda": torch_build_section(list(conda_packages), ctx),
    }
    if python_version or pypi:
        sections["python"] = checked(
            m.PythonSection,
            {"version": python_version, "environment_kind": "conda", "packages": first_of_each(pypi, ctx)},
            "python",
            ctx,
        )
    return sections


def _conda(entry: dict, url: str, line: int | None, ctx: ImportContext) -> m.CondaPackage | None:
    parts = split_conda_url(url) or {}
    if not parts:
        ctx.warn(f"conda {shown(url)} is not a conda package URL; build and channel left unknown", line)
    md5 = text_value(entry, "md5")
    return checked(
        m.CondaPackage,
        {
            "name": text_value(entry, "name") or parts.get("name"),
            "version": text_value(entry, "version") or parts.get("version"),
            "build": text_value(entry, "build") or parts.get("build"),
            "channel": parts.get("channel"),
            "subdir": text_value(entry, "subdir") or parts.get("subdir"),
            "url": parts.get("url"),
            "md5": md5.lower() if md5 and re.fullmatch(r"[0-9a-fA-F]{32}", md5) else None,
            "sha256": sha256_of(entry.get("sha256")),
        },
        f"conda {shown(parts.get('name') or url)}",
        ctx,
        line,
    )


def _pypi(entry: dict, url: str, line: int | None, ctx: ImportContext) -> m.PythonPackage | None:
    from envlock.formats.pip_freeze import _archive_name_version

    name, version = text_value(entry, "name"), text_value(entry, "version")
    if not name or not version:
        parsed = _archive_name_version(url)
        if parsed:
            name, version = name or parsed[0], version or parsed[1]
    editable = entry.get("editable") is True
    remote = url.startswith(("http://", "https://"))
    git = url.startswith("git+")
    # A wheel on an index (PyPI or another) is an index install; a git URL, a local path or an
    # editable project says where it came from.
    source = "editable" if editable else "vcs" if git else "index" if remote else "directory"
    values: dict[str, Any] = {
        "source": source,
        "url": None if source == "index" else location_url(url.removeprefix("git+").split("#")[0]),
        "archive_hash": sha256_of(entry.get("sha256")),
    }
    if git:
        values["vcs"] = "git"
        fragment = url.partition("#")[2]
        values["commit"] = fragment if re.fullmatch(r"[0-9a-f]{7,64}", fragment) else None
    return python_package(ctx, name or (url.rsplit("/", 1)[-1] or None), version, "pypi", line, **values)
