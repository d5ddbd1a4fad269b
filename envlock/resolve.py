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
- Indexes the caller names are used as given, a site mirror on localhost
  included: their files are pinned with their URLs, and replay fetches a
  machine-local one on this host into the build context after a hash check
  (:func:`fetch_machine_local`).  A *direct URL* install whose URL is
  ``file://`` or a loopback host (it came from this machine, not from the
  caller) is never written into the result as if another machine could fetch
  it, unless the caller named a wheelhouse (``--find-links DIR``) that holds
  the file.
- A package the lock already pins (``file``, ``file-sha256``, from ``envlock
  pin``) is never resolved again: its page is read only to check that the
  index still serves that file, and a file gone is a problem that names it.

The module's parts: index pages (:mod:`envlock.index_client`), which file
fits (:mod:`envlock.wheel_select`), findings (:mod:`envlock.resolve_findings`).
- PyTorch's local labels (``+cu121``, ``+cpu``, ``+rocm6.0``) name the
  per-variant index https://download.pytorch.org/whl/<label>; PyPI never hosts
  local versions, so that index is searched first.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

from envlock import records
from envlock.index_client import (  # noqa: F401  (re-exported: the resolver's public names before the split)
    DEFAULT_TIMEOUT,
    WORKERS,
    IndexFile,
    IndexReader,
    IndexUnavailable,
    NotOnIndex,
    is_machine_local,
    parse_simple_html,
    parse_simple_json,
    read_pages,
)
from envlock.lockfile import model as m
from envlock.records import record
from envlock.wheel_select import (  # noqa: F401
    _SAFE_FILENAME,
    Target,
    _kind,
    choose_file,
    match_installed,
    running_target,
    target_from_lock,
    target_tags,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from envlock.findings import Finding

DEFAULT_INDEX = "https://pypi.org/simple"
PYTORCH_INDEX = "https://download.pytorch.org/whl"
# PyTorch's local version labels, each naming an index under PYTORCH_INDEX.
_PYTORCH_LABEL = re.compile(r"cu[0-9]{2,3}|cpu|cpu\.cxx11\.abi|rocm[0-9]+(?:\.[0-9]+)*|xpu")
_FULL_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


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
    # Why this file was chosen when several could have been (pin's report).
    why: str | None = None


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
    # "unpinnable" (no file fits or none can be checked) or "gone" (the file
    # the lock pins is no longer served).
    kind: str = "unpinnable"
    filename: str | None = None
    sha256: str | None = None


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
        from envlock.resolve_findings import pinset_findings

        return pinset_findings(self)


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


def check_index_url(url: str, option: str) -> str:
    """A user-named index URL, checked (http(s) or file, no credentials, nothing shell-significant)."""
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


_check_index_url = check_index_url


def _project(name: str) -> str:
    from envlock.capture.distributions import canonical_name

    return canonical_name(name)


def is_pinned(pkg: m.PythonPackage) -> bool:
    """Whether the lock names the exact file (``envlock pin`` ran): such a package is never resolved again."""
    return bool(pkg.file and pkg.file_sha256)


Pages = dict  # (index, project) -> list[IndexFile] | Exception


class _Resolver:
    def __init__(
        self,
        target: Target,
        index_url: str,
        extra_index_urls: Sequence[str],
        find_links: Sequence[str],
        timeout: float,
        *,
        use_lock_pins: bool = True,
        named_indexes: bool = False,
    ) -> None:
        self.target = target
        self.ranks = target_tags(target)
        self.index_url = index_url
        self.extra = list(extra_index_urls)
        self.reader = IndexReader(timeout)
        self.use_lock_pins = use_lock_pins
        # True when the caller named the indexes (replay's --index-url): a
        # pinned file found there with the pinned sha256 is as good as the original.
        self.named_indexes = named_indexes
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

    # --- which pages a package needs (read in one concurrent batch) ---

    def _indexes_for(self, pkg: m.PythonPackage) -> list[str]:
        indexes = []
        pytorch = inferred_index(pkg.version)
        if pytorch:
            indexes.append(pytorch)
        indexes.append(self.index_url)
        indexes.extend(self.extra)
        return indexes

    def pages_for(self, pkg: m.PythonPackage) -> list[tuple[str, str]]:
        if pkg.source not in ("index", "unknown"):
            return []
        project = _project(pkg.name)
        if self.use_lock_pins and is_pinned(pkg):
            where = [pkg.file_index] if pkg.file_index else []
            if self.named_indexes:
                where += [self.index_url, *self.extra]
            return [(index, project) for index in dict.fromkeys(where)]
        pages = [(index, project) for index in self._indexes_for(pkg)]
        pages += [(page.rsplit("/", 1)[0], page.rsplit("/", 1)[1]) for page in self.link_pages]
        return pages

    # --- choosing, from pages already read (pure apart from wheelhouse hashing) ---

    def resolve(self, pkg: m.PythonPackage, pages: Pages) -> Pin | VcsRef | Problem:
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
        if self.use_lock_pins and is_pinned(pkg):
            return self._from_lock_pin(pkg, pages)
        return self._from_indexes(pkg, pages)

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

    def _from_lock_pin(self, pkg: m.PythonPackage, pages: Pages) -> Pin | Problem:
        """The file the lock pins, if a wheelhouse or an index still serves those bytes."""
        filename = pkg.file or ""
        sha = (pkg.file_sha256 or "").split(":", 1)[-1]
        local = self._wheelhouse_file(filename, sha)
        if local is not None:
            return local(pkg)
        reasons = []
        for key in self.pages_for(pkg):
            files = pages.get(key)
            if isinstance(files, Exception) or files is None:
                reasons.append(str(files) if files is not None else f"{key[0]} was not read")
                continue
            for item in files:
                if item.filename == filename and item.sha256 == sha:
                    return Pin(
                        pkg.name,
                        pkg.version,
                        filename,
                        sha,
                        _kind(filename),
                        url=item.url,
                        index=None,
                        size=item.size,
                        upload_time=item.upload_time,
                        requires_python=item.requires_python,
                        yanked=item.yanked,
                        yanked_reason=item.yanked_reason,
                    )
            if any(item.filename == filename for item in files):
                reasons.append(f"{key[0]} serves {filename} with another sha256")
            else:
                reasons.append(f"{key[0]} no longer lists it")
        if not pkg.file_index and pkg.file_url:
            # Pinned without an index page (a direct file URL): the URL is the record.
            return Pin(pkg.name, pkg.version, filename, sha, _kind(filename), url=pkg.file_url, size=pkg.file_size)
        return Problem(
            pkg.name,
            pkg.version,
            "; ".join(reasons) or "no index to ask",
            fix=(
                f"replay from a pack that holds it (envlock pack), or put {filename} (sha256:{sha}) in a directory "
                "and pass --find-links DIR, or --index-url a mirror that still serves it"
            ),
            kind="gone",
            filename=filename,
            sha256=sha,
        )

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

    def _from_indexes(self, pkg: m.PythonPackage, pages: Pages) -> Pin | Problem:
        found = self._from_wheelhouses(pkg)
        if found is not None:
            return found
        reasons: list[str] = []
        pytorch = inferred_index(pkg.version)
        for key in self.pages_for(pkg):
            index = key[0] if key[0] + "/" + key[1] not in self.link_pages else key[0] + "/" + key[1]
            files = pages.get(key)
            if isinstance(files, NotOnIndex):
                reasons.append(f"not on {index}")
                continue
            if isinstance(files, Exception) or files is None:
                reasons.append(str(files) if files is not None else f"{index} was not read")
                continue
            why_chosen = None
            if pkg.wheel_tags:
                chosen, why, why_chosen = match_installed(files, pkg.name, pkg.version, pkg.wheel_tags, pkg.build_tag)
            else:
                chosen, why = choose_file(files, pkg.name, pkg.version, self.target, self.ranks)
            if chosen is None:
                reasons.append(f"{index}: {why}" if why != "no such version" else f"{pkg.version} not on {index}")
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
                why=why_chosen,
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
    use_lock_pins: bool = True,
    named_indexes: bool = False,
) -> PinSet:
    """Resolve each package to a hash-pinned file on the given indexes (network I/O).

    Every index page needed is read first, in one concurrent batch
    (:func:`envlock.index_client.read_pages`); the choices are then made
    from the pages.  A package the lock pins is kept to its file unless
    ``use_lock_pins`` is false (``envlock pin`` choosing afresh).
    """
    index_url = check_index_url(index_url, "--index-url")
    extras = tuple(check_index_url(u, "--extra-index-url") for u in extra_index_urls)
    links = tuple(find_links)
    resolver = _Resolver(
        target, index_url, extras, links, timeout, use_lock_pins=use_lock_pins, named_indexes=named_indexes
    )
    items = sorted(packages, key=lambda p: p.name.lower())
    wanted = [key for pkg in items for key in resolver.pages_for(pkg)]
    pages = read_pages(resolver.reader, wanted, workers)
    results = [resolver.resolve(pkg, pages) for pkg in items]
    notes = []
    for item in (index_url, *extras):
        if is_machine_local(item):
            notes.append(f"{item} is machine-local: replay fetches its files on this host into the build context")
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
    use_lock_pins: bool = True,
    named_indexes: bool = False,
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
        use_lock_pins=use_lock_pins,
        named_indexes=named_indexes,
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


def _download(url: str, destination: Path, sha256: str, timeout: float) -> str | None:
    from envlock.index_client import download_checked

    return download_checked(url, destination, sha256, timeout)


def fetch_machine_local(
    pins: PinSet, cache: str | os.PathLike | None = None, timeout: float = DEFAULT_TIMEOUT
) -> PinSet:
    """Fetch, on this host, every pinned file whose URL only this machine can reach (a mirror on
    localhost, a file:// index the user named), into a content-addressed cache; each becomes a
    build-context file after its sha256 is checked.  A file that cannot be had is a "gone" problem.
    """
    from concurrent.futures import ThreadPoolExecutor

    local = [p for p in pins.pins if p.url and not p.wheelhouse_file and is_machine_local(p.url)]
    if not local:
        return pins
    if cache is None:
        from envlock.capture.cache import cache_dir

        cache = os.path.join(cache_dir(), "files")

    def fetch(pin: Pin) -> Pin | Problem:
        folder = Path(cache) / pin.sha256
        target = folder / pin.filename
        if target.is_file() and _sha256_of(target) == pin.sha256:
            return records.replace(pin, wheelhouse_file=str(target))
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return Problem(
                pin.name,
                pin.version,
                f"{folder}: {exc.strerror}",
                kind="gone",
                filename=pin.filename,
                sha256=pin.sha256,
            )
        why = _download(pin.url or "", target, pin.sha256, timeout)
        if why is None:
            return records.replace(pin, wheelhouse_file=str(target))
        return Problem(
            pin.name,
            pin.version,
            why,
            fix=(
                f"replay from a pack that holds it (envlock pack), or put {pin.filename} (sha256:{pin.sha256}) "
                "in a directory and pass --find-links DIR"
            ),
            kind="gone",
            filename=pin.filename,
            sha256=pin.sha256,
        )

    with ThreadPoolExecutor(max_workers=min(WORKERS, len(local))) as pool:
        fetched = dict(zip((id(p) for p in local), pool.map(fetch, local), strict=True))
    kept: list[Pin] = []
    problems = list(pins.problems)
    for pin in pins.pins:
        result = fetched.get(id(pin), pin)
        if isinstance(result, Problem):
            problems.append(result)
        else:
            kept.append(result)
    return records.replace(pins, pins=tuple(kept), problems=tuple(problems))
