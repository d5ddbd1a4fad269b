"""The pack file: one plain tar in a canonical form, written and checked here (no other module reads pack bytes).

Layout (every member a regular file; names are ``[A-Za-z0-9._+-]`` path parts)::

    pack.json          format version, envlock version, lock fingerprint, platform, and every
                       member's kind, size and sha256 (written first: a reader knows what is coming)
    envlock.lock       the (pinned) lock
    wheels/<file>      each pinned Python file, checked against the lock's sha256 as it was added
    debs/<file>.deb    the OS layer's packages at their locked versions (apt installs them by path)
    conda/<file>       a conda lock's archives (.tar.bz2 / .conda), checked against the lock's hashes
    conda/installer/<file>.deb
                       Debian's python3 + python3-venv, for a base without a Python to run the
                       conda installer (the build stage's only use of them)
    image/base.tar     the base image (``docker save``), recorded by digest in pack.json
    tools/<file>       uv, py-rattler (a conda lock's installer), envlock itself and its dependencies, as wheels
    SHA256SUMS         ``<hex>  <name>`` for every member above, in order (written last)

Canonical form: members in the order above, each a USTAR header made from
(name, size) alone (mode 0644, owner 0:0, mtime 0, no user names), data, zero
padding to 512 bytes, then two zero blocks and nothing after.  The same
members therefore give the same bytes, and the checker can rebuild every
header and compare it byte for byte: any changed byte of a header, of
padding or past the end is found without trusting the tar parser.  Then each
member's sha256 is compared with SHA256SUMS and pack.json.

Not compressed, by measurement (benchmarks/RESULTS.md): wheels and .debs are
compressed already, and gzip over an image's layers costs more time than the
space it saves is worth for a file read once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from envlock.errors import EnvlockError
from envlock.records import record

FORMAT_VERSION = 1
BLOCK = 512
PACK_JSON = "pack.json"
LOCK_MEMBER = "envlock.lock"
SUMS = "SHA256SUMS"
# Member kinds by their first path part; a new artifact kind adds one prefix here.
KINDS = {"wheels": "wheel", "debs": "deb", "image": "image", "tools": "tool", "conda": "conda"}
ORDER = ("wheels", "debs", "conda", "image", "tools")
MAX_MEMBERS = 100_000
MAX_META_BYTES = 16 * 1024 * 1024
_PART = r"[A-Za-z0-9_+-][A-Za-z0-9._+~%-]{0,199}"
_NAME = re.compile(rf"{_PART}(?:/{_PART}){{0,3}}")
_HEX = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024


class PackError(EnvlockError, ValueError):
    """A pack that is damaged, tampered or hostile: nothing of it is used (exit 2)."""

    def __init__(self, message: str, member: str | None = None, hint: str | None = None) -> None:
        self.member = member
        text = f"pack member {member!r}: {message}" if member else f"pack: {message}"
        super().__init__(text, hint or "get the pack again from where it was published; do not edit it")


@record
class Member:
    """One member as pack.json declares it."""

    name: str
    kind: str
    size: int
    sha256: str  # 64 lowercase hex


def check_member_name(name: object) -> str:
    """``name`` when it is a plain relative name envlock writes, else ``PackError`` (no .., /, links by name)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or any(part in (".", "..") for part in name.split("/")):
        raise PackError("not a plain relative file name", member=str(name)[:200])
    return name


def kind_of(name: str) -> str:
    if name in (PACK_JSON, LOCK_MEMBER, SUMS):
        return "meta"
    top = name.split("/", 1)[0]
    if "/" not in name or top not in KINDS:
        raise PackError(f"not a place a pack has (one of {', '.join(sorted(KINDS))}/)", member=name)
    return KINDS[top]


def member_order(name: str) -> tuple[int, str]:
    """Where a member goes in the canonical order."""
    if name == PACK_JSON:
        return (0, "")
    if name == LOCK_MEMBER:
        return (1, "")
    if name == SUMS:
        return (len(ORDER) + 3, "")
    return (2 + ORDER.index(name.split("/", 1)[0]), name)


def header(name: str, size: int) -> bytes:
    """The canonical USTAR header of a member (pure)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    try:
        return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    except ValueError:
        # A name USTAR cannot hold (wheel names with compressed tag sets pass 100
        # characters): a POSIX pax record carries the whole name, as every tar reads.
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


MAX_PAX_BYTES = 4096


def _pax_path(data: bytes, position: int) -> str:
    """The ``path`` of a pax extended header's records (``"<len> path=<name>\n"``), or ``PackError``."""
    found = None
    rest = data.rstrip(b"\0")
    while rest:
        length_text, space, _ = rest.partition(b" ")
        if not space or not length_text.isdigit() or int(length_text) > len(rest) or int(length_text) < 4:
            raise PackError(f"the pax header at byte {position} is damaged")
        record, rest = rest[: int(length_text)], rest[int(length_text) :]
        key, equals, value = record.partition(b" ")[2].partition(b"=")
        if not equals or not value.endswith(b"\n"):
            raise PackError(f"the pax header at byte {position} is damaged")
        if key != b"path":
            raise PackError(f"the pax header at byte {position} sets {key[:20]!r}; a pack sets only path")
        found = value[:-1].decode("utf-8", "strict")
    if found is None:
        raise PackError(f"the pax header at byte {position} names no path")
    return found


def _padding(size: int) -> int:
    return (BLOCK - size % BLOCK) % BLOCK


# --- writing -------------------------------------------------------------------------


@record
class Source:
    """A member to write: its bytes in memory, or a file on disk (streamed), with its sha256 known."""

    name: str
    size: int
    sha256: str
    data: bytes | None = None
    path: str | None = None


def source_from_bytes(name: str, data: bytes) -> Source:
    return Source(check_member_name(name), len(data), hashlib.sha256(data).hexdigest(), data=data)


def source_from_file(name: str, path: str | os.PathLike, sha256: str | None = None) -> Source:
    """A file member; its sha256 is computed here unless the caller just computed it while downloading."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if sha256 is None:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        sha256 = digest.hexdigest()
    return Source(check_member_name(name), size, sha256, path=path)


def pack_json_bytes(meta: dict, sources: Iterable[Source]) -> bytes:
    """pack.json: ``meta`` plus every member's kind, size and sha256, as canonical JSON."""
    members = [
        {"name": s.name, "kind": kind_of(s.name), "size": s.size, "sha256": s.sha256}
        for s in sorted(sources, key=lambda s: member_order(s.name))
    ]
    document = {"format": "envlock-pack", "format-version": FORMAT_VERSION, **meta, "members": members}
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode()


def sums_bytes(sources: Iterable[Source]) -> bytes:
    ordered = sorted(sources, key=lambda s: member_order(s.name))
    return "".join(f"{s.sha256}  {s.name}\n" for s in ordered).encode()


def write_pack(target: str | os.PathLike, meta: dict, lock_bytes: bytes, members: list[Source], progress=None) -> str:
    """Write the pack atomically (a temporary file renamed into place); its sha256.

    ``members`` are the artifacts (wheels, debs, image, tools); pack.json,
    the lock and SHA256SUMS are made here.
    """
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise PackError("two artifacts have the same name", member=next(n for n in names if names.count(n) > 1))
    for item in members:
        kind_of(item.name)
    body = [source_from_bytes(LOCK_MEMBER, lock_bytes), *members]
    meta_source = source_from_bytes(PACK_JSON, pack_json_bytes(meta, body))
    sums_source = source_from_bytes(SUMS, sums_bytes([meta_source, *body]))
    ordered = sorted([meta_source, *body, sums_source], key=lambda s: member_order(s.name))
    target = Path(target)
    temporary = target.with_name(f".{target.name}.partial-{os.getpid()}")
    whole = hashlib.sha256()
    try:
        with open(temporary, "wb") as out:

            def emit(data: bytes) -> None:
                whole.update(data)
                out.write(data)

            for item in ordered:
                emit(header(item.name, item.size))
                if item.data is not None:
                    emit(item.data)
                else:
                    _copy_checked(item, emit, progress)
                emit(b"\0" * _padding(item.size))
            emit(b"\0" * (2 * BLOCK))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return whole.hexdigest()


def _copy_checked(item: Source, emit, progress) -> None:
    """Stream a file member into the pack, checking it is still the bytes that were hashed."""
    assert item.path is not None, "a file member without a path"  # callers pass data or path, never neither
    digest = hashlib.sha256()
    copied = 0
    with open(item.path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            copied += len(chunk)
            emit(chunk)
            if progress is not None:
                progress(item.name, len(chunk))
    if copied != item.size or digest.hexdigest() != item.sha256:
        raise PackError("changed while it was being packed", member=item.name)


# --- checking and reading --------------------------------------------------------------


@record
class CheckedPack:
    """A pack whose every byte was checked: its metadata, members (in order) and whole-file sha256."""

    path: str
    meta: dict
    members: tuple[Member, ...]
    offsets: dict  # name -> offset of the member's data in the file
    sha256: str

    def lock_bytes(self) -> bytes:
        return self.read(LOCK_MEMBER)

    def read(self, name: str) -> bytes:
        member = next(m for m in self.members if m.name == name)
        with open(self.path, "rb") as handle:
            handle.seek(self.offsets[name])
            return handle.read(member.size)

    def of_kind(self, kind: str) -> list[Member]:
        return [m for m in self.members if m.kind == kind]


def is_pack(path: str | os.PathLike) -> bool:
    """True when the file starts like a pack (a tar whose first member is pack.json): by content, not name."""
    try:
        with open(path, "rb") as handle:
            first = handle.read(BLOCK)
    except OSError:
        return False
    return len(first) == BLOCK and first[:100].rstrip(b"\0") == PACK_JSON.encode() and first[257:263] == b"ustar\0"


def _read_exact(handle, size: int, name: str | None, whole) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise PackError("the file ends inside it (truncated pack)", member=name)
    whole.update(data)
    return data


def _parse_header(block: bytes, position: int, allow_pax: bool = False, name: str | None = None) -> tuple[str, int]:
    """(name, size) from a header block, refusing anything but a regular file with a plain name.

    ``allow_pax``: the block is a pax extended header (its size is what is wanted);
    ``name``: the long name a pax record gave this header.
    """
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    except tarfile.HeaderError as exc:
        named = name or block[:100].split(b"\0", 1)[0].decode("utf-8", "replace")[:200] or None
        raise PackError(
            f"its tar header (at byte {position}) is damaged: changed bytes ({exc})", member=named
        ) from None
    if allow_pax and info.type == tarfile.XHDTYPE:
        return info.name, info.size
    name = name or info.name
    if info.type != tarfile.REGTYPE:
        kinds = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link", tarfile.DIRTYPE: "a directory"}
        what = kinds.get(
            info.type,
            "a device or special file"
            if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE)
            else f"type {info.type!r}",
        )
        raise PackError(f"is {what}; a pack holds regular files only", member=name[:200])
    if name.startswith("/"):
        raise PackError("is an absolute path", member=name[:200])
    check_member_name(name)
    return name, info.size


def check_pack(path: str | os.PathLike, progress=None) -> CheckedPack:
    """Check every byte of a pack (headers, padding, end, then each member's sha256); ``PackError`` naming the member.

    Reads the file once, extracts nothing.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PackError(f"{path} cannot be read (no such file)", hint="check the path")
    if not is_pack(path):
        raise PackError(f"{path} is not an envlock pack (it does not start with pack.json)")
    whole = hashlib.sha256()
    members: list[tuple[str, int, str]] = []
    offsets: dict[str, int] = {}
    declared: dict[str, Member] | None = None
    meta: dict = {}
    sums_text = None
    with open(path, "rb") as handle:
        position = 0
        while True:
            block = _read_exact(handle, BLOCK, None, whole)
            if block == b"\0" * BLOCK:
                second = _read_exact(handle, BLOCK, None, whole)
                if second != b"\0" * BLOCK:
                    raise PackError(f"the end-of-archive marker at byte {position} is damaged")
                if handle.read(1):
                    raise PackError(f"there are bytes after the end of the archive (byte {position + 2 * BLOCK})")
                break
            if block[156:157] == tarfile.XHDTYPE:  # a pax record with a long name, then the member's own header
                _, pax_size = _parse_header(block, position, allow_pax=True)
                if pax_size > MAX_PAX_BYTES:
                    raise PackError(f"the pax header at byte {position} is too large")
                pax_data = _read_exact(handle, pax_size + _padding(pax_size), None, whole)
                long_name = _pax_path(pax_data[:pax_size], position)
                own = _read_exact(handle, BLOCK, long_name, whole)
                _, size = _parse_header(own, position, name=long_name)
                name = long_name
                block = block + pax_data + own
                position += len(block) - BLOCK
            else:
                name, size = _parse_header(block, position)
            if block != header(name, size):
                raise PackError("its tar header is not the one envlock writes (changed bytes)", member=name)
            if name in offsets:
                raise PackError("appears twice", member=name)
            if len(members) >= MAX_MEMBERS:
                raise PackError("too many members")
            if declared is not None:
                listed = declared.get(name)
                if listed is None:
                    raise PackError("is not listed in pack.json", member=name)
                if size > listed.size:
                    raise PackError(f"is {size} bytes, over the {listed.size} pack.json declares", member=name)
            elif name != PACK_JSON:
                raise PackError("the first member must be pack.json", member=name)
            offsets[name] = position + BLOCK
            digest = hashlib.sha256()
            remaining = size
            keep = name in (PACK_JSON, SUMS)
            kept = []
            if keep and size > MAX_META_BYTES:
                raise PackError("is too large", member=name)
            while remaining:
                chunk = _read_exact(handle, min(_CHUNK, remaining), name, whole)
                digest.update(chunk)
                if keep:
                    kept.append(chunk)
                remaining -= len(chunk)
                if progress is not None:
                    progress(name, len(chunk))
            pad = _padding(size)
            if _read_exact(handle, pad, name, whole) != b"\0" * pad:
                raise PackError("the padding after it is not zeros (changed bytes)", member=name)
            members.append((name, size, digest.hexdigest()))
            position += BLOCK + size + pad
            if name == PACK_JSON:
                meta, declared = _parse_pack_json(b"".join(kept))
            elif name == SUMS:
                sums_text = b"".join(kept)
    if declared is None:
        raise PackError("pack.json is missing")
    if sums_text is None or members[-1][0] != SUMS:
        raise PackError("SHA256SUMS is missing or not the last member", member=SUMS)
    _check_sums(sums_text, members, declared)
    declared[SUMS] = Member(SUMS, "meta", members[-1][1], members[-1][2])
    ordered = [declared[name] for name, _, _ in members if name in declared]
    if [m.name for m in ordered] != sorted((m.name for m in ordered), key=member_order):
        raise PackError("members are not in the order envlock writes them")
    return CheckedPack(path, meta, tuple(ordered), offsets, whole.hexdigest())


def _parse_pack_json(data: bytes) -> tuple[dict, dict[str, Member]]:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise PackError(f"is not JSON ({exc})", member=PACK_JSON) from None
    if not isinstance(document, dict) or document.get("format") != "envlock-pack":
        raise PackError("is not an envlock pack description", member=PACK_JSON)
    version = document.get("format-version")
    if version != FORMAT_VERSION:
        raise PackError(
            f"format version {version!r} is not {FORMAT_VERSION}",
            member=PACK_JSON,
            hint="use the envlock version named in pack.json",
        )
    declared: dict[str, Member] = {}
    items = document.get("members")
    if not isinstance(items, list):
        raise PackError("lists no members", member=PACK_JSON)
    for item in items:
        if not isinstance(item, dict):
            raise PackError("has a member entry that is not a table", member=PACK_JSON)
        name = check_member_name(item.get("name"))
        size, sha, kind = item.get("size"), item.get("sha256"), item.get("kind")
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(sha, str)
            or not _HEX.fullmatch(sha)
        ):
            raise PackError("its size or sha256 in pack.json is not valid", member=name)
        if kind != kind_of(name) or name in declared or name in (PACK_JSON, SUMS):
            raise PackError("is listed wrongly in pack.json", member=name)
        declared[name] = Member(name, kind, size, sha)
    declared[PACK_JSON] = Member(PACK_JSON, "meta", len(data), hashlib.sha256(data).hexdigest())
    declared[SUMS] = Member(SUMS, "meta", MAX_META_BYTES, "0" * 64)  # checked against the file itself below
    return {k: v for k, v in document.items() if k != "members"}, declared


def _check_sums(text: bytes, members: list[tuple[str, int, str]], declared: dict[str, Member]) -> None:
    try:
        lines = text.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise PackError("is not ASCII", member=SUMS) from None
    listed: dict[str, str] = {}
    for line in lines:
        digest, sep, name = line.partition("  ")
        if not sep or not _HEX.fullmatch(digest) or name in listed:
            raise PackError(f"has a line that is not '<sha256>  <name>': {line[:80]!r}", member=SUMS)
        listed[check_member_name(name)] = digest
    actual = {name: (size, digest) for name, size, digest in members if name != SUMS}
    if set(listed) != set(actual):
        extra = sorted(set(listed) ^ set(actual))
        raise PackError("does not list exactly the members of the pack", member=extra[0])
    for name, (size, digest) in actual.items():
        if listed[name] != digest:
            raise PackError("its sha256 is not the one SHA256SUMS records (changed bytes)", member=name)
        entry = declared[name]
        if name != PACK_JSON and (entry.sha256 != digest or entry.size != size):
            raise PackError("its size or sha256 is not the one pack.json records", member=name)
    missing = sorted(set(declared) - set(actual) - {SUMS})
    if missing:
        raise PackError("is listed in pack.json but not in the pack", member=missing[0])


def extract(checked: CheckedPack, names: Iterable[str], directory: str | os.PathLike) -> dict[str, str]:
    """Copy the named members of a checked pack into ``directory`` (a private directory the caller made).

    Each path is built from a checked name under ``directory``, created
    exclusively and without following links; returns name -> path.
    """
    root = os.path.realpath(directory)
    out: dict[str, str] = {}
    by_name = {m.name: m for m in checked.members}
    with open(checked.path, "rb") as handle:
        for name in names:
            member = by_name[check_member_name(name)]
            target = os.path.join(root, *name.split("/"))
            if os.path.commonpath([root, os.path.realpath(os.path.dirname(target))]) != root:
                raise PackError("would be written outside the temporary directory", member=name)
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            descriptor = os.open(target, flags, 0o600)
            digest = hashlib.sha256()
            with os.fdopen(descriptor, "wb") as out_file:
                handle.seek(checked.offsets[name])
                remaining = member.size
                while remaining:
                    chunk = handle.read(min(_CHUNK, remaining))
                    if not chunk:
                        raise PackError("the file changed while it was read", member=name)
                    digest.update(chunk)
                    out_file.write(chunk)
                    remaining -= len(chunk)
            if digest.hexdigest() != member.sha256:
                raise PackError("the file changed after it was checked", member=name)
            out[name] = target
    return out


def iter_member_names(checked: CheckedPack, kind: str) -> Iterator[str]:
    return (m.name for m in checked.members if m.kind == kind)
