"""Find the installed distributions in a set of site-packages directories.

Read straight from ``*.dist-info`` / ``*.egg-info`` files (no ``importlib``
machinery, no imports of the packages): the header of ``METADATA`` for name
and version, ``INSTALLER``, ``REQUESTED``, ``direct_url.json`` and, on demand,
``RECORD``.  Several probes (Python packages, CUDA wheels, bundled BLAS, kernel
architectures) share one scan.
"""

from __future__ import annotations

import os

from envlock.lockfile.fields import compiled_on_first_use
from envlock.names import canonical_name
from envlock.paths import pure_path_text
from envlock.records import field, record

_METADATA_HEAD_BYTES = 16 * 1024


@record(frozen=False)
class InstalledDist:
    name: str  # as written in METADATA
    version: str
    # Paths are strings spelled as pathlib spelled them (this module used it);
    # pathlib itself costs a capture 5 ms of imports (urllib.parse, ipaddress).
    path: str  # the .dist-info / .egg-info directory
    site_dir: str
    installer: str | None = None
    requested: bool | None = None
    direct_url_text: str | None = None
    warnings: list[str] = field(default_factory=list)

    _normalized: str | None = field(default=None, repr=False, compare=False)

    @property
    def normalized_name(self) -> str:
        # Asked for by every probe (several times per distribution per capture).
        if self._normalized is None:
            self._normalized = canonical_name(self.name)
        return self._normalized

    # RECORD read once per distribution and shared by the probes that need it
    # (CUDA wheels, kernel architectures, bundled BLAS): torch's RECORD alone
    # has ~15,000 lines.
    _record: list[str] | None = field(default=None, repr=False, compare=False)
    _record_paths: list[str] | None = field(default=None, repr=False, compare=False)
    _record_libraries: list[str] | None = field(default=None, repr=False, compare=False)

    def record_entries(self) -> list[str]:
        """The paths listed in RECORD, as written there (relative to the site directory); empty when unreadable."""
        if self._record is None:
            self._record = parse_record(_read_record(os.path.join(self.path, "RECORD")))
        return self._record

    def record_files(self) -> list[str]:
        """Files listed in RECORD, resolved against the site directory (empty when unreadable).

        A pathlib Path cost ~5 us to build; for every line of every RECORD in
        a 60-package env that was 0.55 s.  Probes that want shared libraries
        only should call ``record_shared_libraries``.
        """
        if self._record_paths is None:
            site = self.site_dir
            self._record_paths = [_joined(site, rel) for rel in self.record_entries()]
        return self._record_paths

    def record_shared_libraries(self) -> list[str]:
        """The shared libraries (``*.so``, ``*.so.12``, ``*.dylib``, ``*.dll``) among the RECORD entries.

        Found by a byte search of RECORD for the suffixes, parsing only the
        lines that match: torch's 15,000-line RECORD names ~100 libraries.
        Measured on the 48-distribution reference env (3.5 MB of RECORD):
        ~3 ms for the search against ~90 ms to parse every line.
        """
        if self._record_libraries is None:
            if self._record is not None:
                rels = self._record
            else:
                rels = parse_record("\n".join(_library_lines(_read_record_bytes(os.path.join(self.path, "RECORD")))))
            site = self.site_dir
            match = shared_library().search
            self._record_libraries = [_joined(site, rel) for rel in rels if match(rel)]
        return self._record_libraries


# Compiled on first use, as are the patterns below: a capture whose RECORD
# library lists come from the kernel cache needs neither.
_library_suffix = compiled_on_first_use(rb"\.(?:so|dylib|dll|pyd)\b")


def _library_lines(data: bytes) -> list[str]:
    """The lines of a RECORD that mention a shared-library suffix, decoded, in order (pure)."""
    lines: list[str] = []
    last_start = -1
    for hit in _library_suffix().finditer(data):
        start = data.rfind(b"\n", 0, hit.start()) + 1
        if start == last_start:
            continue  # two suffixes on one line
        last_start = start
        end = data.find(b"\n", hit.end())
        lines.append(data[start : None if end < 0 else end].decode("utf-8", errors="replace"))
    return lines


shared_library = compiled_on_first_use(r"\.(?:so(?:\.[0-9]+)*|dylib|dll|pyd)$")


def _joined(site: str, rel: str) -> str:
    """``site / rel`` as pathlib wrote it: a RECORD path joined to its site directory."""
    return pure_path_text(os.path.join(site, rel))


def _read_record_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _read_record(path: str) -> str:
    return _read_record_bytes(path).decode("utf-8", errors="replace")


def parse_record(text: str) -> list[str]:
    """The path column of a RECORD file (pure).  RECORD is CSV; only a quoted path needs the csv module."""
    entries = []
    for line in text.splitlines():
        if line.startswith('"'):
            import csv

            row = next(csv.reader([line]), None)
            rel = row[0] if row else ""
        else:
            rel = line.split(",", 1)[0]
        if rel:
            entries.append(rel)
    return entries


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
        return raw.decode(
            "utf-8", errors="replace"
        ), f"not valid UTF-8 (byte {exc.start}); undecodable bytes were replaced"


def _read_small(path: str) -> str | None:
    try:
        raw = _read_bytes(path, 64 * 1024)
    except OSError:
        return None
    return raw.decode("utf-8", errors="replace")


def read_dist(info_dir: str | os.PathLike, site_dir: str | os.PathLike) -> InstalledDist | None:
    warnings: list[str] = []
    info = pure_path_text(os.fspath(info_dir))
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
        stem = os.path.basename(info).rsplit(".", 1)[0]
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
        path=info,
        site_dir=pure_path_text(os.fspath(site_dir)),
        installer=installer,
        requested=requested,
        direct_url_text=direct_url,
        warnings=warnings,
    )


def read_egg_link(link: str | os.PathLike, site_dir: str | os.PathLike) -> InstalledDist | None:
    """A legacy editable install (``setup.py develop``, pip < 21.3): ``<name>.egg-link`` names the
    project directory, whose ``*.egg-info`` holds the metadata.  Recorded as an editable
    directory install, as PEP 610 would have described it."""
    import json

    text = _read_small(os.fspath(link))
    project = text.splitlines()[0].strip() if text and text.strip() else ""
    if not project:
        return None
    project_dir = os.path.normpath(os.path.join(os.fspath(site_dir), project))
    try:
        infos = sorted(e for e in os.listdir(project_dir) if e.endswith(".egg-info"))
    except OSError:
        infos = []
    if not infos:
        return None  # a dangling link: Python finds no distribution there either
    dist = read_dist(os.path.join(project_dir, infos[0]), site_dir)
    if dist is not None:
        from pathlib import Path  # legacy editables only: as_uri's quoting

        dist.direct_url_text = json.dumps({"url": Path(project_dir).as_uri(), "dir_info": {"editable": True}})
    return dist


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
        site_dir = pure_path_text(site)
        try:
            entries = os.listdir(site_dir)
        except OSError:
            continue
        for entry in sorted(entries):
            if entry.endswith((".dist-info", ".egg-info")):
                dist = read_dist(os.path.join(site_dir, entry), site_dir)
            elif entry.endswith(".egg-link"):
                dist = read_egg_link(os.path.join(site_dir, entry), site_dir)
            else:
                continue
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
                    f"{os.path.basename(first.path)}; recorded {first.version}"
                )
    return sorted(found.values(), key=lambda d: d.normalized_name)
