"""Import an explicit conda package list: ``conda list --explicit [--md5|--sha256]``.

The same shape is what ``conda-lock render`` writes (``conda-linux-64.lock``):
comment lines (``# platform: linux-64``), an ``@EXPLICIT`` marker, then one
package URL per line, optionally followed by ``#<md5>`` or ``#sha256:<hex>``.
Name, version and build come from the file name (``name-version-build``
followed by ``.tar.bz2`` or ``.conda``), the channel and subdir from the URL
path.  Tokens (``/t/<token>/``) and credentials in URLs are dropped.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from envlock.formats.importers import ImportContext, checked, scrub, shown, split_lines, unique
from envlock.lockfile import model as m

_PACKAGE_FILE = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<build>[^-]+)\.(?:tar\.bz2|conda)$")
_TOKEN = re.compile(r"/t/[^/]+/")
_SUBDIRS = re.compile(r"^(?:noarch|(?:linux|osx|win|emscripten|wasi|zos)-[a-z0-9_]+)$")


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    lines = split_lines(text, ctx)
    explicit_line = None
    platform = None
    packages: list[m.CondaPackage] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            found = re.match(r"#\s*platform:\s*(\S+)", line)
            if found:
                platform = found.group(1)
            continue
        if line == "@EXPLICIT":
            explicit_line = number
            continue
        if explicit_line is None:
            raise ctx.fail(
                f"{shown(line)} comes before the @EXPLICIT marker; this is not an explicit conda list",
                number,
                hint="import the output of `conda list --explicit --md5`, or use `conda-env` for environment.yml",
            )
        package = conda_package_from_url(line, number, ctx)
        if package is not None:
            packages.append(package)
    if explicit_line is None:
        raise ctx.fail(
            "no @EXPLICIT line; this is not an explicit conda list",
            len(lines) or 1,
            hint="import the output of `conda list --explicit --md5`",
        )
    if platform:
        packages = [p if p.subdir else checked_subdir(p, platform) for p in packages]
    packages = list(unique(packages, lambda p: p.name, ctx, "conda package"))
    python_version = next((p.version for p in packages if p.name == "python"), None)
    return {
        "conda": m.CondaSection(packages=tuple(packages)),
        "cuda": torch_build_section(packages, ctx),
        # The env's interpreter is its python package; what pip installed is not in this file.
        "python": m.PythonSection(version=python_version, environment_kind="conda") if python_version else None,
    }


def torch_build_section(packages: list[m.CondaPackage], ctx: ImportContext) -> m.CudaSection | None:
    """The CUDA and cuDNN a conda pytorch package was built for, as its build string says.

    pytorch channel: ``py3.9_cuda11.1_cudnn8.0.5_0``; conda-forge: ``cuda111py37h07fa5b8_1``
    (CUDA 11.1); CPU builds (``py3.8_cpu_0``, ``cpu_py310...``) name no CUDA.
    """
    for package in packages:
        if package.name not in ("pytorch", "pytorch-nightly") or not package.build:
            continue
        cuda = None
        dotted = re.search(r"cuda([0-9]+\.[0-9]+(?:\.[0-9]+)*)", package.build)
        packed = re.search(r"cuda([0-9]{2,3})(?=py|_|$)", package.build)
        if dotted:
            cuda = dotted.group(1)
        elif packed:
            digits = packed.group(1)
            cuda = f"{digits[:-1]}.{digits[-1]}"
        cudnn = re.search(r"cudnn([0-9]+(?:\.[0-9]+)*)", package.build)
        build = checked(
            m.FrameworkBuild,
            {"name": "torch", "version": package.version, "cuda": cuda, "cudnn": cudnn.group(1) if cudnn else None},
            "conda pytorch build",
            ctx,
        )
        if build is not None:
            return m.CudaSection(frameworks=(build,))
    return None


def checked_subdir(package: m.CondaPackage, platform: str) -> m.CondaPackage:
    from envlock import records

    return records.replace(package, subdir=platform) if _SUBDIRS.match(platform) else package


def split_conda_url(url: str) -> dict[str, str | None] | None:
    """Channel, subdir, name, version and build of a conda package URL; ``None`` if it is not one.

    ``https://conda.anaconda.org/conda-forge/linux-64/zlib-1.2.11-h36c2ea0_1013.tar.bz2``
    -> channel ``conda-forge`` (as ``conda list`` shows it), subdir ``linux-64``.
    """
    from envlock.capture.privacy import private_url

    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("https", "http", "file"):
        return None
    segments = unquote(_TOKEN.sub("/", parts.path)).split("/")
    if len(segments) < 3:
        return None
    found = _PACKAGE_FILE.match(segments[-1])
    if not found:
        return None
    subdir = segments[-2]
    channel_path = "/".join(s for s in segments[:-2] if s)
    host = parts.netloc.rsplit("@", 1)[-1]
    if host in ("conda.anaconda.org", "repo.anaconda.com", "repo.continuum.io") or host.endswith(".anaconda.org"):
        channel = channel_path  # "conda-forge", "pkgs/main"
    elif parts.scheme == "file":
        channel = scrub("file:///" + channel_path)
    else:
        channel = f"{parts.scheme}://{host}/{channel_path}".rstrip("/")
    clean = private_url(_TOKEN.sub("/", url))
    return {
        "name": found.group("name"),
        "version": found.group("version"),
        "build": found.group("build"),
        "channel": channel or None,
        "subdir": subdir if _SUBDIRS.match(subdir) else None,
        "url": clean,
    }


def hash_fields(fragment: str | None) -> dict[str, str | None]:
    """``md5``/``sha256`` lock fields from a URL fragment (``<md5>``, ``sha256:<hex>``, ``md5:<hex>``)."""
    if not fragment:
        return {}
    text = fragment.strip().lower()
    if re.fullmatch(r"(?:md5:)?[0-9a-f]{32}", text):
        return {"md5": text.split(":")[-1]}
    if re.fullmatch(r"(?:sha256:)?[0-9a-f]{64}", text):
        return {"sha256": "sha256:" + text.split(":")[-1]}
    return {"invalid": fragment}


def conda_package_from_url(line: str, number: int, ctx: ImportContext) -> m.CondaPackage | None:
    url, _, fragment = line.partition("#")
    url = url.strip()
    parts = split_conda_url(url)
    if parts is None:
        raise ctx.fail(
            f"{shown(url)} is not a conda package URL (.../<channel>/<subdir>/<name>-<version>-<build>.tar.bz2 or .conda)",
            number,
            hint="the line may be cut off; an explicit list holds one package URL per line",
        )
    hashes = hash_fields(fragment)
    if "invalid" in hashes:
        raise ctx.fail(
            f"the hash after '#' ({shown(fragment)}) is neither an md5 nor a sha256",
            number,
            hint="the line may be cut off",
        )
    return checked(
        m.CondaPackage,
        {**parts, **hashes},
        f"conda package {shown(parts['name'] or '')}",
        ctx,
        number,
    )
