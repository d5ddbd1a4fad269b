"""The conda layer of a replay: which archives go into the image's prefix, decided without I/O.

A lock's ``[[conda.packages]]`` are installed exactly: every archive from its
recorded URL (or the same file name under ``--conda-channel-url``, a mirror),
checked against its recorded sha256 (md5 when that is all the record has) by
envlock's own installer script *before* rattler sees it, then linked by
py-rattler into :data:`CONDA_PREFIX`.  The conda ``python`` package is the
image's interpreter; the lock's pip-installed packages go on top of the same
prefix through the Python layer, and Python distributions that conda
installed are the conda layer's, never pinned from PyPI.

Every value that reaches the build context is checked here with the narrowest
rule its use needs (THREATS.md C7/C8): http(s) URLs without credentials or
shell/Docker metacharacters, plain archive file names, hex digests.  A lock
whose conda packages cannot all be had (a credential-protected channel, a
record without URL or hash, another platform, an archive its channel no
longer serves) is not replayed half-way: its conda layer becomes findings and
the image is built as before.  For a gone archive that is the rule the Python
layer follows for a pinned wheel gone from its index (everything else builds,
exit 1): the report then lists every difference at once, where a failed build
would show only the first.  Whether an archive is gone is asked of its server
before planning (:mod:`envlock.replay.conda_probe`), so it is a finding, not a
build failure.
"""

from __future__ import annotations

import re

from envlock import records
from envlock.findings import BLOCKER, DIFFERS, EXACT, INFO, NOT_REPRODUCIBLE, Finding
from envlock.lockfile import model as m
from envlock.records import record

CONDA_PREFIX = "/opt/envlock/conda"
CONDA_PYTHON = f"{CONDA_PREFIX}/bin/python"
# Build-stage scratch (never in the final image): the installer venv and the downloads.
INSTALLER_VENV = "/tmp/envlock/conda-installer"
INSTALLER_PYTHON = f"{INSTALLER_VENV}/bin/python"
CONDA_BUILD_DIR = "/tmp/envlock/conda"

# py-rattler, the installer, hash-pinned from PyPI like any other file.  0.28.0
# publishes one Linux wheel, for x86_64 (cp310-abi3, so any python3 >= 3.10 in
# the build stage runs it); sha256 read from the file pip downloaded from
# https://pypi.org/simple on 2026-12-07.
RATTLER_NAME = "py-rattler"
RATTLER_VERSION = "0.28.0"
RATTLER_SHA256 = "4f4ab1d34d5394e7ce130a86e59009c95ace4f5757d9c3af04de1351bcea47eb"
RATTLER_INDEX = "https://pypi.org/simple"
SUPPORTED_PLATFORMS = ("linux-64",)

# A conda archive name as channels serve it: name-version-build plus one of the two formats.
_ARCHIVE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\.(?:tar\.bz2|conda)")
# http(s), a host, an optional port, a path of URL-safe characters: no credentials,
# no spaces, quotes, backslashes or `$` (a `${VAR}` placeholder is a credential).
_URL = re.compile(r"(https?)://([A-Za-z0-9.-]+(?::[0-9]{1,5})?)(/[A-Za-z0-9._~!+,;=:%/-]*)?")
_CREDENTIAL_HINTS = re.compile(r"@|\$\{|/t/[^/]+/", re.IGNORECASE)
_ENCODED_TRAVERSAL = re.compile(r"%(?:2e|2f|5c|00)", re.IGNORECASE)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")


@record
class CondaArchive:
    """One conda package archive to fetch, check and install."""

    name: str
    version: str
    build: str
    subdir: str
    filename: str
    url: str  # where the build stage fetches it (the lock's URL, or the mirror's)
    sha256: str | None  # 64 hex digits
    md5: str | None  # 32 hex digits, checked only when there is no sha256
    locked_url: str  # the URL the lock records, written back into conda-meta

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "subdir": self.subdir,
            "filename": self.filename,
            "url": self.url,
            "sha256": self.sha256,
            "md5": self.md5,
            "locked-url": self.locked_url,
        }


@record
class CondaInstall:
    """The conda layer of a replay plan: the prefix, its archives, and the interpreter it brings."""

    prefix: str
    platform: str
    archives: tuple[CondaArchive, ...]
    python_version: str  # the conda python package's version: the image's interpreter
    mirror: str | None = None
    local: CondaLocal | None = None  # from a pack: every file is on this machine, nothing is fetched
    installer_index: str = RATTLER_INDEX  # where the build stage gets py-rattler (hash-pinned)


@record
class CondaUnavailable:
    """A conda archive URL whose server answered that it cannot be had (see :mod:`envlock.replay.conda_probe`)."""

    url: str
    status: int  # the HTTP status the server answered

    @property
    def needs_credentials(self) -> bool:
        return self.status in (401, 403)


@record
class CondaLocal:
    """The conda layer's files on this machine (a pack's): the build stage fetches nothing.

    ``archives`` are (archive file name, path); the installer checks each
    file's hash itself, as for a download.  ``rattler_wheel`` is the path of
    the hash-pinned py-rattler wheel; ``installer_debs`` are Debian's
    ``python3``/``python3-venv`` files for a base without a Python to run the
    installer (empty when the base has one).
    """

    archives: tuple[tuple[str, str], ...]
    rattler_wheel: str
    installer_debs: tuple[str, ...] = ()


def host_platform(machine: str) -> str:
    """The conda subdir of a Linux machine name (``platform.machine()``)."""
    return {"x86_64": "linux-64", "amd64": "linux-64", "aarch64": "linux-aarch64", "arm64": "linux-aarch64"}.get(
        machine.lower(), f"linux-{machine.lower()}"
    )


def check_channel_url(url: str) -> str:
    """A ``--conda-channel-url`` value, or ``ValueError`` saying why it cannot be used."""
    text = url.strip().rstrip("/")
    if _CREDENTIAL_HINTS.search(text.split("://", 1)[-1]):
        raise ValueError(
            "--conda-channel-url must not carry credentials (user:password@, /t/<token>/, ${VAR}): "
            "they would be written into the image"
        )
    if not _URL.fullmatch(text) or _ENCODED_TRAVERSAL.search(text) or "/../" in text + "/":
        raise ValueError(f"--conda-channel-url {url[:80]!r} is not a plain http(s) URL")
    return text


def _url_problem(url: str | None) -> str | None:
    if not url:
        return "the record has no URL"
    rest = url.split("://", 1)[-1]
    if _CREDENTIAL_HINTS.search(rest):
        return "credentials"
    if len(url) > 2048 or not _URL.fullmatch(url) or _ENCODED_TRAVERSAL.search(url) or "/../" in url:
        return f"its URL {url[:80]!r} is not a plain http(s) URL"
    return None


def _finding(pkg: m.CondaPackage, message: str, fix: str, severity: str = BLOCKER, why: str | None = None) -> Finding:
    return Finding(
        "conda",
        f"conda.packages[{pkg.name}]",
        severity,
        message,
        why=why,
        fix=fix,
        locked=pkg.version + (f" {pkg.build}" if pkg.build else ""),
        status=NOT_REPRODUCIBLE,
        rank=40,
    )


_CREDENTIALS_FIX = "mirror the channel and pass --conda-channel-url URL (a channel readable without credentials)"


def _credentials_finding(
    pkg: m.CondaPackage, detail: str = "", cause: str = "comes from a channel that needs credentials"
) -> Finding:
    return _finding(
        pkg,
        f"{pkg.name} {pkg.version} {cause}{detail}; envlock never writes credentials into a lock or an image",
        _CREDENTIALS_FIX,
        why="a lock names a private channel's files with ${VAR} placeholders (as conda-lock does), never with a token",
    )


def _unavailable_finding(pkg: m.CondaPackage, archive: CondaArchive, answer: CondaUnavailable) -> Finding:
    """A package whose archive URL the server says it no longer serves (or serves only with credentials)."""
    if answer.needs_credentials:
        detail = f" ({archive.url} answered HTTP {answer.status})"
        if answer.status == 403:  # also what a proxy answers for a host it will not pass: say both
            cause = "cannot be fetched: its channel needs credentials, or a proxy on the way refuses it"
            return _credentials_finding(pkg, detail, cause)
        return _credentials_finding(pkg, detail)
    digest = f"sha256 {archive.sha256}" if archive.sha256 else f"md5 {archive.md5}"
    return _finding(
        pkg,
        f"{pkg.name} {pkg.version} {archive.build}: its archive {archive.url} is gone (HTTP {answer.status}); "
        f"the lock has {digest}",
        f"get those bytes back: pass --conda-channel-url MIRROR (a channel that still serves {archive.filename}), "
        "or replay a pack made while it was served (`envlock replay PACK`)",
        why="an explicit conda install without one of its packages is another environment; "
        "no other archive can stand in for the locked bytes",
    )


def plan_conda(
    lock: m.Lock,
    platform: str = "linux-64",
    channel_url: str | None = None,
    unavailable: tuple[CondaUnavailable, ...] = (),
    local: CondaLocal | None = None,
) -> tuple[CondaInstall | None, list[Finding]]:
    """The conda install for ``lock`` on ``platform`` (pure), or None with the findings that say why not.

    None with no findings means the lock has no conda packages.  ``unavailable``:
    what the channel answered for archives it no longer serves (the probe's
    result, made before planning); ``local``: a pack's files, used instead of
    the URLs.
    """
    if lock.conda is None or not lock.conda.packages:
        return None, []
    mirror = check_channel_url(channel_url) if channel_url else None
    answers = {item.url: item for item in unavailable}
    local_names = {name for name, _ in local.archives} if local is not None else set()
    findings: list[Finding] = []
    packages = lock.conda.packages
    foreign = sorted({p.subdir for p in packages if p.subdir and p.subdir not in ("noarch", platform)})
    if foreign:
        findings.append(
            Finding(
                "conda",
                "conda.packages",
                BLOCKER,
                f"the conda packages are built for {', '.join(foreign)}; this image is {platform}",
                why="a conda package's binaries run only on the platform it was built for",
                fix=f"lock the environment for {platform} (conda-lock -p {platform}) and replay that lock",
                status=NOT_REPRODUCIBLE,
                rank=30,
            )
        )
        return None, findings
    if platform not in SUPPORTED_PLATFORMS:
        findings.append(
            Finding(
                "conda",
                "conda.packages",
                BLOCKER,
                f"conda replay installs with py-rattler {RATTLER_VERSION}, which has no wheel for {platform}",
                fix="replay on a linux-64 (x86_64) host",
                status=NOT_REPRODUCIBLE,
                rank=30,
            )
        )
        return None, findings
    archives: list[CondaArchive] = []
    for pkg in packages:
        problem = _url_problem(pkg.url)
        sha = (pkg.sha256 or "").lower().removeprefix("sha256:") or None
        md5 = (pkg.md5 or "").lower().removeprefix("md5:") or None
        if problem == "credentials":
            findings.append(_credentials_finding(pkg))
            continue
        if problem and not mirror:
            findings.append(
                _finding(
                    pkg, f"{pkg.name} {pkg.version} cannot be fetched: {problem}", "pass --conda-channel-url MIRROR"
                )
            )
            continue
        filename = (pkg.url or "").rsplit("/", 1)[-1]
        if not _ARCHIVE_NAME.fullmatch(filename):
            findings.append(
                _finding(
                    pkg,
                    f"{pkg.name} {pkg.version}: {filename[:80]!r} is not a conda archive name (.tar.bz2 or .conda)",
                    "capture the environment again, or import it from conda list --explicit --md5",
                )
            )
            continue
        if not (sha and _HEX64.fullmatch(sha)) and not (md5 and _HEX32.fullmatch(md5)):
            findings.append(
                _finding(
                    pkg,
                    f"{pkg.name} {pkg.version} has no sha256 or md5, so its archive cannot be checked",
                    "export the environment with hashes (conda list --explicit --md5, or conda-lock)",
                )
            )
            continue
        subdir = pkg.subdir or ("noarch" if "/noarch/" in (pkg.url or "") else platform)
        url = f"{mirror}/{subdir}/{filename}" if mirror else str(pkg.url)
        archive = CondaArchive(
            name=pkg.name,
            version=pkg.version,
            build=pkg.build or "",
            subdir=subdir,
            filename=filename,
            url=url,
            sha256=sha if sha and _HEX64.fullmatch(sha) else None,
            md5=None if sha and _HEX64.fullmatch(sha) else md5,
            locked_url=str(pkg.url) if not problem else url,
        )
        answer = answers.get(url)
        if answer is not None and local is None:
            findings.append(_unavailable_finding(pkg, archive, answer))
            continue
        if local is not None and filename not in local_names:
            findings.append(
                _finding(pkg, f"{pkg.name} {pkg.version}: the pack does not carry {filename}", "pack the lock again")
            )
            continue
        archives.append(archive)
    python = next((a for a in archives if a.name == "python"), None)
    if python is None and not findings:
        findings.append(
            Finding(
                "conda",
                "conda.packages[python]",
                BLOCKER,
                "the conda environment has no python package, so it cannot be the image's Python",
                fix="add python to the conda environment, or replay its Python packages alone (envlock import pip-freeze)",
                status=NOT_REPRODUCIBLE,
                rank=40,
            )
        )
    if findings or python is None:
        findings.append(
            Finding(
                "conda",
                "conda.packages",
                BLOCKER,
                f"the conda layer ({len(packages)} packages) is not replayed: not every package can be fetched and checked",
                why="an explicit conda install without some of its packages is a different environment",
                status=NOT_REPRODUCIBLE,
                rank=35,
            )
        )
        return None, findings
    install = CondaInstall(
        prefix=CONDA_PREFIX,
        platform=platform,
        archives=tuple(sorted(archives, key=lambda a: a.name)),
        python_version=python.version,
        mirror=mirror,
        local=local,
    )
    findings.append(
        Finding(
            "conda",
            "conda.packages",
            INFO,
            f"{len(archives)} conda packages are installed into {CONDA_PREFIX} from "
            + ("the pack's files" if local else f"the mirror {mirror}" if mirror else "their recorded URLs")
            + ", each archive checked against its locked hash before py-rattler links it",
            status=EXACT,
            rank=200,
        )
    )
    findings.append(
        Finding(
            "python",
            "python.version",
            INFO,
            f"the interpreter is the conda python {python.version} ({python.build}) in {CONDA_PREFIX}",
            status=EXACT,
            rank=200,
        )
    )
    md5_only = [a.name for a in archives if a.sha256 is None]
    if md5_only:
        findings.append(
            Finding(
                "conda",
                "conda.packages",
                INFO,
                f"{len(md5_only)} conda packages are checked by md5 only (the lock has no sha256): {', '.join(md5_only[:5])}",
                why="md5 detects corruption but not a deliberately forged archive",
                fix="lock with conda-lock or capture the environment, which record sha256",
                status=DIFFERS,
                rank=150,
            )
        )
    return install, findings


def conda_owned(pkg: m.PythonPackage) -> bool:
    """Whether conda installed this Python distribution (its INSTALLER, or a conda record owning its files)."""
    return (pkg.installer or "").lower() == "conda"


def pip_layer_lock(lock: m.Lock) -> m.Lock:
    """``lock`` with only what pip installed on top of the conda packages in its Python layer."""
    if lock.python is None or not lock.python.packages:
        return lock
    kept = tuple(p for p in lock.python.packages if not conda_owned(p))
    if len(kept) == len(lock.python.packages):
        return lock
    return records.replace(lock, python=records.replace(lock.python, packages=kept))


def packages_json(install: CondaInstall) -> str:
    """The installer script's input (data only: it is read by json.load in the build stage)."""
    import json

    data = {
        "prefix": install.prefix,
        "platform": install.platform,
        "packages": [a.to_json() for a in install.archives],
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
