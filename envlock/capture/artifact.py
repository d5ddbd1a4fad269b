"""What identifies an installed distribution's artifact, read offline (issue 11).

Two facts per distribution, both from files its installer left in the
``*.dist-info`` directory:

- the wheel tags and build tag, from ``WHEEL`` (PEP 427): which file of a
  release was installed;
- the **content digest**: one sha256 over the files ``RECORD`` lists, so that
  two installs of the same bytes give the same digest on any machine and with
  any installer.

The content digest, precisely (docs/lockfile.md repeats it):

1. Read ``RECORD`` as CSV rows ``path,hash,size``.
2. Leave out what an installer writes per machine or per run: rows with an
   empty hash (``RECORD`` itself, signatures); in the ``.dist-info``
   directory, ``INSTALLER``, ``REQUESTED``, ``direct_url.json`` and uv's
   ``uv_cache.json``; every
   ``.pyc`` file; and entry-point scripts, i.e. rows whose path leaves the
   site directory (starts with ``../``) into a directory named ``bin`` or
   ``Scripts`` (their shebang names the interpreter's path).
3. Each remaining row as the bytes ``path,hash,size`` exactly as RECORD
   writes them (a quoted row, for a path with a comma, as its three fields
   joined by commas without quotes); ``hash`` is ``sha256=<urlsafe base64,
   no padding>``.
4. Sort those rows bytewise, append ``\\n`` to each, concatenate, sha256:
   ``sha256:<64 hex>``.

RECORD's hashes are the installer's own hashes of the files it wrote, so the
digest costs one read of RECORD, never a read of the installed files (torch
alone installs 1.5 GB); ``verify_record_files`` re-hashes the files on disk
when the bytes themselves are in question.
"""

from __future__ import annotations

import os

from envlock.records import record


@record
class ArtifactIdentity:
    wheel_tags: tuple[str, ...] = ()
    build_tag: str | None = None
    content_digest: str | None = None
    # How many RECORD rows the digest covers (shown when two digests differ).
    files: int = 0


# --- WHEEL (pure) ----------------------------------------------------------------


def expand_tag(compressed: str) -> list[str]:
    """A possibly compressed tag set (``py2.py3-none-any``) as single tags, in the order written."""
    parts = compressed.strip().lower().split("-")
    if len(parts) != 3 or not all(parts):
        return []
    return [f"{i}-{a}-{p}" for i in parts[0].split(".") for a in parts[1].split(".") for p in parts[2].split(".")]


def parse_wheel_metadata(text: str) -> tuple[tuple[str, ...], str | None]:
    """(sorted unique tags, build tag or None) from a ``WHEEL`` file's text (pure)."""
    tags: set[str] = set()
    build = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "tag":
            tags.update(expand_tag(value))
        elif key == "build" and value.strip():
            build = value.strip()
    return tuple(sorted(tags)), build


# --- RECORD (pure) ---------------------------------------------------------------


def _canonical_row(line: bytes) -> bytes:
    """A quoted CSV row (a path with a comma) as its fields joined by commas, unquoted."""
    import csv

    row = next(csv.reader([line.decode("utf-8", "surrogateescape")]), None) or []
    return ",".join(row).encode("utf-8", "surrogateescape")


# What installers write into .dist-info per machine or per run: pip and uv's
# INSTALLER, REQUESTED and PEP 610 direct_url.json, and uv's uv_cache.json
# (its cache bookkeeping; found by verify in a uv-built image).
_INSTALLER_FILES = (b"INSTALLER", b"REQUESTED", b"direct_url.json", b"uv_cache.json")


def _kept(line: bytes) -> bool:
    """Whether one canonical RECORD row counts towards the content digest (see the module docstring)."""
    fields = line.rsplit(b",", 2)
    if len(fields) != 3 or not fields[1]:
        return False
    path = fields[0]
    if path.endswith(b".pyc"):
        return False
    if path.startswith(b"../"):
        parts = [p for p in path.split(b"/") if p != b".."]
        return not (parts and parts[0] in (b"bin", b"Scripts"))
    head, _, base = path.rpartition(b"/")
    return not (head.endswith(b".dist-info") and base in _INSTALLER_FILES)


def digest_lines(data: bytes) -> list[bytes]:
    """The canonical RECORD rows (``path,hash,size``) that the content digest covers, sorted bytewise (pure).

    Most rows are decided by byte tests on the whole line (a 15,000-row
    RECORD costs a few milliseconds); only the rows those tests flag are split.
    """
    kept = []
    for line in data.splitlines():
        if not line:
            continue
        if line.startswith(b'"'):
            line = _canonical_row(line)
        elif not (line.endswith(b",,") or line.startswith(b"../") or b".pyc," in line or b".dist-info/" in line):
            kept.append(line)
            continue
        if _kept(line):
            kept.append(line)
    kept.sort()
    return kept


def content_digest(lines: list[bytes]) -> str:
    """``sha256:<hex>`` over the kept, sorted rows, each followed by a newline (pure)."""
    import hashlib

    return "sha256:" + hashlib.sha256(b"".join(line + b"\n" for line in lines)).hexdigest()


def row_hashes(lines: list[bytes]) -> dict[str, str]:
    """``{path: hash}`` of kept rows, decoded (for naming the files that differ)."""
    out = {}
    for line in lines:
        path, digest, _size = line.rsplit(b",", 2)
        out[path.decode("utf-8", "surrogateescape")] = digest.decode("ascii", "replace")
    return out


# --- reading ---------------------------------------------------------------------


def _read(path: str, limit: int = -1) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError:
        return None


def _identity(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class DigestCache:
    """Content digests per RECORD path, valid while its (size, mtime_ns, inode) are unchanged.

    Hashing the rows costs ~10 ms per MB of RECORD (the reference env has
    3.5 MB); a repeated capture of an unchanged environment pays one stat
    per distribution instead.  One small file per environment (named by a
    checksum of its site directories): one shared file grew to 4 MB over a
    day of tests here and took 70 ms to load, more than the hashing it saved.
    ``ENVLOCK_NO_CACHE`` turns it off.
    """

    DIRECTORY = "content-digests-v3"
    # Entries kept per environment; beyond this, those not used by this capture go.
    MAX_ENTRIES = 20_000

    def __init__(self, scope: str = "") -> None:
        import binascii

        from envlock.capture import cache

        self._cache = cache
        self.name = f"{self.DIRECTORY}/{binascii.crc32(scope.encode('utf-8', 'surrogateescape')):08x}.json"
        self.enabled = cache.enabled()
        loaded = cache.load_json(self.name) if self.enabled else None
        self.entries: dict = loaded if isinstance(loaded, dict) else {}
        self.used: set[str] = set()
        self.changed = False

    def get(self, path: str, identity: list[int] | None) -> ArtifactIdentity | None:
        self.used.add(path)
        hit = self.entries.get(path)
        if identity is None or not isinstance(hit, list) or len(hit) != 5 or hit[0] != identity:
            return None
        _identity, digest, count, tags, build = hit
        if not (isinstance(digest, str) and isinstance(count, int) and isinstance(tags, list)):
            return None
        if not all(isinstance(t, str) for t in tags) or not (build is None or isinstance(build, str)):
            return None
        return ArtifactIdentity(tuple(tags), build, digest, count)

    def put(self, path: str, identity: list[int] | None, found: ArtifactIdentity) -> None:
        # WHEEL is written with RECORD by every install, so RECORD's identity covers both.
        if identity is not None and self.enabled:
            self.entries[path] = [identity, found.content_digest, found.files, list(found.wheel_tags), found.build_tag]
            self.changed = True

    def save(self) -> None:
        if self.changed:
            if len(self.entries) > self.MAX_ENTRIES:
                self.entries = {path: self.entries[path] for path in self.used if path in self.entries}
            try:
                os.makedirs(os.path.join(self._cache.cache_dir(), self.DIRECTORY), exist_ok=True)
            except OSError:
                return
            self._cache.save_json(self.name, self.entries, sort_keys=True)
            self.changed = False


def read_artifact(info_dir: str, cache: DigestCache | None = None) -> ArtifactIdentity | None:
    """The identity of the distribution whose metadata is ``info_dir``; None for an egg-info."""
    if not info_dir.endswith(".dist-info"):
        return None
    record_path = os.path.join(info_dir, "RECORD")
    identity = _identity(record_path) if cache is not None else None
    hit = cache.get(record_path, identity) if cache is not None else None
    if hit is not None:
        return hit
    wheel = _read(os.path.join(info_dir, "WHEEL"), 64 * 1024)
    tags, build = parse_wheel_metadata(wheel.decode("utf-8", "replace")) if wheel else ((), None)
    data = _read(record_path)
    if data is None:
        return ArtifactIdentity(tags, build, None, 0) if tags else None
    lines = digest_lines(data)
    found = ArtifactIdentity(tags, build, content_digest(lines), len(lines))
    if cache is not None:
        cache.put(record_path, identity, found)
    return found


def record_hashes(info_dir: str) -> dict[str, str]:
    """``{path: hash}`` of the rows the content digest covers (empty when RECORD is unreadable)."""
    data = _read(os.path.join(info_dir, "RECORD"))
    return row_hashes(digest_lines(data)) if data is not None else {}


def file_hash(path: str) -> str | None:
    """``sha256=<urlsafe base64>`` of a file, as RECORD writes it; None when unreadable."""
    import base64
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(block)
    except OSError:
        return None
    return "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def files_differing_from_record(site_dir: str, info_dir: str) -> list[str]:
    """Paths (as RECORD writes them) whose bytes on disk differ from RECORD's sha256, or that are missing.

    The proof that the installed bytes are the ones RECORD (and so the content
    digest) describes.  Rows hashed with another algorithm are not checked.
    """
    differing = []
    for path, digest in sorted(record_hashes(info_dir).items()):
        if digest.startswith("sha256=") and file_hash(os.path.join(site_dir, path)) != digest:
            differing.append(path)
    return differing
