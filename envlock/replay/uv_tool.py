"""uv, the installer replay runs inside the image and for ``--into-venv``, hash-pinned like any other file.

uv's wheel carries one executable that does not depend on the interpreter
(``py3-none``, a binary linked only against glibc 2.17+), so one file per
machine architecture serves every base image.  Its version and sha256 are
recorded here, in code: the file is found by name on the index replay uses
(``--index-url``, default PyPI) or in a local directory of wheels (a
wheelhouse, an unpacked pack: the network may be off), checked against the
recorded sha256 before anything is extracted from it, and kept in envlock's
cache (``ENVLOCK_CACHE_DIR``).  The build context then carries the checked
executable; it is bind-mounted for the install and is in no layer of the image.

Why uv (measured, benchmarks/RESULTS.md "Replay"): it downloads and installs
the hash-pinned files in parallel, compiles bytecode in parallel, and needs no
pip in the venv, so the venv is created with ``--without-pip`` in well under a
second instead of the ~5 s ensurepip takes.
"""

from __future__ import annotations

import hashlib
import os
import platform
import tempfile
import zipfile
from pathlib import Path

from envlock.errors import ReplayError
from envlock.records import record

UV_VERSION = "0.13.9"
_UV_MEMBER = f"uv-{UV_VERSION}.data/scripts/uv"
MAX_WHEEL_BYTES = 64 * 1024 * 1024  # uv's wheels are ~18 MB; a cap keeps a hostile index from filling the disk


@record
class UvWheel:
    """One recorded uv wheel: the file replay will accept, and nothing else."""

    arch: str  # x86_64 or aarch64 (uname -m spelling)
    filename: str
    sha256: str
    member: str = _UV_MEMBER  # the executable inside the wheel


# From PyPI's own file list for uv 0.13.9 (https://pypi.org/simple/uv/, PEP 691 JSON).
UV_WHEELS = {
    "x86_64": UvWheel(
        "x86_64",
        "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    ),
    "aarch64": UvWheel(
        "aarch64",
        "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
}

_ARCH_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


@record
class UvBinary:
    """A uv executable on this machine, extracted from a wheel whose sha256 was checked."""

    version: str
    arch: str
    wheel_sha256: str
    path: str


def normalize_arch(name: str | None) -> str | None:
    """``amd64``/``x86_64`` -> ``x86_64``, ``arm64``/``aarch64`` -> ``aarch64``; None for others (pure)."""
    return _ARCH_NAMES.get((name or "").lower())


def host_arch() -> str | None:
    """This machine's architecture when uv runs here (Linux only: the wheels are Linux wheels)."""
    if platform.system() != "Linux":
        return None
    return normalize_arch(platform.machine())


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_root() -> Path:
    from envlock.capture.cache import cache_dir

    return Path(cache_dir()) / "uv"


def find_uv(
    arch: str,
    *,
    index_url: str | None = None,
    local_dirs: tuple[str, ...] = (),
    wheels: dict[str, UvWheel] | None = None,
    cache: str | os.PathLike | None = None,
    timeout: float = 60.0,
) -> UvBinary | None:
    """The checked uv executable for ``arch``; None when uv has no wheel for it (the caller uses pip).

    ``ReplayError`` (exit 2) when the wheel is nowhere to be had or a file's
    bytes differ (see :func:`uv_wheel_file`).
    """
    wheel = (wheels or UV_WHEELS).get(arch)
    if wheel is None:
        return None
    root = Path(cache) if cache is not None else _cache_root()
    binary = root / f"{wheel.sha256[:16]}-{wheel.arch}" / "uv"
    if not binary.is_file():
        source = uv_wheel_file(
            arch, index_url=index_url, local_dirs=local_dirs, wheels=wheels, cache=root, timeout=timeout
        )
        _extract(source, wheel, binary)
    return UvBinary(UV_VERSION, wheel.arch, wheel.sha256, str(binary))


def uv_wheel_file(
    arch: str,
    *,
    index_url: str | None = None,
    local_dirs: tuple[str, ...] = (),
    wheels: dict[str, UvWheel] | None = None,
    cache: str | os.PathLike | None = None,
    timeout: float = 60.0,
) -> Path:
    """The recorded uv wheel for ``arch`` as a checked file on this machine (for a pack to carry).

    Looks in ``local_dirs`` (by file name), then in the cache, then on
    ``index_url`` (default PyPI); every candidate's sha256 is checked against
    the recorded one before it is returned.
    """
    wheel = (wheels or UV_WHEELS).get(arch)
    if wheel is None:
        raise ReplayError(f"uv {UV_VERSION} has no Linux wheel for {arch!r}", hint="pip installs instead")
    root = Path(cache) if cache is not None else _cache_root()
    found = _local_wheel(wheel, local_dirs) or _checked(root / wheel.filename, wheel)
    return found if found is not None else _download(wheel, index_url, root, timeout)


def _checked(path: Path, wheel: UvWheel) -> Path | None:
    if not path.is_file():
        return None
    if _sha256_of(path) != wheel.sha256:
        return None
    return path


def _local_wheel(wheel: UvWheel, local_dirs: tuple[str, ...]) -> Path | None:
    for directory in local_dirs:
        candidate = Path(directory).expanduser() / wheel.filename
        if candidate.is_file():
            if _sha256_of(candidate) != wheel.sha256:
                raise ReplayError(
                    f"{candidate}: its sha256 is not the one envlock records for uv {UV_VERSION}",
                    hint="remove the file, or replace it with the wheel PyPI serves under that name",
                )
            return candidate
    return None


def _download(wheel: UvWheel, index_url: str | None, root: Path, timeout: float) -> Path:
    """Find the wheel on the index by name, download it, check it, keep it in the cache."""
    import urllib.error

    from envlock import index_client, resolve

    index = index_url or resolve.DEFAULT_INDEX
    offline_hint = f"put {wheel.filename} (from PyPI) into a --find-links directory; envlock checks its sha256"
    try:
        files = index_client.IndexReader(timeout=timeout).project_files(index, "uv")
    except (index_client.IndexUnavailable, index_client.NotOnIndex) as exc:
        raise ReplayError(
            f"uv {UV_VERSION} (the installer replay uses) cannot be found: {exc}", hint=offline_hint
        ) from None
    found = next((f for f in files if f.filename == wheel.filename), None)
    if found is None:
        raise ReplayError(f"{index} does not serve {wheel.filename} (uv {UV_VERSION})", hint=offline_hint)
    if found.sha256 is not None and found.sha256 != wheel.sha256:
        raise ReplayError(
            f"{index} lists {wheel.filename} with sha256 {found.sha256}, not the one envlock records",
            hint="the index serves other bytes under uv's name; use PyPI or a wheelhouse with the real file",
        )
    # Any scheme urllib reads is acceptable here: the URL is written nowhere, and the bytes are checked.
    if not found.url.startswith(("https://", "http://", "file://")):
        raise ReplayError(f"{wheel.filename}: the index links it at {found.url[:120]!r}, not an http(s) or file URL")
    root.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".uv-", suffix=".part", dir=root)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            with index_client.open_url(found.url, timeout) as response:
                for block in iter(lambda: response.read(1024 * 1024), b""):
                    size += len(block)
                    if size > MAX_WHEEL_BYTES:
                        raise ReplayError(f"{found.url}: larger than {MAX_WHEEL_BYTES} bytes; not uv's wheel")
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != wheel.sha256:
            raise ReplayError(
                f"{found.url}: the downloaded bytes have sha256 {digest.hexdigest()}, not the one envlock records for uv {UV_VERSION}",
                hint="the index or a proxy changed the file; nothing was used",
            )
        target = root / wheel.filename
        os.replace(name, target)
        return target
    except (urllib.error.URLError, OSError) as exc:
        raise ReplayError(
            f"downloading {wheel.filename} failed ({getattr(exc, 'reason', exc)})", hint=offline_hint
        ) from None
    finally:
        if os.path.exists(name):
            os.unlink(name)


def _extract(source: Path, wheel: UvWheel, binary: Path) -> None:
    """Copy the executable out of a checked wheel, atomically (a half-written uv is never used)."""
    binary.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".uv-", dir=binary.parent)
    try:
        with zipfile.ZipFile(source) as archive, os.fdopen(handle, "wb") as out:
            try:
                member = archive.open(wheel.member)
            except KeyError:
                raise ReplayError(f"{source}: the wheel has no {wheel.member}") from None
            with member:
                for block in iter(lambda: member.read(1024 * 1024), b""):
                    out.write(block)
        os.chmod(name, 0o755)
        os.replace(name, binary)
    except zipfile.BadZipFile:
        raise ReplayError(f"{source}: not a wheel (zip) file") from None
    finally:
        if os.path.exists(name):
            os.unlink(name)


# --- the install command ------------------------------------------------------------


def install_argv(
    group,
    uv: str,
    python: str,
    requirements_file: str,
    wheel_dir: str,
    ca_file: str | None,
    cache_dir: str | None,
    compile_bytecode: bool = True,
    link_mode: str | None = None,
) -> list[str]:
    """The ``uv pip install`` command line for one install group (an ``InstallGroup``), in an image or here.

    The same guarantees as the pip command it replaces: exactly the listed
    files, hash-checked, no resolution (``--require-hashes --no-deps``), and no
    configuration of the machine taking part (``--no-config``: no uv.toml; the
    index is named on the command line).  ``cache_dir`` None: a throwaway cache
    (``--no-cache``) whose files are hard-linked into the venv; a named cache may
    be a build mount on another file system, so its files are copied (``link_mode``
    says otherwise for a target on the cache's own file system).
    """
    argv = [uv, "pip", "install", "--no-config", "--python", python]
    if cache_dir:
        argv += ["--link-mode", link_mode or "copy", "--cache-dir", cache_dir]
    else:
        # A throwaway cache beside the venv (same file system): hard links write each file once.
        argv += ["--link-mode", "hardlink", "--no-cache"]
    if compile_bytecode:
        argv.append("--compile-bytecode")
    argv += ["--require-hashes", "--no-deps"]
    if group.binary_only:
        argv += ["--only-binary", ":all:"]
    if ca_file:
        argv += ["--cert", ca_file]
    if group.kind == "index":
        argv += ["--default-index", group.index_url]
    elif group.kind == "wheelhouse":
        argv += ["--no-index", "--find-links", wheel_dir]
    else:
        argv += ["--no-index"]
    return argv + ["-r", requirements_file]


def uninstall_argv(uv: str, python: str, names: tuple[str, ...]) -> list[str]:
    """``uv pip uninstall`` of the packages a seeded venv brought and the lock does not have."""
    return [uv, "pip", "uninstall", "--no-config", "--python", python, *names]
