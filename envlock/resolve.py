"""Turn a lock's Python packages into a hash-pinned install set.

Each locked ``name==version`` is resolved to the one distribution file that a
target interpreter would install, with the sha256 the index publishes for it.
The result (:class:`PinSet`) is data: replay writes it as a requirements file
with ``--hash`` (installed with ``pip install --require-hashes --no-deps
--only-binary :all:``) or as a ``pylock.toml``; ``envlock export`` does the same.

Why not ``pip lock``: pip 26.3's ``pip lock`` has no ``--python-version`` /
``--platform`` / ``--abi`` options (checked with ``pip lock --help``), so it can
only pick files for the interpreter it runs under, and a lock captured on
Python 3.12 or on aarch64 would get the wrong wheels.  The index's own answer
(PEP 691 JSON, or PEP 503 HTML for indexes such as download.pytorch.org) has
every file with its hash, and :mod:`packaging.tags` ranks the files for any
target, so we read the index directly with the system CA bundle.

Portability rules (THREATS.md C7, C10):

- Only the indexes the caller names are read (default https://pypi.org/simple);
  this machine's pip configuration is never consulted.
- A file whose URL is ``file://`` or a loopback/link-local host is never
  written into the result as if another machine could fetch it: the package is
  *not reproducible*, unless the caller named a wheelhouse (``--find-links
  DIR``) that holds the file; then the pin points at that file and the caller
  copies it into the build context (:func:`copy_wheelhouse_files`).
- PyTorch's local labels (``+cu121``, ``+cpu``, ``+rocm6.0``) name the
  per-variant index https://download.pytorch.org/whl/<label>; PyPI never hosts
  local versions, so that index is searched first.
"""

from __future__ import annotations

import hashlib
import html.parser
import ipaddress
import json
import os
import re
import shutil
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from envlock import records
from envlock.findings import CHANGED, INFO, NOT_REPRODUCIBLE, NUMERIC, Finding
from envlock.lockfile import model as m
from envlock.records import record

DEFAULT_INDEX = "https://pypi.org/simple"
PYTORCH_INDEX = "https://download.pytorch.org/whl"
# PyTorch's local version labels, each naming an index under PYTORCH_INDEX.
_PYTORCH_LABEL = re.compile(r"cu[0-9]{2,3}|cpu|cpu\.cxx11\.abi|rocm[0-9]+(?:\.[0-9]+)*|xpu")
_FULL_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
# Project pages are small (PyPI's torch page is ~1 MB of JSON); a cap keeps a
# hostile index from filling memory.
MAX_PAGE_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
WORKERS = 8


# --- the result ------------------------------------------------------------------


@record
class Pin:
    """One package resolved to one file with its sha256."""

    name: str  # as locked
    version: str
    filename: str
    sha256: str  # 64 lowercase hex digits
    kind: str  # "wheel" or "sdist"
    # Where another machine fetches the file (https), or None for a wheelhouse file.
    url: str | None = None
    # The index page it was found on (None for a direct URL or a wheelhouse).
    index: str | None = None
    # A file in a user-named wheelhouse, to be copied into the build context.
    wheelhouse_file: str | None = None
    size: int | None = None
    upload_time: str | None = None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None


@record
class VcsRef:
    """A package installed from a VCS commit: reproducible by commit, but pip cannot hash-check it."""

    name: str
    version: str
    vcs: str
    url: str
    commit: str
    subdirectory: str | None = None


@record
class Problem:
    """A package that cannot be pinned portably, and why."""

    name: str
    version: str
    reason: str
    fix: str | None = None


@record
class Target:
    """The interpreter and platform the files are chosen for."""

    python_version: tuple[int, int]
    interpreter: str  # "cp311", "pp310"
    abis: tuple[str, ...]
    platforms: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(self.platforms[:2]) + (", ..." if len(self.platforms) > 2 else "")
        return f"{self.interpreter} ({'/'.join(self.abis) or 'no abi'}) on {shown}"


@record
class PinSet:
    pins: tuple[Pin, ...] = ()
    vcs: tuple[VcsRef, ...] = ()
    problems: tuple[Problem, ...] = ()
    target: Target | None = None
    index_url: str = DEFAULT_INDEX
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """True when every locked package has a hash-checked file."""
        return not self.problems and not self.vcs

    def to_findings(self) -> list[Finding]:
        """Findings for a replay/export report: each package that is not pinned exactly."""
        out = []
        for problem in self.problems:
            out.append(
                Finding(
                    layer="python",
                    path=f"python.packages[{problem.name}]",
                    severity=NUMERIC,
                    message=f"{problem.name} {problem.version} cannot be pinned: {problem.reason}",
                    why="the package would have to come from somewhere envlock cannot check, or be left out",
                    fix=problem.fix,
                    locked=problem.version,
                    status=NOT_REPRODUCIBLE,
                    rank=80,
                )
            )
        for ref in self.vcs:
            out.append(
                Finding(
                    layer="python",
                    path=f"python.packages[{ref.name}]",
                    severity=INFO,
                    message=f"{ref.name} {ref.version} comes from {ref.vcs} commit {ref.commit[:12]}; pip cannot hash-check a VCS checkout",
                    why="the commit pins the source, but the build from it is not verified by a file hash",
                    fix="build a wheel from that commit and pass its directory with --find-links",
                    locked=ref.commit,
                    status=CHANGED,
                    rank=80,
                )
            )
        for pin in self.pins:
            if pin.yanked:
                reason = f" ({pin.yanked_reason})" if pin.yanked_reason else ""
                out.append(
                    Finding(
                        layer="python",
                        path=f"python.packages[{pin.name}]",
                        severity=INFO,
                        message=f"{pin.name} {pin.version} is yanked on its index{reason}; pinned anyway",
                        why="a yanked release was withdrawn by its authors, often for a bug that can affect results",
                        locked=pin.version,
                        status="exact",
                        rank=80,
                    )
                )
        return out


# --- targets ---------------------------------------------------------------------

_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def _linux_platforms(arch: str, glibc: tuple[int, int]) -> list[str]:
    """manylinux tags this glibc can run, newest first, then the plain linux tag (PEP 600)."""
    out = []
    major, minor = glibc
    floor = 17 if arch not in ("x86_64", "i686") else 5
    for m_minor in range(minor, floor - 1, -1):
        out.append(f"manylinux_{major}_{m_minor}_{arch}")
        legacy = _LEGACY_MANYLINUX.get((major, m_minor))
        if legacy and (arch in ("x86_64", "i686") or legacy == "manylinux2014"):
            out.append(f"{legacy}_{arch}")
    out.append(f"linux_{arch}")
    return out


def _parse_version_pair(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    match = re.match(r"([0-9]+)\.([0-9]+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def target_from_lock(lock: m.Lock) -> Target:
    """The interpreter and platform a lock was captured on, as wheel tags.

    Missing facts fall back to this machine's interpreter; the caller can see
    which by comparing with :func:`running_target`.
    """
    from packaging import tags

    python = lock.python
    fallback = running_target()
    if python is None:
        return fallback
    version = _parse_version_pair(python.version) or fallback.python_version
    impl = (python.implementation or "cpython").lower()
    prefix = {"cpython": "cp", "cp": "cp", "pypy": "pp", "pp": "pp"}.get(impl, "cp")
    interpreter = f"{prefix}{version[0]}{version[1]}"
    abi = _abi_from_text(python.abi_tag, prefix, version)
    abis = (abi,) if abi else ()
    platform = (python.platform_tag or "").replace("-", "_").replace(".", "_")
    platforms: list[str]
    linux = re.fullmatch(r"(?:linux|manylinux_([0-9]+)_([0-9]+)|manylinux[0-9]+)_([a-z0-9_]+)", platform)
    if linux:
        arch = linux.group(3)
        glibc = None
        if linux.group(1):
            glibc = (int(linux.group(1)), int(linux.group(2)))
        if lock.os is not None and lock.os.glibc:
            glibc = _parse_version_pair(lock.os.glibc) or glibc
        platforms = _linux_platforms(arch, glibc or (2, 17))
    elif platform.startswith("macosx_"):
        parts = platform.split("_")
        try:
            mac_version = (int(parts[1]), int(parts[2]) if len(parts) > 3 else 0)
            arch = "_".join(parts[3:]) if len(parts) > 3 else parts[-1]
            platforms = list(tags.mac_platforms(mac_version, arch))
        except (ValueError, IndexError):
            platforms = [platform]
    elif platform:
        platforms = [platform]
    else:
        platforms = list(fallback.platforms)
    return Target(version, interpreter, abis, tuple(platforms))


def _abi_from_text(text: str | None, prefix: str, version: tuple[int, int]) -> str | None:
    if not text:
        return f"{prefix}{version[0]}{version[1]}" if prefix == "cp" else None
    # sysconfig SOABI ("cpython-311-x86_64-linux-gnu") or a wheel tag ("cp311").
    soabi = re.fullmatch(r"cpython-([0-9])([0-9]+)(t?)(d?)-.*", text)
    if soabi:
        return f"cp{soabi.group(1)}{soabi.group(2)}{soabi.group(3)}{soabi.group(4)}"
    return text.replace("-", "_").replace(".", "_")


def running_target() -> Target:
    """This interpreter's tags (used when a lock does not say)."""
    import sys

    from packaging import tags

    ordered = list(tags.sys_tags())
    platforms: list[str] = []
    abis: list[str] = []
    for tag in ordered:
        if tag.platform not in platforms and tag.platform != "any":
            platforms.append(tag.platform)
        if tag.abi not in abis and tag.abi not in ("none", "abi3"):
            abis.append(tag.abi)
    prefix = "pp" if sys.implementation.name == "pypy" else "cp"
    return Target(
        sys.version_info[:2], f"{prefix}{sys.version_info[0]}{sys.version_info[1]}", tuple(abis), tuple(platforms)
    )


def target_tags(target: Target) -> dict[object, int]:
    """Every tag the target accepts, mapped to its preference (lower is better)."""
    from packaging import tags

    ordered: list = []
    if target.interpreter.startswith("cp"):
        ordered.extend(tags.cpython_tags(target.python_version, list(target.abis) or None, list(target.platforms)))
    else:
        ordered.extend(tags.generic_tags(target.interpreter, list(target.abis) or None, list(target.platforms)))
    ordered.extend(tags.compatible_tags(target.python_version, target.interpreter, list(target.platforms)))
    ranks: dict[object, int] = {}
    for i, tag in enumerate(ordered):
        ranks.setdefault(tag, i)
    return ranks


# --- index pages -----------------------------------------------------------------


@record
class IndexFile:
    filename: str
    url: str
    sha256: str | None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    size: int | None = None
    upload_time: str | None = None


class IndexUnavailable(Exception):
    """An index that could not be read (unreachable, refused, bad answer)."""


class NotOnIndex(Exception):
    """The index answered, and it has no such project."""


def parse_simple_json(text: str, page_url: str) -> list[IndexFile]:
    """A PEP 691 JSON project page to its files (URLs made absolute)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise IndexUnavailable(f"{page_url}: not valid JSON ({exc})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise IndexUnavailable(f"{page_url}: a JSON answer without a 'files' list")
    out = []
    for item in files:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("filename"), str)
            or not isinstance(item.get("url"), str)
        ):
            continue
        hashes = item.get("hashes") if isinstance(item.get("hashes"), dict) else {}
        sha = hashes.get("sha256")
        yanked = item.get("yanked", False)
        size = item.get("size")
        out.append(
            IndexFile(
                filename=item["filename"],
                url=urllib.parse.urljoin(page_url, item["url"]),
                sha256=sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) else None,
                requires_python=item.get("requires-python") if isinstance(item.get("requires-python"), str) else None,
                yanked=bool(yanked),
                yanked_reason=yanked if isinstance(yanked, str) and yanked else None,
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                upload_time=item.get("upload-time") if isinstance(item.get("upload-time"), str) else None,
            )
        )
    return out


class _AnchorParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], list[str]]] = []
        self._current: tuple[dict[str, str | None], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = (dict(attrs), [])
            self.anchors.append(self._current)

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._current = None


def parse_simple_html(text: str, page_url: str) -> list[IndexFile]:
    """A PEP 503 HTML project page (or a find-links page) to its files."""
    parser = _AnchorParser()
    parser.feed(text)
    parser.close()
    out = []
    for attrs, texts in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url = urllib.parse.urljoin(page_url, href)
        parsed = urllib.parse.urlsplit(url)
        filename = urllib.parse.unquote(parsed.path.rsplit("/", 1)[-1])
        sha = None
        fragment = urllib.parse.parse_qs(parsed.fragment)
        if "sha256" in fragment and re.fullmatch(r"[0-9a-fA-F]{64}", fragment["sha256"][0]):
            sha = fragment["sha256"][0].lower()
        yanked_attr = "data-yanked" in attrs
        yanked_reason = attrs.get("data-yanked") or None
        out.append(
            IndexFile(
                filename=filename or "".join(texts).strip(),
                url=urllib.parse.urlunsplit(parsed._replace(fragment="")),
                sha256=sha,
                requires_python=attrs.get("data-requires-python") or None,
                yanked=yanked_attr,
                yanked_reason=yanked_reason,
            )
        )
    return out


def is_machine_local(url: str) -> bool:
    """A URL that only this machine can fetch: file://, or a loopback/link-local/unnamed host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return True
    host = (parts.hostname or "").lower()
    if not host or host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a bare name resolves only on this network
    return address.is_loopback or address.is_link_local or address.is_unspecified


def _ssl_context() -> ssl.SSLContext:
    # The system bundle (this machine's TLS-intercepting proxy CA lives there);
    # SSL_CERT_FILE wins when set, as it does for OpenSSL itself.
    cafile = os.environ.get("SSL_CERT_FILE")
    if not cafile or not os.path.isfile(cafile):
        cafile = "/etc/ssl/certs/ca-certificates.crt" if os.path.isfile("/etc/ssl/certs/ca-certificates.crt") else None
    return ssl.create_default_context(cafile=cafile)


class IndexReader:
    """Reads project pages from indexes, once per (index, project); thread-safe."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._pages: dict[tuple[str, str], list[IndexFile] | Exception] = {}
        self._dead: dict[str, str] = {}  # index -> why it is unreachable
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None

    def project_files(self, index: str, project: str) -> list[IndexFile]:
        key = (index, project)
        with self._lock:
            cached = self._pages.get(key)
            dead = self._dead.get(index)
        if dead is not None:
            raise IndexUnavailable(dead)
        if cached is None:
            try:
                cached = self._fetch(index, project)
            except (IndexUnavailable, NotOnIndex) as exc:
                cached = exc
            with self._lock:
                self._pages[key] = cached
        if isinstance(cached, Exception):
            raise cached
        return cached

    def _fetch(self, index: str, project: str) -> list[IndexFile]:
        page_url = index.rstrip("/") + "/" + project + "/"
        if page_url.startswith("file://"):
            return self._fetch_file(page_url)
        if self._context is None:
            self._context = _ssl_context()
        request = urllib.request.Request(page_url, headers={"Accept": _ACCEPT, "User-Agent": "envlock"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                body = response.read(MAX_PAGE_BYTES + 1)
                content_type = response.headers.get("Content-Type", "")
                final_url = response.geturl()
        except urllib.error.HTTPError as exc:
            # The error carries the open response; unclosed, its TLS socket is
            # reported (ResourceWarning) whenever the garbage collector finds it.
            exc.close()
            if exc.code == 404:
                raise NotOnIndex(f"{index} has no project {project!r}") from None
            raise IndexUnavailable(f"{page_url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            why = f"{index} is unreachable ({reason})"
            with self._lock:
                self._dead[index] = why
            raise IndexUnavailable(why) from None
        if len(body) > MAX_PAGE_BYTES:
            raise IndexUnavailable(f"{page_url}: the answer is larger than {MAX_PAGE_BYTES} bytes")
        text = body.decode("utf-8", errors="replace")
        if "json" in content_type:
            return parse_simple_json(text, final_url)
        return parse_simple_html(text, final_url)

    @staticmethod
    def _fetch_file(page_url: str) -> list[IndexFile]:
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(page_url).path))
        for candidate in (path / "index.html", path):
            if candidate.is_file():
                try:
                    text = candidate.read_text(encoding="utf-8", errors="replace")
                except OSError as exc:
                    raise IndexUnavailable(f"{page_url}: {exc.strerror}") from None
                return parse_simple_html(text, candidate.as_uri())
        raise NotOnIndex(f"{page_url} does not exist")


# --- choosing a file -----------------------------------------------------------------


_SAFE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]{0,250}")


def _file_identity(filename: str) -> tuple[str, object, str, frozenset] | None:
    """(normalised name, Version, kind, tags) for a wheel or sdist filename, or None.

    A name with a path separator or shell-significant character is never a
    distribution file (it would escape the build context when copied).
    """
    if not _SAFE_FILENAME.fullmatch(filename):
        return None
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

    try:
        if filename.endswith(".whl"):
            name, version, _build, file_tags = parse_wheel_filename(filename)
            return (name, version, "wheel", file_tags)
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return (name, version, "sdist", frozenset())
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return None


def choose_file(
    files: Iterable[IndexFile], name: str, version: str, target: Target, ranks: dict[object, int]
) -> tuple[IndexFile | None, str]:
    """The best file for ``name==version`` on ``target``, or None and why not.

    Wheels compatible with the target win, best tag first; an sdist is the
    last resort.  Files whose Requires-Python excludes the target are skipped.
    """
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    try:
        wanted = Version(version)
    except InvalidVersion:
        return None, f"{version!r} is not a PEP 440 version, so no index can serve it"
    norm = canonicalize_name(name)
    target_python = "{}.{}".format(*target.python_version)
    best: tuple[int, IndexFile] | None = None
    sdist: IndexFile | None = None
    same_version: list[IndexFile] = []
    for item in files:
        ident = _file_identity(item.filename)
        if ident is None or ident[0] != norm or ident[1] != wanted:
            continue
        same_version.append(item)
        if item.requires_python:
            try:
                if not SpecifierSet(item.requires_python).contains(
                    target_python + ".0", prereleases=True
                ) and not SpecifierSet(item.requires_python).contains(target_python, prereleases=True):
                    continue
            except InvalidSpecifier:
                pass
        if ident[2] == "sdist":
            if sdist is None or (sdist.filename.endswith(".zip") and item.filename.endswith(".tar.gz")):
                sdist = item
            continue
        rank = min((ranks[t] for t in ident[3] if t in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, item)
    if best is not None:
        return best[1], ""
    if sdist is not None:
        return sdist, ""
    if not same_version:
        return None, "no such version"
    shown = ", ".join(sorted(f.filename for f in same_version)[:4])
    return None, f"no file for {target.describe()} (the index has: {shown}{', ...' if len(same_version) > 4 else ''})"


def _kind(filename: str) -> str:
    return "wheel" if filename.endswith(".whl") else "sdist"


# --- wheelhouses ------------------------------------------------------------------


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


class Wheelhouse:
    """A user-named directory of distribution files (``--find-links DIR``)."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self._hashes: dict[Path, str] = {}
        self._lock = threading.Lock()
        try:
            names = sorted(p.name for p in self.directory.iterdir() if p.is_file())
        except OSError:
            names = []
        self.files = [IndexFile(n, self.directory.joinpath(n).as_uri(), None) for n in names]

    def sha256(self, filename: str) -> str:
        path = self.directory / filename
        with self._lock:
            known = self._hashes.get(path)
        if known is None:
            known = _sha256_of(path)
            with self._lock:
                self._hashes[path] = known
        return known


# --- resolving --------------------------------------------------------------------


def _portable_https(url: str) -> bool:
    return url.startswith("https://") and not is_machine_local(url)


def inferred_index(version: str) -> str | None:
    """PyTorch's per-variant index for a local label (``2.3.0+cu121`` → .../whl/cu121)."""
    if "+" not in version:
        return None
    label = version.split("+", 1)[1].lower()
    if _PYTORCH_LABEL.fullmatch(label):
        return f"{PYTORCH_INDEX}/{label}"
    return None


def _check_index_url(url: str, option: str) -> str:
    from envlock.errors import UsageError

    url = url.strip()
    if not re.fullmatch(r"(?:https?|file)://[^\s\"'`$\\<>{}|^]+", url):
        raise UsageError(
            f"{option} {url[:80]!r}: not an http(s):// or file:// URL",
            hint="for example --index-url https://pypi.org/simple",
        )
    if "@" in urllib.parse.urlsplit(url).netloc:
        raise UsageError(
            f"{option}: the URL carries credentials; envlock never writes credentials into a replay",
            hint="use a keyring or a netrc file at install time",
        )
    return url.rstrip("/")


class _Resolver:
    def __init__(
        self, target: Target, index_url: str, extra_index_urls: Sequence[str], find_links: Sequence[str], timeout: float
    ) -> None:
        self.target = target
        self.ranks = target_tags(target)
        self.index_url = index_url
        self.extra = list(extra_index_urls)
        self.reader = IndexReader(timeout)
        self.wheelhouses: list[Wheelhouse] = []
        self.link_pages: list[str] = []
        for item in find_links:
            if item.startswith(("http://", "https://")):
                self.link_pages.append(item)
            else:
                path = (
                    urllib.request.url2pathname(urllib.parse.urlsplit(item).path)
                    if item.startswith("file://")
                    else item
                )
                if not Path(path).expanduser().is_dir():
                    from envlock.errors import UsageError

                    raise UsageError(
                        f"--find-links {item}: not a directory", hint="pass a directory that holds wheel or sdist files"
                    )
                self.wheelhouses.append(Wheelhouse(path))

    def resolve(self, pkg: m.PythonPackage) -> Pin | VcsRef | Problem:
        source = pkg.source
        if source in ("directory", "editable"):
            return Problem(
                pkg.name,
                pkg.version,
                f"installed from a local {'editable checkout' if source == 'editable' else 'directory'}; no index or URL serves it",
                fix="build a wheel of it (pip wheel --no-deps DIR -w wheels/) and pass --find-links wheels/",
            )
        if source == "vcs":
            if pkg.url and pkg.commit and _FULL_COMMIT.fullmatch(pkg.commit):
                return VcsRef(pkg.name, pkg.version, pkg.vcs or "git", pkg.url, pkg.commit, pkg.subdirectory)
            return Problem(
                pkg.name,
                pkg.version,
                "installed from a VCS checkout without a full commit id",
                fix="reinstall it from a full commit hash, or build a wheel and pass --find-links",
            )
        if source == "url":
            return self._from_url(pkg)
        return self._from_indexes(pkg)

    def _from_url(self, pkg: m.PythonPackage) -> Pin | Problem:
        url = pkg.url or ""
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        expected = pkg.archive_hash.split(":", 1)[1] if pkg.archive_hash else None
        # A direct URL may name its archive freely (GitHub's v1.0.tar.gz); only
        # a name that could escape a directory or a requirements line is refused.
        if not _SAFE_FILENAME.fullmatch(filename) or not filename.endswith((".whl", ".tar.gz", ".zip")):
            return Problem(
                pkg.name,
                pkg.version,
                f"its URL ({url[:120]}) does not end in an archive file name (.whl, .tar.gz, .zip)",
            )
        if expected is None:
            return Problem(
                pkg.name,
                pkg.version,
                f"installed from {url or 'a URL'} with no archive hash recorded",
                fix="reinstall it from a URL with #sha256=... so the file can be checked",
            )
        if _portable_https(url):
            return Pin(pkg.name, pkg.version, filename, expected, _kind(filename), url=url)
        local = self._wheelhouse_file(filename, expected)
        if local is not None:
            return local(pkg)
        return Problem(
            pkg.name,
            pkg.version,
            f"installed from a machine-local URL ({url[:120]})",
            fix=f"put {filename or 'the file'} in a directory and pass it with --find-links DIR",
        )

    def _wheelhouse_file(self, filename: str, sha: str):
        for house in self.wheelhouses:
            if (house.directory / filename).is_file() and house.sha256(filename) == sha:
                path = str(house.directory / filename)
                return lambda pkg: Pin(pkg.name, pkg.version, filename, sha, _kind(filename), wheelhouse_file=path)
        return None

    def _from_wheelhouses(self, pkg: m.PythonPackage) -> Pin | None:
        for house in self.wheelhouses:
            chosen, _why = choose_file(house.files, pkg.name, pkg.version, self.target, self.ranks)
            if chosen is not None:
                path = house.directory / chosen.filename
                return Pin(
                    pkg.name,
                    pkg.version,
                    chosen.filename,
                    house.sha256(chosen.filename),
                    _kind(chosen.filename),
                    wheelhouse_file=str(path),
                    size=path.stat().st_size,
                )
        return None

    def _from_indexes(self, pkg: m.PythonPackage) -> Pin | Problem:
        from packaging.utils import canonicalize_name

        found = self._from_wheelhouses(pkg)
        if found is not None:
            return found
        project = canonicalize_name(pkg.name)
        indexes = []
        pytorch = inferred_index(pkg.version)
        if pytorch:
            indexes.append(pytorch)
        indexes.append(self.index_url)
        indexes.extend(self.extra)
        indexes.extend(self.link_pages)
        reasons: list[str] = []
        local_hits: list[str] = []
        for index in indexes:
            try:
                if index in self.link_pages:
                    files = self.reader.project_files(index.rsplit("/", 1)[0], index.rsplit("/", 1)[1])
                else:
                    files = self.reader.project_files(index, project)
            except NotOnIndex:
                reasons.append(f"not on {index}")
                continue
            except IndexUnavailable as exc:
                reasons.append(str(exc))
                continue
            chosen, why = choose_file(files, pkg.name, pkg.version, self.target, self.ranks)
            if chosen is None:
                reasons.append(f"{index}: {why}" if why != "no such version" else f"{pkg.version} not on {index}")
                continue
            if not _portable_https(chosen.url):
                local_hits.append(chosen.url)
                reasons.append(f"found only at a machine-local URL ({chosen.url[:120]})")
                continue
            if chosen.sha256 is None:
                reasons.append(f"{index} publishes no sha256 for {chosen.filename}")
                continue
            return Pin(
                pkg.name,
                pkg.version,
                chosen.filename,
                chosen.sha256,
                _kind(chosen.filename),
                url=chosen.url,
                index=index,
                size=chosen.size,
                upload_time=chosen.upload_time,
                requires_python=chosen.requires_python,
                yanked=chosen.yanked,
                yanked_reason=chosen.yanked_reason,
            )
        fix = "pass --find-links DIR with the file (it is copied into the build context), or an --index-url that serves it"
        if pytorch:
            fix = f"make {pytorch} reachable, or pass --find-links DIR holding the {pkg.name} {pkg.version} wheel"
        return Problem(pkg.name, pkg.version, "; ".join(reasons) or "no index to search", fix=fix)


def resolve_packages(
    packages: Iterable[m.PythonPackage],
    target: Target,
    *,
    index_url: str = DEFAULT_INDEX,
    extra_index_urls: Sequence[str] = (),
    find_links: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = WORKERS,
) -> PinSet:
    """Resolve each package to a hash-pinned file on the given indexes (network I/O)."""
    index_url = _check_index_url(index_url, "--index-url")
    extras = tuple(_check_index_url(u, "--extra-index-url") for u in extra_index_urls)
    links = tuple(find_links)
    resolver = _Resolver(target, index_url, extras, links, timeout)
    items = sorted(packages, key=lambda p: p.name.lower())
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(resolver.resolve, items))
    notes = []
    for item in (index_url, *extras):
        if is_machine_local(item):
            notes.append(f"{item} is machine-local: files found only there are reported as not reproducible")
    return PinSet(
        pins=tuple(r for r in results if isinstance(r, Pin)),
        vcs=tuple(r for r in results if isinstance(r, VcsRef)),
        problems=tuple(r for r in results if isinstance(r, Problem)),
        target=target,
        index_url=index_url,
        extra_index_urls=extras,
        find_links=links,
        notes=tuple(notes),
    )


def resolve_lock(
    lock: m.Lock,
    *,
    index_url: str = DEFAULT_INDEX,
    extra_index_urls: Sequence[str] = (),
    find_links: Sequence[str] = (),
    target: Target | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PinSet:
    """Hash-pin a lock's Python packages for the interpreter and platform it was captured on."""
    from envlock.errors import UsageError

    if lock.python is None:
        raise UsageError(
            "this lock has no Python layer to pin", hint="capture one with `envlock capture`, or import a pip freeze"
        )
    chosen = target or target_from_lock(lock)
    result = resolve_packages(
        lock.python.packages,
        chosen,
        index_url=index_url,
        extra_index_urls=extra_index_urls,
        find_links=find_links,
        timeout=timeout,
    )
    if lock.python.version is None or lock.python.platform_tag is None:
        result = records.replace(
            result,
            notes=result.notes
            + (f"the lock does not record its interpreter or platform; files were chosen for {chosen.describe()}",),
        )
    return result


def copy_wheelhouse_files(pins: PinSet, destination: str | os.PathLike) -> dict[str, str]:
    """Copy every wheelhouse file into ``destination``; returns {filename: path relative to it}.

    Each copy is checked against the pinned hash, so a file changed since
    resolution is caught here rather than inside a build.
    """
    from envlock.errors import ReplayError

    dest = Path(destination)
    copied: dict[str, str] = {}
    for pin in pins.pins:
        if pin.wheelhouse_file is None:
            continue
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / pin.filename
        shutil.copyfile(pin.wheelhouse_file, target)
        if _sha256_of(target) != pin.sha256:
            target.unlink()
            raise ReplayError(
                f"{pin.wheelhouse_file} changed after it was pinned (sha256 differs)", hint="resolve again"
            )
        copied[pin.filename] = pin.filename
    return copied
