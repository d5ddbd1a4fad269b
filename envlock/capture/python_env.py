"""The Python layer: the interpreter's identity and every installed distribution.

Read from files only (``*.dist-info``), never by importing a package: name,
version (local labels such as ``+cu121`` kept, replay needs them to pick the
index), installer, ``REQUESTED`` and the PEP 610 ``direct_url.json`` that says
where a distribution came from.

A lockfile must load again, so each value is held to the same field check the
loader applies (``envlock.lockfile.fields``).  A value that fails (a legacy
version with a space, a URL with a scheme the loader refuses) is recorded as
far as it can be and named in a capture warning; capture never fails on it.
"""

from __future__ import annotations

import json
import os
import re

from envlock import records
from envlock.capture.distributions import InstalledDist, canonical_name
from envlock.capture.interpreter import InterpreterInfo
from envlock.capture.privacy import scrub_text, shown, strip_url_credentials
from envlock.lockfile import fields as chk
from envlock.lockfile import model as m

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable
    from typing import Any

# --- tags (pure) ------------------------------------------------------------------


def abi_tag(info: InterpreterInfo) -> str | None:
    """The interpreter's ABI tag (``cp311``, ``cp313t``, ``pypy39_pp73``), from its own EXT_SUFFIX.

    Follows packaging.tags: the part of EXT_SUFFIX that names the ABI, not
    the platform.  Computed from the target interpreter's answers, not from
    the interpreter running envlock.
    """
    suffix = info.ext_suffix
    parts = suffix.split(".") if suffix else []
    if len(parts) >= 3 and parts[1]:
        soabi = parts[1]
        if soabi.startswith("cpython-"):
            return "cp" + soabi.split("-")[1]
        if soabi.startswith("cp"):  # Windows: .cp311-win_amd64.pyd
            return soabi.split("-")[0]
        if soabi.startswith("pypy"):
            return "_".join(soabi.split("-")[:2])
        if soabi.startswith("graalpy"):
            return "_".join(soabi.split("-")[:3])
        return _tag_text(soabi)
    if info.implementation == "cpython":  # Windows CPython <= 3.7 (".pyd")
        major, minor = info.version_info[:2]
        return f"cp{major}{minor}" + ("d" if info.py_debug else "") + ("t" if info.gil_disabled else "")
    return None


_GLIBC = re.compile(r"glibc (\d+)\.(\d+)")


def platform_tag(info: InterpreterInfo) -> str | None:
    """The most specific wheel platform tag the interpreter accepts.

    On glibc Linux that is ``manylinux_<glibc major>_<minor>_<arch>``: it
    carries the glibc floor that decides which binary wheels install.
    Elsewhere, the interpreter's own ``sysconfig.get_platform()`` as a tag.
    """
    generic = _tag_text(info.platform)
    if not generic:
        return None
    if generic.startswith("linux_"):
        arch = generic.split("_", 1)[1]
        if info.pointer_bits == 32:
            arch = {"x86_64": "i686", "aarch64": "armv8l"}.get(arch, arch)
        match = _GLIBC.fullmatch(info.libc or "")
        if match:
            return f"manylinux_{match.group(1)}_{match.group(2)}_{arch}"
        return f"linux_{arch}"
    return generic


def _tag_text(value: str | None) -> str | None:
    if not value:
        return None
    return value.replace(".", "_").replace("-", "_").replace(" ", "_")


# --- direct_url.json (pure) ------------------------------------------------------------


def parse_direct_url(text: str) -> dict[str, Any]:
    """PEP 610 ``direct_url.json`` → source fields (raw, not yet privacy-filtered).

    Raises ``ValueError`` (with the reason) when the file is not the JSON
    object PEP 610 describes.
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise ValueError("no 'url' string")
    out: dict[str, Any] = {"url": url}
    subdirectory = data.get("subdirectory")
    if isinstance(subdirectory, str) and subdirectory:
        out["subdirectory"] = subdirectory
    vcs_info = data.get("vcs_info")
    archive_info = data.get("archive_info")
    dir_info = data.get("dir_info")
    if isinstance(vcs_info, dict):
        out["source"] = "vcs"
        if isinstance(vcs_info.get("vcs"), str):
            out["vcs"] = vcs_info["vcs"]
        if isinstance(vcs_info.get("commit_id"), str):
            out["commit"] = vcs_info["commit_id"]
    elif isinstance(archive_info, dict):
        out["source"] = "url"
        digest = _archive_sha256(archive_info)
        if digest:
            out["archive_hash"] = "sha256:" + digest
    elif isinstance(dir_info, dict):
        out["source"] = "editable" if dir_info.get("editable") is True else "directory"
    else:
        raise ValueError("none of vcs_info, archive_info or dir_info")
    return out


def _archive_sha256(archive_info: dict) -> str | None:
    hashes = archive_info.get("hashes")
    if isinstance(hashes, dict) and isinstance(hashes.get("sha256"), str):
        return hashes["sha256"].lower()
    legacy = archive_info.get("hash")  # "sha256=<hex>", the pre-2023 form
    if isinstance(legacy, str):
        algorithm, _, digest = legacy.partition("=")
        if algorithm.lower() == "sha256":
            return digest.lower()
    return None


def model_checks(cls: type) -> dict[str, chk.Check | None]:
    """The loader's check for each field of a model class, so capture and loader always agree."""
    return {fld.name: fld.metadata.get("check") for fld in records.fields(cls)}


_PACKAGE_CHECKS = model_checks(m.PythonPackage)
_SECTION_CHECKS = model_checks(m.PythonSection)


# --- records -------------------------------------------------------------------------


class FieldFilter:
    """Holds values to the lockfile's field checks; what fails is dropped and warned about."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn

    def keep(self, where: str, check: chk.Check | None, value: str | None) -> str | None:
        if value is None or check is None:
            return value
        problem = check(value)
        if problem:
            self.warn(f"{where}: {scrub_text(problem)}; not recorded")
            return None
        return value


def _version_for_lock(where: str, version: str, warn: Callable[[str], None]) -> str | None:
    """The version as recorded; a legacy one with characters the lock refuses is made safe and reported."""
    if chk.version(version) is None:
        return version
    cleaned = re.sub(r"[^A-Za-z0-9.+!_~:-]+", "_", version.strip()).strip("._-:~!")
    if cleaned and chk.version(cleaned) is None:
        warn(f"{where}: version {shown(version)} has characters a lock cannot hold; recorded as {cleaned!r}")
        return cleaned
    warn(f"{where}: version {shown(version)} cannot be recorded; package skipped")
    return None


def package_from_dist(
    dist: InstalledDist, warn: Callable[[str], None], installer: str | None = None, digests: Any = None
) -> m.PythonPackage | None:
    """One distribution as a lock record (``None`` when not even its name can be recorded).

    ``installer`` overrides the INSTALLER file (a conda package too old to
    have written one).  A package conda installed keeps source ``index``
    whatever its ``direct_url.json`` says: conda-forge's builds leave one
    that points at the build machine's work directory
    (``file:///home/conda/feedstock_root/...``), which says nothing about
    this environment.
    """
    where = str(dist.path)
    name = canonical_name(dist.name)
    if chk.python_name(name) is not None:
        warn(f"{where}: distribution name {shown(dist.name)} is not a valid name; package skipped")
        return None
    version = _version_for_lock(where, dist.version, warn)
    if version is None:
        return None
    keep = FieldFilter(warn).keep
    installer = keep(f"{where}/INSTALLER", _PACKAGE_CHECKS["installer"], installer or dist.installer)
    fields: dict[str, Any] = {
        "name": name,
        "version": version,
        "installer": installer,
        "requested": dist.requested,
    }
    if dist.direct_url_text is not None and installer != "conda":
        fields.update(_source_fields(dist, keep, warn))
    fields.update(_artifact_fields(dist, keep, digests))
    return m.PythonPackage(**fields)


def _artifact_fields(dist: InstalledDist, keep: Callable, digests: Any) -> dict[str, Any]:
    """Wheel tags, build tag and content digest (envlock.capture.artifact); empty for an egg-info."""
    from envlock.capture.artifact import read_artifact

    found = read_artifact(dist.path, digests)
    if found is None:
        return {}
    where = f"{dist.path}/WHEEL"
    tag_check = _PACKAGE_CHECKS["wheel_tags"]
    tags = tuple(t for t in found.wheel_tags if keep(where, tag_check, t) is not None)
    return {
        "wheel_tags": tags,
        "build_tag": keep(where, _PACKAGE_CHECKS["build_tag"], found.build_tag),
        "content_digest": found.content_digest,
    }


def _source_fields(dist: InstalledDist, keep: Callable, warn: Callable[[str], None]) -> dict[str, Any]:
    where = f"{dist.path}/direct_url.json"
    try:
        raw = parse_direct_url(dist.direct_url_text or "")
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        warn(f"{where}: unreadable ({scrub_text(str(exc))[:120]}); source recorded as unknown")
        return {"source": "unknown"}
    url = scrub_text(strip_url_credentials(raw["url"]))
    # A local directory under the home directory is written file://~/... as
    # every other path is: the lock names no user.
    out: dict[str, Any] = {
        "source": raw["source"],
        "url": keep(where, _PACKAGE_CHECKS["url"], url),
        "vcs": keep(where, _PACKAGE_CHECKS["vcs"], raw.get("vcs")),
        "commit": keep(where, _PACKAGE_CHECKS["commit"], raw.get("commit")),
        "subdirectory": keep(where, _PACKAGE_CHECKS["subdirectory"], raw.get("subdirectory")),
        "archive_hash": keep(where, _PACKAGE_CHECKS["archive_hash"], raw.get("archive_hash")),
    }
    return out


def conda_owned_dist_dirs(prefix: str) -> set[str]:
    """Names of ``*.dist-info`` / ``*.egg-info`` directories that a conda package installed.

    Only asked for when some distribution has no INSTALLER file (conda
    packages built before conda wrote one): conda-meta's file lists say who
    put them there.
    """
    from envlock.capture.conda import read_conda_records

    owned: set[str] = set()
    for record in read_conda_records(prefix).records:
        for path in record.get("files") or ():
            if isinstance(path, str):
                for part in path.split("/"):
                    if part.endswith((".dist-info", ".egg-info")):
                        owned.add(part)
    return owned


def probe_python(ctx: Any) -> m.PythonSection:
    info: InterpreterInfo = ctx.interpreter
    warn = ctx.warn
    keep = FieldFilter(warn).keep
    packages = []
    owned_by_conda: set[str] | None = None
    from envlock.capture.artifact import DigestCache

    digests = DigestCache("\n".join(sorted({dist.site_dir for dist in ctx.dists})))
    for dist in ctx.dists:
        installer = None
        if dist.installer is None and info.is_conda:
            if owned_by_conda is None:
                owned_by_conda = conda_owned_dist_dirs(info.prefix)
            if os.path.basename(dist.path) in owned_by_conda:
                installer = "conda"
        pkg = package_from_dist(dist, warn, installer, digests)
        if pkg is not None:
            packages.append(pkg)
    digests.save()
    return m.PythonSection(
        implementation=keep("python.implementation", _SECTION_CHECKS["implementation"], info.implementation),
        version=keep("python.version", _SECTION_CHECKS["version"], info.version),
        abi_tag=keep("python.abi-tag", _SECTION_CHECKS["abi_tag"], abi_tag(info)),
        platform_tag=keep("python.platform-tag", _SECTION_CHECKS["platform_tag"], platform_tag(info)),
        environment_kind=info.environment_kind,
        packages=tuple(packages),
    )
