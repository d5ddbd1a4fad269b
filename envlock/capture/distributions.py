"""Find the installed distributions in a set of site-packages directories.

Read straight from ``*.dist-info`` / ``*.egg-info`` files (no ``importlib``
machinery, no imports of the packages): the header of ``METADATA`` for name
and version, ``INSTALLER``, ``REQUESTED``, ``direct_url.json`` and, on demand,
``RECORD``.  Several probes (Python packages, CUDA wheels, bundled BLAS, kernel
architectures) share one scan.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

_METADATA_HEAD_BYTES = 16 * 1024

_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """PEP 503 normalisation, as ``packaging.utils.canonicalize_name`` does it.

    Written out because importing packaging.utils pulls in packaging.tags and
    logging: ~10 ms of a capture whose whole budget is ~100 ms.  A test holds
    it equal to packaging's on generated names.
    """
    return _SEPARATORS.sub("-", name).lower()


@dataclass(slots=True)
class InstalledDist:
    name: str  # as written in METADATA
    version: str
    path: Path  # the .dist-info / .egg-info directory
    site_dir: Path
    installer: str | None = None
    requested: bool | None = None
    direct_url_text: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def normalized_name(self) -> str:
        return canonical_name(self.name)

    def record_files(self) -> list[Path]:
        """Files listed in RECORD, resolved against the site directory (empty when unreadable)."""
        try:
            text = (self.path / "RECORD").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        files = []
        for line in text.splitlines():
            rel = line.split(",", 1)[0]
            if rel.startswith('"') and rel.endswith('"'):
                rel = rel[1:-1]
            if rel:
                files.append(self.site_dir / rel)
        return files


def parse_metadata_head(text: str) -> tuple[str | None, str | None]:
    """Name and Version from the header block of METADATA/PKG-INFO (pure)."""
    name = version = None
    for line in text.partition("\n\n")[0].splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "name" and name is None:
            name = value.strip()
        elif key == "version" and version is None:
            version = value.strip()
        if name and version:
            break
    return name, version


def _read_bytes(path: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of a file; OSError as the OS gives it.

    os.open/os.read rather than pathlib and buffered files: per distribution
    this is the hot path of a capture (2,000 distributions in the benchmark).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _read_head(path: str) -> tuple[str | None, str | None]:
    """(text, problem): the start of a metadata file, decoded; ``problem`` says why it is missing or odd."""
    try:
        raw = _read_bytes(path, _METADATA_HEAD_BYTES)
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:  # a directory in its place, EACCES for non-root, EIO
        return None, f"unreadable ({type(exc).__name__})"
    return decode_metadata(raw, truncated=len(raw) == _METADATA_HEAD_BYTES)


def decode_metadata(raw: bytes, truncated: bool = False) -> tuple[str, str | None]:
    """UTF-8 text of metadata bytes (pure); undecodable bytes are replaced and reported.

    A read that stopped at the chunk limit may cut a multi-byte character in
    two; that is not the file's fault and is not reported.
    """
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data":
            return raw[: exc.start].decode("utf-8", errors="replace"), None
        return raw.decode("utf-8", errors="replace"), f"not valid UTF-8 (byte {exc.start}); undecodable bytes were replaced"


def _read_small(path: str) -> str | None:
    try:
        raw = _read_bytes(path, 64 * 1024)
    except OSError:
        return None
    return raw.decode("utf-8", errors="replace")


def read_dist(info_dir: Path, site_dir: Path) -> InstalledDist | None:
    warnings: list[str] = []
    info = str(info_dir)
    is_egg = info.endswith(".egg-info")
    # One listing tells which optional files exist, instead of a failed open
    # (and a Python exception) per missing file.
    try:
        present = set(os.listdir(info))
    except OSError:  # NotADirectoryError: an egg-info *file* is PKG-INFO itself
        present = set()
    if is_egg and not present and os.path.isfile(info):
        meta_path = info
    else:
        meta_path = os.path.join(info, "PKG-INFO" if is_egg else "METADATA")
    head, problem = _read_head(meta_path)
    name = version = None
    if head is None:
        warnings.append(f"{meta_path}: {problem}; name and version taken from the directory name")
    else:
        if problem:
            warnings.append(f"{meta_path}: {problem}")
        name, version = parse_metadata_head(head)
    if not name or not version:
        stem = info_dir.name.rsplit(".", 1)[0]
        dir_name, _, dir_version = stem.partition("-")
        name = name or dir_name
        version = version or dir_version.split("-")[0]
        if head is not None:
            warnings.append(f"{meta_path}: no Name/Version header; taken from the directory name")
    if not name or not version:
        return None
    installer = None
    requested = None
    direct_url = None
    if not is_egg:
        if "INSTALLER" in present:
            installer_text = _read_small(os.path.join(info, "INSTALLER"))
            installer = (installer_text.strip() or None) if installer_text else None
        requested = "REQUESTED" in present
        if "direct_url.json" in present:
            direct_url = _read_small(os.path.join(info, "direct_url.json"))
    return InstalledDist(
        name=name,
        version=version,
        path=info_dir,
        site_dir=site_dir,
        installer=installer,
        requested=requested,
        direct_url_text=direct_url,
        warnings=warnings,
    )


def scan_distributions(site_dirs: list[str] | tuple[str, ...]) -> list[InstalledDist]:
    """Every distribution in ``site_dirs``; the first directory wins for a duplicated name, as on sys.path."""
    found: dict[str, InstalledDist] = {}
    seen_dirs: set[str] = set()
    for site in site_dirs:
        # The same directory twice on sys.path (a symlinked lib64) must not
        # report every package as a duplicate.
        real = os.path.realpath(site)
        if real in seen_dirs:
            continue
        seen_dirs.add(real)
        site_dir = Path(site)
        try:
            entries = os.listdir(site_dir)
        except OSError:
            continue
        for entry in sorted(entries):
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            dist = read_dist(site_dir / entry, site_dir)
            if dist is None:
                continue
            key = dist.normalized_name
            first = found.get(key)
            if first is None:
                found[key] = dist
            elif first.site_dir == dist.site_dir:
                # Two metadata directories for one name in one site-packages: a
                # half-finished upgrade or a crashed uninstall.  Which one
                # Python sees depends on directory order, so say so.
                first.warnings.append(
                    f"{dist.path}: a second copy of {first.name} (version {dist.version}) beside "
                    f"{first.path.name}; recorded {first.version}"
                )
    return sorted(found.values(), key=lambda d: d.normalized_name)
