"""``envlock pack``: gather every artifact a lock needs into one pack file (the network step; replay then needs none).

1. The lock, pinned on the way in when it is not (as ``envlock pin`` would).
2. Every pinned Python file, downloaded concurrently (or taken from
   ``--find-links``) and checked against the lock's sha256 as it arrives.
3. The OS layer's packages at their locked versions: apt inside the base
   image says which ``.deb`` files an install needs (``--print-uris``, with
   their sha256), and they are downloaded here and checked.
4. The conda packages of a conda lock (``conda/<file>``), each from its
   recorded URL or the ``--conda-channel-url`` mirror, checked against the
   lock's sha256 (md5 when that is all it has) as it arrives; with them
   what the build stage needs to install them offline: the hash-pinned
   py-rattler wheel (``tools/``) and, for a base without a Python to run the
   installer, Debian's ``python3``/``python3-venv`` .debs as apt in the base
   would fetch them (``conda/installer/``).
5. The base image (``docker save``), recorded by image id and registry digest.

Artifacts are written to a private temporary directory first and streamed
into the pack by :func:`envlock.pack.format.write_pack`; nothing is copied
twice in memory.  Each artifact kind is one function returning ``Source``
members under its own prefix.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from envlock import __version__, records
from envlock.errors import EnvlockError, UsageError
from envlock.lockfile import model as m
from envlock.pack.format import Source, check_member_name, source_from_file, write_pack
from envlock.records import record

DOWNLOAD_WORKERS = 8
_CHUNK = 1024 * 1024
_URI_LINE = re.compile(r"'(?P<url>[^']+)' (?P<file>\S+\.deb) (?P<size>[0-9]+) SHA256:(?P<sha>[0-9a-f]{64})")


class PackBuildError(EnvlockError):
    """An artifact the lock needs cannot be had: no pack is written (exit 1)."""

    exit_code = 1


@record
class PackRequest:
    output: str
    index_urls: tuple[str, ...] = ()
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    base_image: str | None = None
    ca_cert: str | None = None
    conda_channel_url: str | None = None


@record
class PackResult:
    path: str
    sha256: str
    members: int
    size: int
    notes: tuple[str, ...] = ()


def _unpinned(lock: m.Lock) -> list[m.PythonPackage]:
    from envlock.replay.conda import conda_owned

    if lock.python is None:
        return []
    # What conda installed comes with the conda packages (conda/), never from an index.
    return [
        p
        for p in lock.python.packages
        if p.source == "index" and not (p.file and p.file_sha256) and not (lock.conda and conda_owned(p))
    ]


def pin_if_needed(lock: m.Lock, request: PackRequest, notes: list[str]) -> m.Lock:
    """The lock with every index package pinned to its exact file (network when it was not pinned yet)."""
    missing = _unpinned(lock)
    if not missing:
        return lock
    from envlock.pin import PinRequest, pin_lock

    notes.append(f"{len(missing)} Python packages were not pinned: pinned now, as `envlock pin` would")
    outcome = pin_lock(lock, PinRequest(index_urls=request.index_urls, extra_index_urls=request.extra_index_urls))
    pinned = pin_from_find_links(outcome.lock, request.find_links, notes)
    still = _unpinned(pinned)
    if still:
        names = ", ".join(f"{p.name}=={p.version}" for p in still[:10])
        raise PackBuildError(
            f"{len(still)} Python packages cannot be pinned to a file, so they cannot be packed: {names}",
            hint="run `envlock pin` to see why, or pass --find-links DIR with the files",
        )
    return pinned


def pin_from_find_links(lock: m.Lock, find_links: tuple[str, ...], notes: list[str]) -> m.Lock:
    """``lock`` with each package no index could pin pinned to a wheel in a ``--find-links`` directory.

    A machine-local build (torch's ``+cpu`` wheel from a site directory) has no
    index file; the pack carries the local file instead.  The file is chosen
    as an index file would be (the installed ``WHEEL``'s tags and build tag, or
    the best tags for the lock's interpreter when the lock has none) and
    recorded by name, sha256 and size only: a local path is no place for a
    replay elsewhere to fetch from.
    """
    missing = _unpinned(lock)
    if not missing or not find_links or lock.python is None:
        return lock
    from envlock.resolve import Wheelhouse
    from envlock.wheel_select import choose_file, match_installed, target_from_lock, target_tags

    houses = [Wheelhouse(directory) for directory in find_links]
    wheels_in = [(house, [f for f in house.files if f.filename.endswith(".whl")]) for house in houses]
    target = target_from_lock(lock)
    ranks = target_tags(target)
    chosen_files: dict[str, tuple[Wheelhouse, str]] = {}
    for pkg in missing:
        for house, wheels in wheels_in:
            if pkg.wheel_tags:
                chosen, _why, _ = match_installed(wheels, pkg.name, pkg.version, pkg.wheel_tags, pkg.build_tag)
            else:
                chosen, _why = choose_file(wheels, pkg.name, pkg.version, target, ranks)
            if chosen is not None:
                chosen_files[pkg.name] = (house, chosen.filename)
                break
    if not chosen_files:
        return lock

    def pinned(pkg: m.PythonPackage) -> m.PythonPackage:
        if pkg.name not in chosen_files:
            return pkg
        house, filename = chosen_files[pkg.name]
        return records.replace(
            pkg,
            file=filename,
            file_url=None,
            file_sha256=f"sha256:{house.sha256(filename)}",
            file_size=(house.directory / filename).stat().st_size,
        )

    packages = tuple(pinned(p) for p in lock.python.packages)
    names = ", ".join(sorted(chosen_files))
    notes.append(f"pinned from --find-links (no index has them): {names}")
    return records.replace(lock, python=records.replace(lock.python, packages=packages))


class Meter:
    """What is being fetched, how much and how fast, as one line redrawn in place (thread-safe, rate-limited)."""

    def __init__(self, progress, what: str) -> None:
        import threading
        import time

        self._clock = time.monotonic
        self._lock = threading.Lock()
        self.progress = progress
        self.what = what
        self.bytes = 0
        self.files = 0
        self.start = self._clock()
        self._shown = 0.0

    def add(self, name: str, count: int) -> None:
        with self._lock:
            self.bytes += count
            now = self._clock()
            if self.progress is None or now - self._shown < 0.2:
                return
            self._shown = now
            self.progress.line(f"{self.what}: {self.files} done, {self.describe()} - {name}")

    def done(self) -> None:
        with self._lock:
            self.files += 1

    def describe(self) -> str:
        seconds = max(self._clock() - self.start, 1e-6)
        return f"{self.bytes / 1e6:.1f} MB in {seconds:.1f} s ({self.bytes / 1e6 / seconds:.1f} MB/s)"


def _download(
    url: str,
    target: Path,
    sha256: str | None,
    what: str,
    context,
    meter: Meter | None = None,
    md5: str | None = None,
    unreachable_hint: str | None = None,
) -> str:
    """Stream ``url`` to ``target``, hashing as it arrives; its sha256, or ``PackBuildError`` when the bytes
    are not the locked ones (checked by ``sha256``, or by ``md5`` when that is all the lock has)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise PackBuildError(f"{what}: {url[:120]} is not an http(s) URL; it cannot be fetched here")
    digest = hashlib.sha256()
    weak = hashlib.md5(usedforsecurity=False) if sha256 is None else None
    try:
        with urllib.request.urlopen(url, timeout=120, context=context) as answer, open(target, "wb") as out:
            for chunk in iter(lambda: answer.read(_CHUNK), b""):
                digest.update(chunk)
                if weak is not None:
                    weak.update(chunk)
                out.write(chunk)
                if meter is not None:
                    meter.add(target.name, len(chunk))
    except OSError as exc:
        target.unlink(missing_ok=True)
        status = ""
        if isinstance(exc, urllib.error.HTTPError):
            status = f"HTTP {exc.code} "
            exc.close()  # the error carries the open response
        raise PackBuildError(
            f"{what}: cannot download {url[:160]} ({status}{getattr(exc, 'reason', exc)})", hint=unreachable_hint
        ) from None
    if meter is not None:
        meter.done()
    algorithm, locked, served = (
        ("sha256", sha256, digest.hexdigest()) if weak is None else ("md5", md5, weak.hexdigest())
    )
    if served != locked:
        target.unlink(missing_ok=True)
        raise PackBuildError(
            f"{what}: {url[:160]} does not have the locked {algorithm} {locked} (it has {served})",
            hint="the file changed on its server: replay cannot have those bytes from there",
        )
    return digest.hexdigest()


def _ssl_context(ca_cert: str | None):
    if not ca_cert:
        return None
    import ssl

    return ssl.create_default_context(cafile=ca_cert)


def _find_local(find_links: tuple[str, ...], filename: str, sha256: str) -> Path | None:
    for directory in find_links:
        candidate = Path(directory) / filename
        if candidate.is_file():
            digest = hashlib.sha256()
            with open(candidate, "rb") as handle:
                for chunk in iter(lambda: handle.read(_CHUNK), b""):
                    digest.update(chunk)
            if digest.hexdigest() == sha256:
                return candidate
    return None


def gather_wheels(lock: m.Lock, request: PackRequest, workdir: Path, meter: Meter | None = None) -> list[Source]:
    """Every pinned Python file as a member ``wheels/<file>``, checked against the lock's sha256."""
    if lock.python is None:
        return []
    packages = [p for p in lock.python.packages if p.file and p.file_sha256]
    others = [p for p in lock.python.packages if p.source != "index" and not p.file]
    if others:
        names = ", ".join(f"{p.name} ({p.source})" for p in others[:10])
        raise PackBuildError(
            f"{len(others)} Python packages were not installed from an index and have no pinned file: {names}",
            hint="build wheels of them, pass the directory with --find-links, and pin again",
        )
    target = workdir / "wheels"
    target.mkdir()
    context = _ssl_context(request.ca_cert)

    def fetch(pkg: m.PythonPackage) -> Source:
        filename = check_member_name(pkg.file)
        sha = (pkg.file_sha256 or "").split(":", 1)[1]  # only packages with a pinned sha256 reach here
        local = _find_local(request.find_links, filename, sha)
        if local is not None:
            return source_from_file(f"wheels/{filename}", local, sha)
        if not pkg.file_url:
            raise PackBuildError(
                f"python.packages[{pkg.name}]: {filename} has no URL and is in no --find-links directory"
            )
        path = target / filename
        _download(pkg.file_url, path, sha, f"python.packages[{pkg.name}]", context, meter)
        return source_from_file(f"wheels/{filename}", path, sha)

    with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
        return list(pool.map(fetch, packages))


def parse_print_uris(text: str) -> list[tuple[str, str, int, str]]:
    """(url, filename, size, sha256) of each .deb ``apt-get install --print-uris`` lists (pure)."""
    found = []
    for line in text.splitlines():
        match = _URI_LINE.fullmatch(line.strip())
        if match:
            found.append((match["url"], match["file"], int(match["size"]), match["sha"]))
    return found


def gather_debs(
    lock: m.Lock, base_ref: str, engine, workdir: Path, notes: list[str], meter: Meter | None = None
) -> list[Source]:
    """The .deb files the OS layer installs on ``base_ref`` at the locked versions, as ``debs/<file>``."""
    from envlock.replay.plan import DEBIAN_NAME, DEBIAN_VERSION

    osec = lock.os
    if osec is None or osec.package_manager not in (None, "dpkg"):
        return []
    pins = [
        f"{p.name}={p.version}"
        for p in osec.packages
        if p.manual is True and DEBIAN_NAME.fullmatch(p.name) and DEBIAN_VERSION.fullmatch(p.version)
    ]
    if not pins:
        return []
    image = engine.image(base_ref)
    key = hashlib.sha256("\n".join([image.id if image else base_ref, *sorted(pins)]).encode()).hexdigest()
    cached = _uri_cache() / f"{key}.txt"
    output = cached.read_text(encoding="utf-8") if cached.is_file() else None
    if output is not None:
        try:
            sources = _fetch_debs(output, workdir, meter)
        except PackBuildError:
            cached.unlink(missing_ok=True)  # the mirror moved on since: ask apt again
            shutil.rmtree(workdir / "debs", ignore_errors=True)
            output = None
    if output is None:
        output = _ask_apt(base_ref, pins, engine)
        sources = _fetch_debs(output, workdir, meter)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(output, encoding="utf-8")
    notes.append(f"{len(sources)} .deb files for {len(pins)} hand-installed OS packages")
    return sources


def _uri_cache() -> Path:
    """apt's answer per (base image id, pins): repacking needs no container; a stale answer is asked again."""
    from envlock.capture.cache import cache_dir

    return Path(cache_dir()) / "pack-print-uris"


def _ask_apt(base_ref: str, pins: list[str], engine) -> str:
    """Which .deb files (URL, sha256) apt in the base image fetches to install ``pins`` exactly."""
    script = (
        "apt-get -qq -o Acquire::Languages=none update >/dev/null 2>&1; "
        'exec apt-get install -qq -o Acquire::ForceHash=SHA256 --print-uris -y --no-install-recommends --allow-downgrades -- "$@"'
    )
    result = engine.run(base_ref, ["sh", "-c", script, "envlock-pack", *sorted(pins)], network=True, timeout=600)
    if result.exit_code != 0:
        raise PackBuildError(
            "apt in the base image cannot install the locked OS versions: "
            + (result.stderr or result.stdout).decode("utf-8", "replace").strip()[-400:],
            hint="replay the lock online first (`envlock replay`) to see which versions are gone",
        )
    return result.stdout.decode("utf-8", "replace")


def _fetch_debs(output: str, workdir: Path, meter: Meter | None, prefix: str = "debs") -> list[Source]:
    target = workdir / prefix
    target.mkdir(parents=True, exist_ok=True)
    sources = []
    for url, filename, _size, sha in parse_print_uris(output):
        name = check_member_name(f"{prefix}/{filename}")
        path = target / filename
        _download(url, path, sha, name, None, meter)
        sources.append(source_from_file(name, path, sha))
    return sources


# --- the conda layer -------------------------------------------------------------------

# Run in the base image: nothing when its python3 can run the conda installer
# (the same test as the build stage's bootstrap, envlock.replay.conda_stage),
# else the .deb files apt would fetch for Debian's python3 and python3-venv.
_INSTALLER_URIS = (
    "python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null && exit 0; "
    "apt-get -qq -o Acquire::Languages=none update >/dev/null 2>&1; "
    "exec apt-get install -qq -o Acquire::ForceHash=SHA256 --print-uris -y --no-install-recommends -- python3 python3-venv"
)
CONDA_INSTALLER_DIR = "conda/installer"


def _conda_install(lock: m.Lock, request: PackRequest):
    """What a replay of ``lock`` installs into its conda prefix (None: no conda packages); ``PackBuildError``
    when they cannot all be had, since a pack without some of them replays another environment."""
    import platform

    from envlock.findings import BLOCKER
    from envlock.replay.conda import host_platform, plan_conda

    if lock.conda is None or not lock.conda.packages:
        return None
    try:
        install, findings = plan_conda(lock, host_platform(platform.machine()), request.conda_channel_url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if install is None:
        blockers = [f"{f.path}: {f.message}" for f in findings if f.severity == BLOCKER]
        raise PackBuildError(
            f"the conda packages cannot be packed: {'; '.join(blockers[:5])}",
            hint=next((f.fix for f in findings if f.severity == BLOCKER and f.fix), None),
        )
    return install


def gather_conda(install, request: PackRequest, workdir: Path, meter: Meter | None = None) -> list[Source]:
    """Every conda archive of the install as ``conda/<file>``, checked against the lock's hash as it arrives."""
    if install is None:
        return []
    target = workdir / "conda"
    target.mkdir()
    context = _ssl_context(request.ca_cert)

    def fetch(archive) -> Source:
        name = check_member_name(f"conda/{archive.filename}")
        locked = f"sha256 {archive.sha256}" if archive.sha256 else f"md5 {archive.md5}"
        what = f"conda.packages[{archive.name}] {archive.version} {archive.build} ({locked})"
        path = target / archive.filename
        hint = "pass --conda-channel-url MIRROR, a channel that still serves this file (the same bytes)"
        sha = _download(archive.url, path, archive.sha256, what, context, meter, archive.md5, hint)
        return source_from_file(name, path, sha)

    with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
        return list(pool.map(fetch, install.archives))


def gather_rattler(install, request: PackRequest, meter: Meter | None = None) -> list[Source]:
    """The py-rattler wheel the conda build stage installs with, as ``tools/<wheel>`` (checked, cached)."""
    from envlock import index_client
    from envlock.capture.cache import cache_dir
    from envlock.replay import conda as c

    if install is None:
        return []
    cache = Path(cache_dir()) / "pack-tools"
    cache.mkdir(parents=True, exist_ok=True)
    for path in sorted(cache.glob("py_rattler-*.whl")):
        if _sha256_of(path) == c.RATTLER_SHA256:
            return [source_from_file(f"tools/{path.name}", path, c.RATTLER_SHA256)]
    index = request.index_urls[0] if request.index_urls else c.RATTLER_INDEX
    try:
        files = index_client.IndexReader().project_files(index, c.RATTLER_NAME)
    except (index_client.IndexUnavailable, index_client.NotOnIndex) as exc:
        raise PackBuildError(
            f"{c.RATTLER_NAME} {c.RATTLER_VERSION} (the conda installer) cannot be found: {exc}"
        ) from None
    found = next((f for f in files if f.sha256 == c.RATTLER_SHA256), None)
    if found is None:
        raise PackBuildError(
            f"{index} serves no {c.RATTLER_NAME} file with the sha256 envlock pins ({c.RATTLER_SHA256})",
            hint="pass --index-url of an index that mirrors PyPI's files",
        )
    filename = check_member_name(f"tools/{found.filename}").split("/", 1)[1]
    partial = cache / f".{filename}.partial-{os.getpid()}"
    _download(
        found.url,
        partial,
        c.RATTLER_SHA256,
        f"{c.RATTLER_NAME} {c.RATTLER_VERSION}",
        _ssl_context(request.ca_cert),
        meter,
    )
    os.replace(partial, cache / filename)
    return [source_from_file(f"tools/{filename}", cache / filename, c.RATTLER_SHA256)]


def gather_installer_debs(install, base_ref: str, engine, workdir: Path, meter: Meter | None = None) -> list[Source]:
    """Debian's python3 + python3-venv as ``conda/installer/<file>.deb`` when the base has no Python to run
    the conda installer (the build's network is off, so the bootstrap apt install reads these)."""
    if install is None:
        return []
    image = engine.image(base_ref)
    key = hashlib.sha256(f"{image.id if image else base_ref}\nconda-installer".encode()).hexdigest()
    cached = _uri_cache() / f"{key}.txt"
    if cached.is_file():
        try:
            return _fetch_debs(cached.read_text(encoding="utf-8"), workdir, meter, CONDA_INSTALLER_DIR)
        except PackBuildError:
            cached.unlink(missing_ok=True)  # the mirror moved on since: ask apt again
            shutil.rmtree(workdir / CONDA_INSTALLER_DIR, ignore_errors=True)
    result = engine.run(base_ref, ["sh", "-c", _INSTALLER_URIS], network=True, timeout=600)
    if result.exit_code != 0:
        raise PackBuildError(
            f"the base image {base_ref} has no python3 >= 3.10 to run the conda installer, and apt in it cannot "
            "fetch one: " + (result.stderr or result.stdout).decode("utf-8", "replace").strip()[-400:],
            hint="pack with --base-image IMAGE, a Debian or Ubuntu image (or one with python3 >= 3.10)",
        )
    output = result.stdout.decode("utf-8", "replace")
    sources = _fetch_debs(output, workdir, meter, CONDA_INSTALLER_DIR)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(output, encoding="utf-8")
    return sources


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gather_tools(request: PackRequest, notes: list[str]) -> list[Source]:
    """The uv wheel replay installs with (``tools/``), so an offline replay uses the same fast install path."""
    from envlock.replay import uv_tool

    arch = uv_tool.host_arch()
    if arch is None:
        notes.append("uv has no wheel for this machine: replay from this pack installs with pip")
        return []
    path = uv_tool.uv_wheel_file(arch, index_url=request.index_urls[0] if request.index_urls else None)
    return [source_from_file(f"tools/{Path(path).name}", path)]


def envlock_closure() -> list[tuple[str, str]]:
    """(name, installed version) of envlock's runtime dependencies, recursively, markers evaluated (sorted)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    from envlock.names import canonical_name as normalize

    seen: dict[str, str] = {}
    todo = ["envlock"]
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            key = normalize(req.name)
            if key in seen:
                continue
            try:
                seen[key] = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                continue
            todo.append(req.name)
    return sorted(seen.items())


def gather_envlock(request: PackRequest, notes: list[str]) -> list[Source]:
    """envlock itself (a wheel built from its source tree) and its dependencies (as installed), as ``tools/``.

    So the pack carries what verifies its own replay on a machine with no index.  The dependency
    wheels are cached per name and version; hatchling builds envlock's wheel reproducibly.
    """
    import sys

    from envlock.capture.cache import cache_dir

    source = Path(__file__).resolve().parents[2]
    if not (source / "pyproject.toml").is_file() or not (source / "envlock" / "__init__.py").is_file():
        notes.append("envlock is not installed from a source tree here: the pack does not carry envlock itself")
        return []
    cache = Path(cache_dir()) / "pack-tools"
    cache.mkdir(parents=True, exist_ok=True)
    index = ["--index-url", request.index_urls[0]] if request.index_urls else []
    cert = ["--cert", request.ca_cert] if request.ca_cert else []
    wanted = envlock_closure()
    missing = [f"{name}=={version}" for name, version in wanted if not _cached_wheel(cache, name, version)]
    if missing:
        _pip(
            [sys.executable, "-m", "pip", "download", "--isolated", "--disable-pip-version-check", "--no-deps",
             "--only-binary", ":all:", *index, *cert, "-d", str(cache), *missing]
        )  # fmt: skip
    # envlock's own wheel, built once per content of its source tree (a build takes seconds).
    own_dir = cache / f"envlock-{_source_digest(source)[:24]}"
    found = sorted(own_dir.glob("envlock-*.whl")) if own_dir.is_dir() else []
    if found:
        target = found[0]
    else:
        with tempfile.TemporaryDirectory(prefix="envlock-wheel-") as built:
            env = dict(os.environ, SOURCE_DATE_EPOCH="315532800")
            _pip(
                [sys.executable, "-m", "pip", "wheel", "--isolated", "--disable-pip-version-check", "--no-deps",
                 *index, *cert, "-w", built, str(source)],
                env=env,
            )  # fmt: skip
            (own,) = Path(built).glob("envlock-*.whl")
            own_dir.mkdir(parents=True, exist_ok=True)
            target = own_dir / own.name
            shutil.copyfile(own, target)
    sources = [source_from_file(f"tools/{target.name}", target)]
    for name, version in wanted:
        path = _cached_wheel(cache, name, version)
        if path is None:
            raise PackBuildError(f"no wheel of {name}=={version} (an envlock dependency) could be downloaded")
        sources.append(source_from_file(f"tools/{path.name}", path))
    return sources


def _envlock_or_note(request: PackRequest, notes: list[str]) -> list[Source]:
    """envlock's own wheels, or a note saying why the pack does without them (replay does not need them)."""
    try:
        return gather_envlock(request, notes)
    except (PackBuildError, OSError, ValueError) as exc:
        notes.append(f"the pack does not carry envlock itself: {getattr(exc, 'message', exc)}")
        return []


def _source_digest(source: Path) -> str:
    """sha256 over the paths and bytes of what envlock's wheel is built from."""
    digest = hashlib.sha256()
    files = [source / "pyproject.toml", source / "README.md"]
    for top in ("envlock", "templates"):
        files += [p for p in (source / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for path in sorted(files):
        if path.is_file():
            digest.update(str(path.relative_to(source)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _cached_wheel(cache: Path, name: str, version: str) -> Path | None:
    from envlock.names import canonical_name as normalize

    for path in sorted(cache.glob("*.whl")):
        parts = path.name.split("-")
        if len(parts) >= 2 and normalize(parts[0]) == normalize(name) and parts[1] == version:
            return path
    return None


def _pip(argv: list[str], env: dict | None = None) -> None:
    import subprocess

    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise PackBuildError(f"{' '.join(argv[2:5])} failed: {(done.stderr or done.stdout).strip()[-400:]}")


def save_image(engine, ref: str, workdir: Path, meter: Meter | None = None) -> tuple[Source, dict]:
    """``docker save`` of the base image into ``image/base.tar``; (member, what pack.json records of it)."""
    found = engine.image(ref)
    if found is None:
        raise PackBuildError(f"the base image {ref} is not in the engine", hint="pull or load it, then pack again")
    path = workdir / "base.tar"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for chunk in engine.api.get_image(found.id):
            digest.update(chunk)
            out.write(chunk)
            if meter is not None:
                meter.add("image/base.tar", len(chunk))
    repo_digests = sorted(d for d in found.repo_digests if "@sha256:" in d)
    record_ = {"reference": ref, "id": found.id, "repo-digests": repo_digests}
    return source_from_file("image/base.tar", path, digest.hexdigest()), record_


def build_pack(lock: m.Lock, request: PackRequest, engine, progress=None) -> PackResult:
    """Gather every artifact of ``lock`` and write the pack (atomically); ``PackBuildError`` when one cannot be had.

    The three kinds of download (Python files, .debs, the image) wait on
    different servers, so they run at the same time; each checks its bytes.
    """
    from envlock.lockfile import identity
    from envlock.lockfile.write import dumps_lock

    notes: list[str] = []
    lock = pin_if_needed(lock, request, notes)
    # The pack's lock carries no creation time: the same lock packs to the same bytes.
    lock = identity.with_fingerprint(records.replace(lock, created_at=None))
    step = progress.step if progress is not None else (lambda text: None)
    conda = _conda_install(lock, request)  # before anything is fetched: a conda layer that cannot be had stops here
    base_ref, base_notes = pack_base(lock, request, engine)
    notes += base_notes
    with tempfile.TemporaryDirectory(prefix="envlock-pack-") as scratch:
        workdir = Path(scratch)
        step(f"downloading the pinned Python files, the OS packages apt in {base_ref} fetches, and saving it")
        meters = [Meter(progress, what) for what in ("Python files", ".deb files", "docker save", "conda packages")]
        with ThreadPoolExecutor(max_workers=7) as pool:
            wheels_job = pool.submit(gather_wheels, lock, request, workdir, meters[0])
            debs_job = pool.submit(gather_debs, lock, base_ref, engine, workdir, notes, meters[1])
            image_job = pool.submit(save_image, engine, base_ref, workdir, meters[2])
            tools_job = pool.submit(gather_tools, request, notes)
            own_job = pool.submit(_envlock_or_note, request, notes)
            conda_job = pool.submit(gather_conda, conda, request, workdir, meters[3])
            installer_job = pool.submit(gather_installer_debs, conda, base_ref, engine, workdir, meters[1])
            rattler_job = pool.submit(gather_rattler, conda, request, meters[3])
            wheels, debs, (image, image_record), tools = (
                wheels_job.result(),
                debs_job.result(),
                image_job.result(),
                tools_job.result() + own_job.result() + rattler_job.result(),
            )
            conda_members = conda_job.result() + installer_job.result()
        step(f"{len(wheels)} Python files: {meters[0].describe()}")
        step(f"{len(debs)} .deb files: {meters[1].describe()}")
        if conda is not None:
            step(f"{len(conda.archives)} conda packages: {meters[3].describe()}")
            notes.append(
                f"{len(conda.archives)} conda packages, the py-rattler wheel"
                + (
                    f", and {len(conda_members) - len(conda.archives)} .deb files of the installer's Python"
                    if len(conda_members) > len(conda.archives)
                    else ""
                )
            )
        step(f"base image saved: {meters[2].describe()}")
        meta = {
            "envlock-version": __version__,
            "lock-fingerprint": lock.fingerprint,
            "platform": _platform(lock),
            "base-image": image_record,
        }
        members = [*wheels, *debs, *conda_members, image, *tools]
        step(f"writing {request.output}")
        sha = write_pack(request.output, meta, dumps_lock(lock, "envlock pack").encode(), members)
    size = os.path.getsize(request.output)
    return PackResult(request.output, sha, len(members) + 3, size, tuple(notes))


def pack_base(lock: m.Lock, request: PackRequest, engine) -> tuple[str, list[str]]:
    """The base image a replay of ``lock`` starts from, present in the engine: --base-image, the lock's digest,
    or the matrix's choice (envlock's own Debian base where no registry serves it)."""
    from envlock.replay.base_matrix import check_image_ref
    from envlock.replay.locked_base import resolve_locked_base
    from envlock.replay.orchestrate import ReplayRequest, find_base
    from envlock.replay.progress import Progress

    if request.base_image:
        ref = check_image_ref(request.base_image, "--base-image")
        if engine.resolve(ref, pull=True) is None:
            raise PackBuildError(f"--base-image {ref}: not in the engine and it cannot be pulled")
        return ref, []
    locked = resolve_locked_base(lock, engine, pull=True)
    if locked is not None:
        return locked, [f"base image from the lock, by digest: {locked}"]
    choice = find_base(lock, ReplayRequest(), engine, Progress())
    return _matrix_or_own_base(lock, choice, engine), list(choice.notes)


def _matrix_or_own_base(lock: m.Lock, choice, engine) -> str:
    """The reference the plan would start from when no --base-image or locked digest names one."""
    from envlock.replay.plan import ReplayOptions, plan_replay

    plan = plan_replay(lock, ReplayOptions(base_source=choice.source, base_digest=choice.digest))
    if choice.source == "debootstrap":
        from envlock.replay.orchestrate import ReplayRequest, ensure_own_base
        from envlock.replay.progress import Progress

        ensure_own_base(plan, ReplayRequest(), engine, Progress())
    return plan.from_ref


def _platform(lock: m.Lock) -> str:
    arch = (lock.cpu.architecture if lock.cpu else None) or (lock.os.architecture if lock.os else None) or "unknown"
    tag = lock.python.platform_tag if lock.python else None
    return f"linux/{arch}" + (f" ({tag})" if tag else "")


def check_output_path(path: str) -> str:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"-o {path}: the directory {parent} does not exist")
    return path
