"""Import ``pip freeze`` output, or a requirements.txt whose requirements are pinned.

What pip freeze and pip-compile write, and how each becomes a package:

* ``name==version`` (also ``===``) -> installed from an index;
  ``--hash=sha256:...`` options -> the archive hash when there is exactly one
  sha256 (several hashes name several files, and which one was installed is
  unknown);
* ``name @ https://.../name-1.0-py3-none-any.whl`` -> a direct URL, the
  version read from the file name; ``name @ git+https://host/repo@<commit>``
  -> a VCS install (pip freeze gives no version for these: skipped, warned);
* ``-e <path>`` after pip's ``# Editable install with no version control
  (name==version)`` comment -> an editable install, the path written with
  ``~`` for the home directory;
* comments, blank lines, ``\\`` line continuations and environment markers
  (``; python_version < "3.11"``) as pip reads them.

A requirement that is not pinned to one version (``numpy>=1.20``) does not
say what was installed: it is skipped with a warning.  Index options
(``--index-url``, ``--extra-index-url``, ``--find-links``) are not recorded;
they may carry credentials and say nothing about what was installed.
A line that pip itself could not read is a ``FormatError`` naming the line.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from envlock.formats.importers import ImportContext, checked, shown, split_lines, unique
from envlock.lockfile import model as m
from envlock.names import canonical_name

_EDITABLE_COMMENT = re.compile(
    r"^#\s*Editable (?:Git )?install with no (?:version control|remote) \((?P<name>[^=\s]+)==(?P<version>[^)\s]+)\)"
)
_COMMENT = re.compile(r"(^|\s+)#.*$")
_HASH_OPTION = re.compile(r"\s--hash[=\s]+(?P<value>\S+)")
_PER_REQUIREMENT_OPTION = re.compile(
    r"\s(?P<option>--(?:global-option|install-option|config-settings|config-setting))(?:[=\s]+\S+)?"
)
_HASH_VALUE = re.compile(r"(?P<algo>md5|sha1|sha224|sha256|sha384|sha512):(?P<hex>[0-9A-Fa-f]+)")
_HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
# Options that describe where to look, not what was installed.
_GLOBAL_OPTIONS = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--trusted-host",
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
    "--require-hashes",
    "--use-feature",
    "--no-deps",
}
_INCLUDE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}
_VCS = ("git", "hg", "svn", "bzr")
# A name without a readable version is kept, with this version and a warning saying why:
# dropping it would make the package look missing.  `envlock diff` treats it as unknown.
UNKNOWN_VERSION = "unknown"
_ARCHIVE = re.compile(r"\.(whl|tar\.gz|tar\.bz2|tar\.xz|zip|tgz)$", re.IGNORECASE)


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    lines = split_lines(text, ctx)
    packages = parse_requirements(list(enumerate(lines, 1)), ctx)
    return {"python": m.PythonSection(packages=packages)}


def logical_lines(numbered: list[tuple[int, str]], ctx: ImportContext) -> list[tuple[int, str]]:
    """Join ``\\``-continued lines; each result keeps the number of its first line."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line in numbered:
        if pending is not None:
            start, text = pending
            line_text = text + " " + line.strip()
        else:
            start, line_text = number, line
        if line_text.rstrip().endswith("\\") and not line_text.lstrip().startswith("#"):
            pending = (start, line_text.rstrip()[:-1].rstrip())
            continue
        pending = None
        out.append((start, line_text))
    if pending is not None:
        raise ctx.fail(
            "the last line ends with a line continuation '\\' but nothing follows; the file looks truncated",
            pending[0],
            hint="import the whole file",
        )
    return out


def parse_requirements(numbered: list[tuple[int, str]], ctx: ImportContext) -> tuple[m.PythonPackage, ...]:
    """Requirement lines (with their line numbers) to packages; also used for conda env's ``pip:`` list."""
    packages: list[m.PythonPackage] = []
    editable_version: tuple[str, str] | None = None
    with_markers = 0
    for number, raw in logical_lines(numbered, ctx):
        stripped = raw.strip()
        comment = _EDITABLE_COMMENT.match(stripped)
        if comment:
            editable_version = (comment.group("name"), comment.group("version"))
            continue
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            package = _option_line(line, number, editable_version, ctx)
            editable_version = None
            if package is not None:
                packages.append(package)
            continue
        editable_version = None
        package, has_marker = _requirement_line(line, number, ctx)
        with_markers += has_marker
        if package is not None:
            packages.append(package)
    if with_markers:
        ctx.warn(
            f"{with_markers} requirements carry environment markers; they are recorded as if they applied to this environment"
        )
    return unique(packages, lambda p: p.name, ctx, "Python package")


def _option_line(
    line: str, number: int, editable_version: tuple[str, str] | None, ctx: ImportContext
) -> m.PythonPackage | None:
    option, _, value = line.partition(" ")
    if "=" in option and option.startswith("--"):
        option, _, value = option.partition("=")
    value = value.strip()
    if option in ("-e", "--editable"):
        if not value:
            raise ctx.fail("-e without a path or URL", number, hint="pip cannot read this line either")
        return _editable(value, number, editable_version, ctx)
    if option in _INCLUDE_OPTIONS:
        ctx.warn(f"{option} {shown(value)} is not followed; import that file on its own", number)
        return None
    if option in _GLOBAL_OPTIONS:
        ctx.warn(f"option {option} is not recorded (it says where to look, not what was installed)", number)
        return None
    raise ctx.fail(
        f"unknown option {shown(option)}", number, hint="pip cannot read this line either; is this a requirements file?"
    )


def _editable(
    value: str, number: int, editable_version: tuple[str, str] | None, ctx: ImportContext
) -> m.PythonPackage | None:
    vcs = _split_vcs(value)
    if vcs is not None:
        name = vcs["egg"]
        version = (
            editable_version[1]
            if editable_version and name and canonical_name(editable_version[0]) == canonical_name(name)
            else None
        )
        if not name:
            ctx.warn(f"editable VCS install {shown(value)}: it names no package (#egg=); not recorded", number)
            return None
        if not version:
            ctx.warn(
                f"editable {shown(name)}: pip freeze gives no version for a VCS checkout; recorded with version "
                f"{UNKNOWN_VERSION!r}",
                number,
            )
            version = UNKNOWN_VERSION
        return checked(
            m.PythonPackage,
            {
                "name": canonical_name(name),
                "version": version,
                "source": "editable",
                "vcs": vcs["vcs"],
                "url": vcs["url"],
                "commit": vcs["commit"],
                "subdirectory": vcs["subdirectory"],
            },
            f"editable {shown(name)}",
            ctx,
            number,
        )
    if editable_version is None:
        ctx.warn(
            f"editable install {shown(value)}: no name and version for it (pip freeze writes them in a comment above); not recorded",
            number,
        )
        return None
    name, version = editable_version
    return checked(
        m.PythonPackage,
        {"name": canonical_name(name), "version": version, "source": "editable", "url": _local_url(value)},
        f"editable {shown(name)}",
        ctx,
        number,
    )


def _local_url(value: str) -> str | None:
    """``file://`` URL of an absolute local path, home written as ``~``; ``None`` for relative paths."""
    from envlock.capture.privacy import private_url

    if value.startswith("file:"):
        path = unquote(urlsplit(value).path)
    elif value.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", value):
        path = value
    else:
        return None  # relative to a directory that is not known here
    return private_url("file://" + ("" if path.startswith("/") else "/") + path.replace("\\", "/"))


def _requirement_line(line: str, number: int, ctx: ImportContext) -> tuple[m.PythonPackage | None, bool]:
    from packaging.requirements import InvalidRequirement, Requirement

    hashes = []
    for found in _HASH_OPTION.finditer(" " + line):
        value = found.group("value")
        parsed = _HASH_VALUE.fullmatch(value)
        if not parsed or len(parsed.group("hex")) != _HASH_LENGTHS[parsed.group("algo")]:
            raise ctx.fail(
                f"--hash {shown(value)} is not algorithm:hexdigest", number, hint="the hash looks cut off or damaged"
            )
        hashes.append((parsed.group("algo"), parsed.group("hex").lower()))
    text = _HASH_OPTION.sub("", " " + line).strip()
    for found in _PER_REQUIREMENT_OPTION.finditer(" " + text):
        ctx.warn(f"option {found.group('option')} is not recorded", number)
    text = _PER_REQUIREMENT_OPTION.sub("", " " + text).strip()
    if " --" in f" {text}":
        option = re.search(r"(?:^|\s)(--\S+)", text)
        raise ctx.fail(
            f"unknown option {shown(option.group(1) if option else text)}",
            number,
            hint="pip cannot read this line either",
        )
    sha256 = [digest for algo, digest in hashes if algo == "sha256"]
    archive_hash = f"sha256:{sha256[0]}" if len(sha256) == 1 else None
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        bare = _bare_archive(text, number, archive_hash, ctx)
        if bare is not None:
            return bare, False
        first = str(exc).splitlines()[0]
        raise ctx.fail(
            f"not a requirement: {shown(text)} ({first})",
            number,
            hint="pip cannot read this line either; is the file cut off or damaged?",
        ) from None
    has_marker = req.marker is not None
    name = canonical_name(req.name)
    where = f"requirement {shown(req.name)}"
    if req.url:
        return _direct_url(name, req.url, number, archive_hash, ctx), has_marker
    pins = [spec for spec in req.specifier if spec.operator in ("==", "===") and "*" not in spec.version]
    version = pins[0].version if len(pins) == 1 and len(req.specifier) == 1 else UNKNOWN_VERSION
    if version == UNKNOWN_VERSION:
        ctx.warn(
            f"{where} {shown(str(req.specifier) or 'with no version')} is not pinned to one version; "
            f"recorded with version {UNKNOWN_VERSION!r}",
            number,
        )
    return checked(
        m.PythonPackage,
        {"name": name, "version": version, "source": "index", "archive_hash": archive_hash},
        where,
        ctx,
        number,
    ), has_marker


def _bare_archive(text: str, number: int, archive_hash: str | None, ctx: ImportContext) -> m.PythonPackage | None:
    """A requirement given as a bare wheel/sdist URL or path: name and version come from the file name."""
    if not _ARCHIVE.search(text) or " " in text:
        return None
    parsed = _archive_name_version(text)
    if parsed is None:
        return None
    name, version = parsed
    url = text if "://" in text else _local_url(text)
    return checked(
        m.PythonPackage,
        {
            "name": name,
            "version": version,
            "source": "url",
            "url": _clean_url(url) if url else None,
            "archive_hash": archive_hash,
        },
        f"archive {shown(text)}",
        ctx,
        number,
    )


def _archive_name_version(location: str) -> tuple[str, str] | None:
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

    filename = unquote(re.split(r"[\\/]", location.split("#")[0].split("?")[0])[-1])
    try:
        if filename.lower().endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return str(name), str(version)


def _clean_url(url: str) -> str:
    from envlock.capture.privacy import private_url

    return private_url(url)


def _split_vcs(url: str) -> dict[str, Any] | None:
    """``git+https://host/repo@rev#egg=name&subdirectory=sub`` -> its parts (PEP 610 shape), or ``None``."""
    scheme = url.split("://", 1)[0]
    if "+" not in scheme or scheme.split("+", 1)[0] not in _VCS:
        return None
    vcs, _, transport = scheme.partition("+")
    rest = url.split("://", 1)[1] if "://" in url else ""
    base, _, fragment = rest.partition("#")
    authority, slash, path = base.partition("/")
    commit = None
    if "@" in path:
        path, _, revision = path.rpartition("@")
        commit = revision if re.fullmatch(r"[0-9a-f]{7,64}", revision) else None
    params = dict(part.split("=", 1) for part in fragment.split("&") if "=" in part)
    egg = params.get("egg")
    return {
        "vcs": vcs,
        "url": _clean_url(f"{transport}://{authority}{slash}{path}"),
        "commit": commit,
        "egg": egg.split("[")[0] if egg else None,
        "subdirectory": params.get("subdirectory"),
    }


def _direct_url(
    name: str, url: str, number: int, archive_hash: str | None, ctx: ImportContext
) -> m.PythonPackage | None:
    where = f"requirement {shown(name)}"
    vcs = _split_vcs(url)
    if vcs is not None:
        ctx.warn(
            f"{where} @ {vcs['vcs']} URL: pip freeze gives no version for VCS installs; "
            f"recorded with version {UNKNOWN_VERSION!r}",
            number,
        )
        return checked(
            m.PythonPackage,
            {
                "name": name,
                "version": UNKNOWN_VERSION,
                "source": "vcs",
                "vcs": vcs["vcs"],
                "url": vcs["url"],
                "commit": vcs["commit"],
                "subdirectory": vcs["subdirectory"],
            },
            where,
            ctx,
            number,
        )
    is_archive = bool(_ARCHIVE.search(url.split("#")[0]))
    parsed = _archive_name_version(url) if is_archive else None
    local = url.startswith("file:")
    if parsed is None:
        # Every package of a conda env built by conda-build shows as `name @ file:///.../work`:
        # the directory it was built from, which names no version.
        why = "a local build directory" if local and not is_archive else "a URL"
        ctx.warn(
            f"{where} @ {shown(url)}: {why} gives no version; recorded with version {UNKNOWN_VERSION!r}",
            number,
        )
    fragment_hash = re.search(r"#sha256=([0-9a-f]{64})", url)
    if fragment_hash and archive_hash is None:
        archive_hash = f"sha256:{fragment_hash.group(1)}"
    clean = _local_url(url) if local else _clean_url(url.split("#")[0])
    return checked(
        m.PythonPackage,
        {
            "name": name,
            "version": parsed[1] if parsed else UNKNOWN_VERSION,
            "source": "directory" if local and not is_archive else "url",
            "url": clean,
            "archive_hash": archive_hash,
        },
        where,
        ctx,
        number,
    )
