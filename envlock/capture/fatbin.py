"""Which GPU architectures the installed CUDA libraries carry kernels for.

Every CUDA-using shared library (a framework's ``libtorch_cuda.so``, an
``nvidia-*`` wheel's ``libcublas.so.12``, a custom extension) embeds a *fat
binary*: SASS (cubins, ``sm_XY``) for some GPU architectures and PTX
(``compute_XY``) that the driver can JIT-compile for newer ones.  This module
lists them without a GPU and without importing any framework:

1. the ELF section headers say where fat binaries can be: nvcc and clang put
   them in ``.nv_fatbin``, but a library linked with ``-mcmodel=large`` or
   with its own registration code keeps them in ``.ldata``, ``.lrodata``,
   ``.rodata`` or ``.data`` (libcufft.so.12 of CUDA 13: one small fat binary
   in ``.nv_fatbin``, 23,984 in ``.ldata``; libcupti: three in ``.rodata``).
   So ``.nv_fatbin`` is read as fat binaries, and every other allocated,
   non-executable data section is searched for the fat-binary magic (at
   8-byte aligned offsets, where the compilers place it); code, unwind
   tables, symbol and relocation tables are never read.  Only the section
   headers are read to decide this, never the whole file;
2. each fat binary is a container (16-byte header, magic ``0xBA55ED50``) of
   entries; each entry header names its kind (1 PTX, 2 ELF/SASS, 8 LTO IR),
   its architecture and flags, and the size of its payload, so the walk jumps
   from header to header through a memory map and touches a few pages per
   entry, whatever the payload size.  Compressed payloads (LZ4 ``0x2000``,
   Zstandard ``0x8000``) keep an uncompressed header, so their architecture
   is read the same way.

The layout was worked out from fat binaries built here with nvcc 13.0 for
chosen ``-gencode`` targets and checked entry for entry against
``cuobjdump --list-elf --list-ptx`` on the cuBLAS 12.9 wheel (the tests do both):

    container: u32 magic, u16 version (1), u16 header size (16), u64 size of the entries
    entry:     u16 kind, u16 version, u32 header size, u64 payload size (padded),
               u32 compressed size, u32 -, u32 code/PTX ISA version, u32 arch (75, 90, 100),
               u32 name offset, u32 name size, u64 flags, ... (64 bytes or more)
    flags:     0x1 64-bit, 0x2 debug, 0x10 Linux, 0x2000 LZ4, 0x8000 zstd,
               0x100000 arch-specific target (sm_90a), 0x200000 family-specific (sm_100f)

Damaged files never raise: a truncated or corrupted fat binary becomes a
warning naming the file and offset, and the entries read before it count.

Results are cached by file identity (path, size, mtime_ns, inode) in
``kernels-v4.tsv`` in envlock's cache directory (:mod:`envlock.capture.cache`),
so a capture of an unchanged environment opens no library at all.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import struct

from envlock.capture.cache import cache_dir, enabled
from envlock.lockfile.fields import compiled_on_first_use
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Iterable

FATBIN_MAGIC = 0xBA55ED50
_MAGIC_BYTES = struct.pack("<I", FATBIN_MAGIC)
_CONTAINER = struct.Struct("<IHHQ")
# What a searched data section is scanned for: the magic, version 1 and the
# 16-byte header every nvcc and clang writes.  Eight bytes let the search skip
# twice as far as the magic alone (150 against 370 ms over cuBLASLt's 95 MB .ldata).
_SEARCH_BYTES = struct.pack("<IHH", FATBIN_MAGIC, 1, _CONTAINER.size)
# kind, version, header size, payload size, (12 bytes), arch, (8 bytes), flags:
# one unpack per entry header, the walk's whole cost per entry.
_ENTRY = struct.Struct("<HHIQ12xI8xQ")

KIND_PTX = 1
KIND_SASS = 2
KIND_LTO_IR = 8  # NVVM IR for link-time optimisation: not loadable by the driver

FLAG_ARCH_SPECIFIC = 0x100000
FLAG_FAMILY_SPECIFIC = 0x200000

# An entry header holds at least kind .. flags (48 bytes); nvcc writes 64-120.
_MIN_ENTRY_HEADER = _ENTRY.size
_MAX_ENTRY_HEADER = 1 << 16
_ARCH_FLAGS = FLAG_ARCH_SPECIFIC | FLAG_FAMILY_SPECIFIC
# Containers start 8-byte aligned (their size field is a u64); a magic found at
# another offset of a searched data section is some other data.
_CONTAINER_ALIGN = 8
# Real architectures run from 10 (sm_10, 2007) to 121 today; anything outside
# a generous range means the bytes are not an entry header.
_MIN_ARCH, _MAX_ARCH = 10, 999

SECTION_NAME = b".nv_fatbin"
SEGMENT_NAME = b".nvFatBinSegment"

_SHF_ALLOC = 0x2
_SHF_EXECINSTR = 0x4
_SHT_PROGBITS = 1
_SHT_NOBITS = 8
# Allocated PROGBITS sections that hold no fat binary whatever the linker did:
# unwind tables, exception tables, the GOT, the fat-binary wrappers themselves.
_NOT_FATBIN_DATA = (
    b".eh_frame",
    b".eh_frame_hdr",
    b".gcc_except_table",
    b".got",
    b".got.plt",
    b".interp",
    SEGMENT_NAME,
)
# Upper bounds against hostile headers: 64 Ki sections, a 16 MiB name table.
_MAX_SECTIONS = 1 << 16
_MAX_SHSTRTAB = 16 << 20

_RANDOM_ACCESS = getattr(mmap, "MADV_RANDOM", None)
_SEQUENTIAL = getattr(mmap, "MADV_SEQUENTIAL", None)

# Compiled on first use: only a RECORD missing from the cache is filtered with it.
shared_library = compiled_on_first_use(r"\.so(?:\.[0-9]+)*$")


@record
class LibraryKernels:
    """The kernel architectures found in one library (both lists sorted by architecture)."""

    sass: tuple[str, ...] = ()
    ptx: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    has_fatbin: bool = False


def arch_sort_key(name: str) -> tuple[int, str]:
    """``sm_90`` < ``sm_90a`` < ``sm_100`` (numeric, then the suffix)."""
    match = re.fullmatch(r"(?:sm|compute)_([0-9]+)([a-z]?)", name)
    if not match:
        return (1 << 30, name)
    return (int(match.group(1)), match.group(2))


def _sorted_archs(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(names), key=arch_sort_key))


def entry_arch_name(kind: int, arch: int, flags: int) -> str | None:
    """``(2, 90, 0x100011)`` -> ``"sm_90a"``; PTX -> ``compute_XY``; other kinds -> ``None``."""
    if kind == KIND_SASS:
        prefix = "sm"
    elif kind == KIND_PTX:
        prefix = "compute"
    else:
        return None
    suffix = "a" if flags & FLAG_ARCH_SPECIFIC else "f" if flags & FLAG_FAMILY_SPECIFIC else ""
    return f"{prefix}_{arch}{suffix}"


# --- the fat-binary container (pure over a buffer) --------------------------------------


def parse_fatbin_region(buf, start: int, end: int, label: str = "fatbin", *, strict: bool = True) -> LibraryKernels:
    """Every SASS/PTX architecture in the fat binaries stored in ``buf[start:end]``.

    ``buf`` is anything with the buffer protocol and ``find`` (``bytes``,
    ``mmap``).  Containers may follow each other directly or after zero
    padding; anything else between them is skipped up to the next magic,
    with a warning.  With ``strict=False`` (a data section searched for the
    magic, where other data surrounds the fat binaries) only containers at
    8-byte aligned offsets with the usual 16-byte header count, and only damage
    inside such a container is reported.  Pure: no I/O beyond reading ``buf``.
    """
    seen: set[tuple[int, int, int]] = set()
    warnings: list[str] = []
    end = min(end, len(buf))
    pos = start
    found_container = False
    unpack_container = _CONTAINER.unpack_from
    while pos + _CONTAINER.size <= end:
        magic, version, header_size, fat_size = unpack_container(buf, pos)
        if magic != FATBIN_MAGIC or (not strict and pos % _CONTAINER_ALIGN):
            if not strict:
                nxt = buf.find(_SEARCH_BYTES, pos + (magic == FATBIN_MAGIC), end)
                if nxt < 0:
                    break
                pos = nxt
                continue
            nxt = buf.find(_MAGIC_BYTES, pos, end)
            if nxt < 0:
                if _has_data(buf, pos, end) and not found_container:
                    warnings.append(f"{label}: no fat-binary header (magic 0x{FATBIN_MAGIC:08X}) at offset {pos}")
                elif _has_data(buf, pos, end):
                    warnings.append(
                        f"{label}: {end - pos} unrecognised bytes after the last fat binary at offset {pos}"
                    )
                break
            if _has_data(buf, pos, nxt):
                warnings.append(f"{label}: skipped {nxt - pos} unrecognised bytes at offset {pos}")
            pos = nxt
            continue
        if version != 1 or header_size < _CONTAINER.size or header_size > 4096:
            if not strict:
                pos += 4
                continue
            found_container = True
            warnings.append(
                f"{label}: corrupted fat-binary header at offset {pos} (version {version}, header size {header_size})"
            )
            pos += 4
            continue
        found_container = True
        container_end = pos + header_size + fat_size
        if container_end > end:
            warnings.append(
                f"{label}: truncated fat binary at offset {pos}: it declares {header_size + fat_size} bytes, "
                f"{end - pos} are present"
            )
            container_end = end
        _walk_entries(buf, pos + header_size, container_end, label, seen, warnings)
        pos = container_end
    if strict and not found_container and not warnings and end > start:
        warnings.append(f"{label}: no fat-binary header (magic 0x{FATBIN_MAGIC:08X}) at offset {start}")
    sass, ptx = _names(seen)
    return LibraryKernels(sass, ptx, tuple(warnings), found_container)


def _names(seen: set[tuple[int, int, int]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(SASS names, PTX names), sorted, from the distinct (kind, arch, flags) of the entries walked."""
    sass: list[str] = []
    ptx: list[str] = []
    for kind, arch, flags in seen:
        name = entry_arch_name(kind, arch, flags)
        if name is not None:
            (sass if kind == KIND_SASS else ptx).append(name)
    return _sorted_archs(sass), _sorted_archs(ptx)


def _has_data(buf, start: int, end: int) -> bool:
    """Whether ``buf[start:end]`` holds anything but zero padding (counted in C, not byte by byte)."""
    chunk = buf[start:end]
    return chunk.count(0) != len(chunk)


def _walk_entries(buf, pos: int, end: int, label: str, seen: set[tuple[int, int, int]], warnings: list[str]) -> None:
    """Add each entry's (kind, arch, arch-specific flags) to ``seen``, jumping from header to header.

    The loop is the reader's hot path (libcufft.so.12 has ~290,000 entries):
    one ``unpack_from`` per entry, and names are made once per distinct triple.
    """
    unpack = _ENTRY.unpack_from
    add = seen.add
    while pos < end:
        if pos + _MIN_ENTRY_HEADER > end:
            if _has_data(buf, pos, end):
                warnings.append(f"{label}: truncated fat-binary entry header at offset {pos}")
            return
        kind, _version, header_size, payload_size, arch, flags = unpack(buf, pos)
        if header_size < _MIN_ENTRY_HEADER or header_size > _MAX_ENTRY_HEADER or pos + header_size > end:
            warnings.append(f"{label}: corrupted fat-binary entry at offset {pos} (header size {header_size})")
            return
        loadable = kind == KIND_SASS or kind == KIND_PTX
        if loadable and not _MIN_ARCH <= arch <= _MAX_ARCH:
            warnings.append(f"{label}: corrupted fat-binary entry at offset {pos} (architecture {arch})")
            return
        next_pos = pos + header_size + payload_size
        if next_pos > end:
            name = entry_arch_name(kind, arch, flags)
            warnings.append(
                f"{label}: truncated fat-binary entry at offset {pos}: its payload needs {payload_size} bytes, "
                f"{end - pos - header_size} are present" + (f"; {name} not counted" if name else "")
            )
            return
        if loadable:
            add((kind, arch, flags & _ARCH_FLAGS))
        pos = next_pos


# --- ELF --------------------------------------------------------------------------------


@record
class Section:
    name: bytes
    type: int
    flags: int
    offset: int
    size: int


class NotElf(Exception):
    """The file is not an ELF object."""


class DamagedElf(NotElf):
    """An ELF file whose headers cannot be used (truncated, out of range)."""


def read_sections(fd: int, file_size: int) -> list[Section]:
    """The section table of the ELF file open as ``fd``, read with a few ``pread`` calls."""
    ident = os.pread(fd, 64, 0)
    if len(ident) < 52 or ident[:4] != b"\x7fELF":
        raise NotElf("not an ELF file")
    elf_class, data = ident[4], ident[5]
    if data not in (1, 2) or elf_class not in (1, 2):
        raise DamagedElf("unknown ELF class or byte order")
    e = "<" if data == 1 else ">"
    if elf_class == 2:
        shoff = struct.unpack_from(e + "Q", ident, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", ident, 0x3A)
        sh = struct.Struct(e + "IIQQQQIIQQ")
    else:
        shoff = struct.unpack_from(e + "I", ident, 0x20)[0]
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", ident, 0x2E)
        sh = struct.Struct(e + "IIIIIIIIII")
    if shoff == 0 or shentsize < sh.size:
        raise NotElf("no section header table")

    def header(index: int) -> tuple:
        raw = os.pread(fd, sh.size, shoff + index * shentsize)
        if len(raw) < sh.size:
            raise DamagedElf("section header table runs past the end of the file")
        return sh.unpack(raw)

    if shnum == 0 or shstrndx == 0xFFFF:  # extended numbering lives in section 0
        first = header(0)
        shnum = shnum or first[5]
        if shstrndx == 0xFFFF:
            shstrndx = first[6]
    if shnum > _MAX_SECTIONS or shoff + shnum * shentsize > file_size:
        raise DamagedElf("section header table runs past the end of the file")
    table = os.pread(fd, shnum * shentsize, shoff)
    raw_headers = [sh.unpack_from(table, i * shentsize) for i in range(shnum)]
    if shstrndx >= shnum:
        raise DamagedElf("section name table index out of range")
    strtab_header = raw_headers[shstrndx]
    strtab_size = min(strtab_header[5], _MAX_SHSTRTAB)
    names = os.pread(fd, strtab_size, strtab_header[4])
    sections = []
    for h in raw_headers:
        name_off = h[0]
        end = names.find(b"\0", name_off)
        name = names[name_off : end if end >= 0 else len(names)] if name_off < len(names) else b""
        sections.append(Section(name, h[1], h[2], h[4], h[5]))
    return sections


def read_library_kernels(path: str | os.PathLike) -> LibraryKernels:
    """The kernel architectures embedded in one shared library; empty when it has none.

    Never raises for a bad file: unreadable files and damaged fat binaries come
    back as warnings.
    """
    label = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        return LibraryKernels(warnings=(f"{label}: cannot open ({exc.strerror})",))
    try:
        size = os.fstat(fd).st_size
        try:
            sections = read_sections(fd, size)
        except DamagedElf as exc:
            return LibraryKernels(warnings=(f"{label}: damaged ELF file ({exc}); kernels not read",))
        except NotElf:
            return LibraryKernels()
        except (OSError, struct.error) as exc:
            return LibraryKernels(warnings=(f"{label}: unreadable ELF headers ({exc})",))
        fatbin_sections = [s for s in sections if s.name == SECTION_NAME and s.type != _SHT_NOBITS]
        data_sections = [s for s in sections if _may_hold_fatbins(s)]
        return _scan_sections(fd, size, fatbin_sections, data_sections, label)
    finally:
        os.close(fd)


def _advise(mm: mmap.mmap, advice: int, section: Section, size: int) -> None:
    """``madvise`` over the pages of one section; a refusal costs speed only."""
    first_page = section.offset - section.offset % mmap.PAGESIZE
    length = min(section.offset + section.size, size) - first_page
    if length > 0:
        try:
            mm.madvise(advice, first_page, length)
        except (OSError, ValueError):
            pass


def _may_hold_fatbins(section: Section) -> bool:
    """An allocated, non-executable data section other than ``.nv_fatbin`` that a fat binary can sit in."""
    return (
        section.type == _SHT_PROGBITS
        and bool(section.flags & _SHF_ALLOC)
        and not section.flags & _SHF_EXECINSTR
        and section.size >= _CONTAINER.size
        and section.name != SECTION_NAME
        and section.name not in _NOT_FATBIN_DATA
    )


def _scan_sections(
    fd: int, size: int, fatbin_sections: list[Section], data_sections: list[Section], label: str
) -> LibraryKernels:
    """Read ``.nv_fatbin`` as fat binaries and search the data sections for more."""
    if not fatbin_sections and not data_sections:
        return LibraryKernels()
    warnings: list[str] = []
    sass: set[str] = set()
    ptx: set[str] = set()
    found = False
    try:
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        return LibraryKernels(warnings=(f"{label}: cannot map ({exc})",))
    if _RANDOM_ACCESS is not None:
        # In .nv_fatbin only entry headers are read, kilobytes to megabytes
        # apart: without this hint every page fault pulls in the kernel's
        # readahead window of payload bytes that are never looked at.  The
        # searched data sections keep the default readahead: the search reads
        # them front to back (22 MB of libnvperf_host's .rodata took 1.2 s cold
        # page by page), and fat binaries packed there lie a few KB apart.
        for section in fatbin_sections:
            _advise(mm, _RANDOM_ACCESS, section, size)
    if _SEQUENTIAL is not None:
        # The searched sections are read front to back: a larger readahead window.
        for section in data_sections:
            _advise(mm, _SEQUENTIAL, section, size)
    try:
        for section, search in [(s, False) for s in fatbin_sections] + [(s, True) for s in data_sections]:
            start, end = section.offset, section.offset + section.size
            if end > size:
                warnings.append(
                    f"{label}: section {section.name.decode('ascii', 'replace')} is truncated "
                    f"({section.size} bytes declared, {max(size - start, 0)} present)"
                )
                end = size
            if start >= end:
                continue
            if search:
                first = mm.find(_SEARCH_BYTES, start, end)
                if first < 0:
                    continue
                start = first
            where = f"{label} [{section.name.decode('ascii', 'replace')}]"
            result = parse_fatbin_region(mm, start, end, where, strict=not search)
            found = found or result.has_fatbin
            sass.update(result.sass)
            ptx.update(result.ptx)
            warnings.extend(result.warnings)
    finally:
        mm.close()
    return LibraryKernels(_sorted_archs(sass), _sorted_archs(ptx), tuple(warnings), found)


# --- the cache --------------------------------------------------------------------------

# One line per entry, ``<kind><path as a JSON string><TAB><JSON value>``:
# F for a library's result; S for a site directory, whose value maps each
# RECORD in it to the shared libraries it lists (one line per environment:
# most distributions list none, and a line each made the file grow with every
# distribution ever captured, 8,000 lines after the synthetic benchmarks).
# Values are decoded only when asked for: the cache holds every environment
# captured on this machine, and decoding all of it (1,900 entries, 350 KB
# here) took 4 ms of a capture that asks for a few hundred.
# Version 4: results of the reader that read .nv_fatbin alone (v3) missed fat
# binaries in other data sections, so they must not be served again.
CACHE_FILE = "kernels-v4.tsv"
CACHE_HEADER = "envlock kernel cache 4"
# Entries kept across environments; beyond this the ones not seen this run go first.
_MAX_CACHE_ENTRIES = 50_000


def file_identity(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class KernelCache:
    """Results per library path, and the libraries each RECORD lists, valid while (size, mtime_ns, inode) are unchanged."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = os.fspath(path) if path else os.path.join(cache_dir(), CACHE_FILE)
        self.entries: dict[str, str] = {}  # kind + JSON path -> JSON value, as stored
        self.seen: set[str] = set()
        self._sites: dict[str, dict] = {}  # S keys decoded so far
        self._changed_sites: set[str] = set()
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, ValueError):
            return
        lines = text.split("\n")
        if lines[0] != CACHE_HEADER:
            return
        entries = self.entries
        for line in lines[1:]:
            key, tab, value = line.partition("\t")
            if tab:
                entries[key] = value

    def _lookup(self, key: str, identity: list[int]) -> list | None:
        self.seen.add(key)
        raw = self.entries.get(key)
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(entry, list) or not entry or entry[0] != identity:
            return None
        return entry

    def _store(self, key: str, entry: list) -> None:
        self.seen.add(key)
        self.entries[key] = json.dumps(entry, separators=(",", ":"))
        self.dirty = True

    def get(self, path: str, identity: list[int]) -> LibraryKernels | None:
        entry = self._lookup("F" + json.dumps(path), identity)
        if entry is None or len(entry) != 5:
            return None
        try:
            sass, ptx, warnings, has_fatbin = (
                tuple(map(str, entry[1])),
                tuple(map(str, entry[2])),
                tuple(map(str, entry[3])),
                bool(entry[4]),
            )
        except TypeError:
            return None
        return LibraryKernels(sass, ptx, warnings, has_fatbin)

    def put(self, path: str, identity: list[int], result: LibraryKernels) -> None:
        self._store(
            "F" + json.dumps(path),
            [identity, list(result.sass), list(result.ptx), list(result.warnings), result.has_fatbin],
        )

    def _site(self, record_path: str) -> dict:
        """The RECORD entries of the site directory holding ``record_path`` (decoded on first use)."""
        key = "S" + json.dumps(os.path.dirname(os.path.dirname(record_path)))
        self.seen.add(key)
        site = self._sites.get(key)
        if site is None:
            try:
                site = json.loads(self.entries.get(key, "{}"))
            except ValueError:
                site = None
            if not isinstance(site, dict):
                site = {}
            self._sites[key] = site
        return site

    def get_libraries(self, record_path: str, identity: list[int]) -> list[str] | None:
        """The shared libraries that the RECORD at ``record_path`` lists, as ``library_files`` found them."""
        entry = self._site(record_path).get(record_path)
        if not isinstance(entry, list) or len(entry) != 2 or entry[0] != identity or not isinstance(entry[1], list):
            return None
        if not all(isinstance(path, str) for path in entry[1]):
            return None
        return entry[1]

    def put_libraries(self, record_path: str, identity: list[int], libraries: list[str]) -> None:
        self._site(record_path)[record_path] = [identity, libraries]
        self._changed_sites.add("S" + json.dumps(os.path.dirname(os.path.dirname(record_path))))
        self.dirty = True

    def save(self) -> None:
        """Write atomically; a cache that cannot be written costs speed, never the capture."""
        if not self.dirty:
            return
        for key in self._changed_sites:
            self.entries[key] = json.dumps(self._sites[key], separators=(",", ":"), sort_keys=True)
        keys = list(self.entries)
        if len(keys) > _MAX_CACHE_ENTRIES:
            keys = ([k for k in keys if k in self.seen] + [k for k in keys if k not in self.seen])[:_MAX_CACHE_ENTRIES]
        text = "\n".join([CACHE_HEADER] + [f"{key}\t{self.entries[key]}" for key in sorted(keys)]) + "\n"
        try:
            from envlock.lockfile.write import atomic_write_text

            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            atomic_write_text(self.path, text)
            self.dirty = False
        except OSError:
            pass


# --- the environment ------------------------------------------------------------------


def library_files(record_files: Iterable[str]) -> list[str]:
    """The shared libraries among a distribution's RECORD entries (``*.so``, ``*.so.12``)."""
    search = shared_library().search
    return [p for p in record_files if search(os.path.basename(p))]


def scan_libraries(paths: Iterable[str | os.PathLike], cache: KernelCache | None = None) -> dict[str, LibraryKernels]:
    """Kernel architectures per library path; each file (by inode) is read at most once."""
    results: dict[str, LibraryKernels] = {}
    done: dict[tuple[int, int], LibraryKernels] = {}
    for path in paths:
        text = os.fspath(path)
        try:
            st = os.stat(text)
        except OSError:
            continue  # listed in RECORD but gone: the Python probe reports missing files
        if not _is_regular(st.st_mode):
            continue
        key = (st.st_dev, st.st_ino)
        if key in done:
            results[text] = done[key]
            continue
        identity = file_identity(st)
        result = cache.get(text, identity) if cache is not None else None
        if result is None:
            result = read_library_kernels(text)
            if cache is not None:
                cache.put(text, identity, result)
        done[key] = result
        results[text] = result
    return results


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


@record
class PackageKernels:
    """A distribution's kernel architectures: the union over its libraries, and each library's own."""

    sass: tuple[str, ...]
    ptx: tuple[str, ...]
    # (path relative to the site directory, SASS, PTX) per library that carries kernels, sorted by path.
    libraries: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]


def probe_package_kernels(ctx) -> dict[str, PackageKernels]:
    """``{normalized dist name: PackageKernels}`` for every distribution whose libraries embed kernels.

    Called by :mod:`envlock.capture.collect` after the Python probe; damaged
    fat binaries are reported through ``ctx.warn``.
    """
    cache = KernelCache() if enabled() else None
    kernels: dict[str, PackageKernels] = {}
    for dist in ctx.dists:
        libraries = _dist_libraries(dist, cache)
        if not libraries:
            continue
        sass: set[str] = set()
        ptx: set[str] = set()
        detail = []
        for path, result in scan_libraries(libraries, cache).items():
            sass.update(result.sass)
            ptx.update(result.ptx)
            for warning in result.warnings:
                ctx.warn(f"kernels: {warning}")
            rel = _site_relative(path, dist.site_dir)
            if (result.sass or result.ptx) and rel is not None:
                detail.append((rel, result.sass, result.ptx))
        if sass or ptx:
            kernels[dist.normalized_name] = PackageKernels(
                _sorted_archs(sass), _sorted_archs(ptx), tuple(sorted(detail))
            )
    if cache is not None:
        cache.save()
    return kernels


def _site_relative(path: str, site: str) -> str | None:
    """``path`` relative to the site directory, with ``/``; ``None`` for a file outside it (RECORD's ``../``)."""
    rel = os.path.relpath(path, site).replace(os.sep, "/")
    return None if rel == ".." or rel.startswith("../") else rel


def _dist_libraries(dist, cache: KernelCache | None) -> list[str]:
    """The shared libraries a distribution's RECORD lists, from the cache while RECORD is unchanged.

    Reading the RECORDs is most of an uncached look (measured: 12 ms for the
    48-distribution reference env, torch's RECORD alone 1.5 MB).
    """
    identity = None
    if cache is not None:
        record_path = os.path.join(dist.path, "RECORD")
        try:
            identity = file_identity(os.stat(record_path))
        except OSError:
            pass
        if identity is not None:
            cached = cache.get_libraries(record_path, identity)
            if cached is not None:
                return cached
    # Shared with the other probes that look for libraries (cached per dist).
    libraries = library_files(dist.record_shared_libraries())
    if identity is not None and cache is not None:
        cache.put_libraries(record_path, identity, libraries)
    return libraries
