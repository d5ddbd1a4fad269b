"""Import a conda-lock unified lockfile (``conda-lock.yml``, lockfile ``version: 1``).

One file covers several platforms; a lock describes one environment, so one
platform is taken: ``--platform`` when given, else the only one, else
``linux-64`` (what replay builds), else the first listed, with a warning.
Both key orders conda-lock has written are read (``version`` first, or
alphabetical keys with ``version`` last).  ``manager: conda`` entries become
conda packages (channel, subdir and build from the URL; md5 and sha256 from
``hash``), ``manager: pip`` entries Python packages pinned to the file their
``url`` and sha256 name (replay installs that file, as after ``envlock pin``).
Packages marked ``optional: true`` (dev/extra categories) are installed only
on request, so they are left out, with a count in the warnings.  A package
entry without its name, version, manager or platform means the file was cut
off or edited: that is a ``FormatError`` naming the entry's line.
"""

from __future__ import annotations

from typing import Any

from envlock.formats.conda_explicit import split_conda_url, torch_build_section
from envlock.formats.importers import ImportContext, YamlMap, checked, line_of, load_yaml, shown, unique
from envlock.lockfile import model as m
from envlock.names import canonical_name

SUPPORTED_VERSIONS = ("1",)
_REQUIRED = ("name", "version", "manager", "platform")


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    document = load_yaml(text, ctx)
    if not isinstance(document, YamlMap) or "package" not in document or "metadata" not in document:
        raise ctx.fail(
            "not a conda-lock.yml: no top-level 'metadata' and 'package' keys",
            line_of(document, 1),
            hint="import a conda-lock unified lockfile; for a rendered conda-linux-64.lock use `conda-explicit`",
        )
    version = document.get("version")
    if version is not None and str(version) not in SUPPORTED_VERSIONS:
        raise ctx.fail(
            f"conda-lock lockfile version {shown(str(version))} is not supported (this envlock reads version 1)",
            line_of(version, 1),
            hint="upgrade envlock, or re-render the lock with conda-lock 2.x",
        )
    entries = document["package"]
    if not isinstance(entries, list):
        raise ctx.fail("'package' is not a list", line_of(entries, 1))
    platforms = _platforms(document, entries, ctx)
    platform = _choose_platform(platforms, ctx, line_of(document["metadata"], 1))
    conda_packages: list[m.CondaPackage] = []
    pip_packages: list[m.PythonPackage] = []
    optional = 0
    for position, entry in enumerate(entries):
        where = f"package[{position}]"
        line = line_of(entry, line_of(entries))
        if not isinstance(entry, dict):
            raise ctx.fail(f"{where} is not a mapping", line)
        missing = [key for key in _REQUIRED if not isinstance(entry.get(key), str) or not entry.get(key)]
        if missing:
            raise ctx.fail(
                f"{where} has no {', '.join(missing)}; the lockfile looks cut off or edited",
                line,
                hint="re-create it with conda-lock, or import the whole file",
            )
        if str(entry["platform"]) != platform:
            continue
        if str(entry.get("optional", "false")).lower() == "true":
            optional += 1
            continue
        given = entry.get("hash")
        hashes = given if isinstance(given, dict) else {}
        manager = str(entry["manager"])
        name = str(entry["name"])
        if manager == "conda":
            conda_package = _conda_package(entry, hashes, f"{where} {shown(name)}", line, ctx)
            if conda_package is not None:
                conda_packages.append(conda_package)
        elif manager == "pip":
            pip_package = _pip_package(entry, hashes, f"{where} {shown(name)}", line, ctx)
            if pip_package is not None:
                pip_packages.append(pip_package)
        else:
            ctx.warn(f"{where} {shown(name)}: unknown manager {shown(manager)}; not recorded", line)
    if optional:
        ctx.warn(f"{optional} optional packages (dev/extra categories) of {platform} are not recorded")
    conda = list(unique(conda_packages, lambda p: p.name, ctx, "conda package"))
    sections: dict[str, Any] = {"conda": m.CondaSection(packages=tuple(conda)), "cuda": torch_build_section(conda, ctx)}
    python_version = next((p.version for p in conda if p.name == "python"), None)
    if pip_packages or python_version:
        sections["python"] = checked(
            m.PythonSection,
            {
                "version": python_version,
                "environment_kind": "conda",
                "packages": unique(pip_packages, lambda p: p.name, ctx, "Python package"),
            },
            "python",
            ctx,
        )
        ctx.warn(
            "python.packages lists only the pip-installed packages; conda-installed Python libraries are in conda.packages"
        )
    return sections


def _platforms(document: YamlMap, entries: list, ctx: ImportContext) -> list[str]:
    metadata = document["metadata"]
    listed = metadata.get("platforms") if isinstance(metadata, dict) else None
    if isinstance(listed, list) and all(isinstance(p, str) for p in listed) and listed:
        return [str(p) for p in listed]
    found: list[str] = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("platform"), str) and entry["platform"] not in found:
            found.append(str(entry["platform"]))
    return found


def _choose_platform(platforms: list[str], ctx: ImportContext, line: int | None) -> str:
    if ctx.platform:
        if ctx.platform not in platforms:
            raise ctx.fail(
                f"platform {shown(ctx.platform)} is not in this lockfile",
                line,
                hint="choose one of: " + ", ".join(platforms),
            )
        return ctx.platform
    if not platforms:
        raise ctx.fail("the lockfile names no platform", line)
    if len(platforms) == 1:
        return platforms[0]
    chosen = "linux-64" if "linux-64" in platforms else platforms[0]
    ctx.warn(f"the lockfile covers {', '.join(platforms)}; imported {chosen} (choose another with --platform)")
    return chosen


def _conda_package(
    entry: dict, hashes: dict, where: str, line: int | None, ctx: ImportContext
) -> m.CondaPackage | None:
    url = str(entry.get("url") or "")
    parts = split_conda_url(url) if url else None
    if parts is None:
        ctx.warn(f"{where}: its url {shown(url)} is not a conda package URL; build and channel left unknown", line)
        parts = {}
    md5 = str(hashes.get("md5")) if hashes.get("md5") else None
    sha256 = f"sha256:{hashes['sha256']}" if hashes.get("sha256") else None
    return checked(
        m.CondaPackage,
        {
            "name": str(entry["name"]),
            "version": str(entry["version"]),
            "build": parts.get("build"),
            "channel": parts.get("channel"),
            "subdir": parts.get("subdir"),
            "url": parts.get("url"),
            "md5": md5,
            "sha256": sha256,
        },
        where,
        ctx,
        line,
    )


def _pip_package(entry: dict, hashes: dict, where: str, line: int | None, ctx: ImportContext) -> m.PythonPackage | None:
    from envlock.formats.pip_freeze import _split_vcs

    url = str(entry.get("url") or "")
    sha256 = f"sha256:{hashes['sha256']}" if hashes.get("sha256") else None
    values: dict[str, Any] = {
        "name": canonical_name(str(entry["name"])),
        "version": str(entry["version"]),
        "source": "index",
        "archive_hash": sha256,
    }
    vcs = _split_vcs(url) if url else None
    file = _distribution_file(url) if sha256 and vcs is None else None
    if file is not None:
        # conda-lock resolved this exact file: replay installs it, as after `envlock pin`.
        values.update(file=file, file_url=url, file_sha256=sha256)
    if vcs is not None:
        values.update(
            source="vcs",
            vcs=vcs["vcs"],
            url=vcs["url"],
            commit=vcs["commit"],
            subdirectory=vcs["subdirectory"],
            archive_hash=None,
        )
    return checked(m.PythonPackage, values, where, ctx, line)


def _distribution_file(url: str) -> str | None:
    """The wheel or sdist file name an http(s) URL ends in, or None (a URL of another kind pins no file)."""
    import posixpath
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or parts.query or not parts.netloc:
        return None
    name = urllib.parse.unquote(posixpath.basename(parts.path))
    return name if name.endswith((".whl", ".tar.gz", ".zip")) else None
