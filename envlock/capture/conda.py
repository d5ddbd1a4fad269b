"""The conda layer: every package recorded in ``<prefix>/conda-meta/*.json``.

Read straight from the prefix, so the ``conda`` binary is not needed (an
env copied to a cluster, a container without conda, a broken base env).
Each record names its channel, subdir, build string, URL and hashes; the
pip-installed packages of the same env are told apart in the Python layer by
their INSTALLER (conda writes ``conda``).

Channels are written the way ``conda install -c`` takes them: the channel
name for anaconda.org and repo.anaconda.com (``conda-forge``, ``pkgs/main``),
the base URL otherwise; never a token (``/t/<token>/``) or user:password.
"""

from __future__ import annotations

import json
import os

from envlock import records
from envlock.capture.privacy import scrub_text, shown, strip_url_credentials
from envlock.lockfile import model as m
from envlock.paths import pure_path_text
from envlock.records import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import Any

# conda-meta files are written by conda itself; a file beyond this is not a
# package record (measured: the largest record in a 400-package CUDA env,
# libcublas-dev, is 0.3 MB).
_MAX_RECORD_BYTES = 64 * 1024 * 1024

# Hosts whose channels conda knows by name.
_NAMED_CHANNEL_HOSTS = ("conda.anaconda.org", "repo.anaconda.com", "repo.continuum.io")


@record(frozen=False)
class CondaRecords:
    """The parsed ``conda-meta/*.json`` of a prefix: (file name, data) pairs and what could not be read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# prefix -> (conda-meta mtime_ns, records): the Python probe asks for the file
# lists of the same records that the conda probe reads, and a conda env's
# records can add up to tens of MB of JSON.
_CACHE: dict[str, tuple[int, CondaRecords]] = {}


def conda_meta_dir(prefix: str | os.PathLike) -> str:
    return pure_path_text(os.path.join(prefix, "conda-meta"))


def read_conda_records(prefix: str | os.PathLike) -> CondaRecords:
    """Every ``conda-meta/*.json`` of ``prefix``, parsed; broken ones become warnings, not errors."""
    meta = conda_meta_dir(prefix)
    try:
        stamp = os.stat(meta).st_mtime_ns
        names = sorted(n for n in os.listdir(meta) if n.endswith(".json"))
    except OSError:
        return CondaRecords()
    key = str(meta)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    result = CondaRecords()
    for name in names:
        path = os.path.join(meta, name)
        try:
            with open(path, "rb") as fh:
                raw = fh.read(_MAX_RECORD_BYTES + 1)
        except OSError as exc:
            result.warnings.append(f"{path}: unreadable ({type(exc).__name__}); package not recorded")
            continue
        if len(raw) > _MAX_RECORD_BYTES:
            result.warnings.append(f"{path}: larger than {_MAX_RECORD_BYTES // 2**20} MiB; package not recorded")
            continue
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
            result.warnings.append(f"{path}: {reason}; package not recorded")
            continue
        if not isinstance(data, dict):
            result.warnings.append(f"{path}: not a JSON object; package not recorded")
            continue
        result.records.append(data)
        result.files.append(name)
    _CACHE[key] = (stamp, result)
    return result


# --- pure parsing -----------------------------------------------------------------


def channel_name(channel: str | None, url: str | None, subdir: str | None) -> str | None:
    """The channel as ``conda install -c`` takes it, from a record's ``channel`` (or its ``url``).

    ``https://conda.anaconda.org/conda-forge/osx-arm64`` → ``conda-forge``;
    ``https://repo.anaconda.com/pkgs/main/linux-64`` → ``pkgs/main``;
    ``conda-forge/osx-arm64`` → ``conda-forge``; other servers keep their
    base URL without the subdir; tokens and passwords are removed.
    """
    source = channel
    if not source and url:
        source = url.rsplit("/", 1)[0]  # drop the file name
    if not source:
        return None
    source = strip_url_credentials(source.strip().rstrip("/"))
    if subdir and source.endswith("/" + subdir):
        source = source[: -len(subdir) - 1]
    if "://" not in source:
        return source or None  # already a name ("conda-forge", "pkgs/main", "defaults")
    from urllib.parse import urlsplit  # only for a channel given as a URL

    parts = urlsplit(source)
    if parts.hostname in _NAMED_CHANNEL_HOSTS and parts.path.strip("/"):
        return parts.path.strip("/")
    return source


def parse_conda_record(data: dict[str, Any], file_name: str) -> dict[str, Any]:
    """A conda-meta record → CondaPackage fields (pure; values not yet checked)."""

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    name, version, build = text("name"), text("version"), text("build")
    if not (name and version):
        # conda-meta files are named <name>-<version>-<build>.json
        stem = file_name[: -len(".json")] if file_name.endswith(".json") else file_name
        pieces = stem.rsplit("-", 2)
        if len(pieces) == 3:
            name = name or pieces[0]
            version = version or pieces[1]
            build = build or pieces[2]
    subdir = text("subdir")
    url = text("url")
    sha256 = text("sha256")
    md5 = text("md5")
    return {
        "name": name,
        "version": version,
        "build": build,
        "channel": channel_name(text("channel"), url, subdir),
        "subdir": subdir,
        "url": strip_url_credentials(url) if url else None,
        "md5": md5.lower() if md5 else None,
        "sha256": "sha256:" + sha256.lower() if sha256 else None,
    }


# --- probe ------------------------------------------------------------------------


def _checks() -> dict[str, Any]:
    return {fld.name: fld.metadata.get("check") for fld in records.fields(m.CondaPackage)}


def package_from_record(data: dict[str, Any], file_name: str, where: str, warn: Any) -> m.CondaPackage | None:
    """A lock record for one conda package; a field the loader would refuse is dropped and warned about."""
    checks = _checks()
    fields = parse_conda_record(data, file_name)
    for key in ("name", "version"):
        value = fields[key]
        problem = "missing" if not value else checks[key](value)
        if problem:
            warn(f"{where}: {key} {shown(value) if value else ''} {problem}; package not recorded".replace("  ", " "))
            return None
    kept: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        value = scrub_text(value)
        problem = checks[key](value) if checks.get(key) else None
        if problem:
            warn(f"{where}: {key} {problem}; not recorded")
            continue
        kept[key] = value
    return m.CondaPackage(**kept)


def probe_conda(ctx: Any) -> m.CondaSection | None:
    """The prefix's conda packages, or ``None`` when the prefix is not a conda env."""
    prefix = ctx.interpreter.prefix
    if not os.path.isdir(conda_meta_dir(prefix)):
        return None
    found = read_conda_records(prefix)
    for warning in found.warnings:
        ctx.warn(warning)
    packages: dict[str, m.CondaPackage] = {}
    for data, file_name in zip(found.records, found.files, strict=True):
        where = os.path.join(conda_meta_dir(prefix), file_name)
        pkg = package_from_record(data, file_name, where, ctx.warn)
        if pkg is None:
            continue
        first = packages.get(pkg.name)
        if first is not None:
            # Two records for one name: an interrupted transaction.  conda
            # itself would pick one arbitrarily; say so and keep the first.
            ctx.warn(f"{where}: a second record for {pkg.name} ({pkg.version}); recorded {first.version}")
            continue
        packages[pkg.name] = pkg
    return m.CondaSection(packages=tuple(packages.values()))
