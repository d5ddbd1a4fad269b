"""The fat-binary reader against real CUDA binaries.

* libraries compiled here by nvcc (the CUDA 13.0 toolkit under /usr/local/cuda)
  for chosen ``-gencode`` targets: the reader must report exactly those;
* the real ``libcublas.so.12`` from NVIDIA's ``nvidia-cublas-cu12`` wheel,
  cross-checked against the real ``cuobjdump --list-elf --list-ptx`` from the
  ``nvidia-cuda-cuobjdump`` wheel;
* truncated and corrupted fat binaries: a warning naming the damage, never an exception.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envlock.capture import fatbin
from envlock.capture.collect import CaptureContext
from envlock.capture.distributions import scan_distributions
from envlock.capture.interpreter import inspect_interpreter

REPO = Path(__file__).resolve().parents[2]
NVCC = Path(os.environ.get("ENVLOCK_NVCC", "/usr/local/cuda/bin/nvcc"))
TOOLS_CACHE = REPO / ".cache" / "envlock-tools"
CUOBJDUMP_WHEEL = "nvidia-cuda-cuobjdump==13.5.37"

KERNEL_SOURCE = r"""
__global__ void add_one(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += 1.0f;
}
extern "C" void launch_add_one(float *x, int n) { add_one<<<(n + 255) / 256, 256>>>(x, n); }
"""

# Each library: the -gencode targets, and what the reader must report.
LIBRARIES = {
    # SASS for Turing and Hopper, plus Hopper PTX for newer GPUs.
    "plain": (
        ["arch=compute_75,code=sm_75", "arch=compute_90,code=sm_90", "arch=compute_90,code=compute_90"],
        ("sm_75", "sm_90"),
        ("compute_90",),
    ),
    # Arch-specific (a) and family-specific (f) targets; LTO IR is not a loadable kernel.
    "specific": (
        [
            "arch=compute_90a,code=sm_90a",
            "arch=compute_100f,code=sm_100f",
            "arch=compute_100a,code=compute_100a",
            "arch=compute_120,code=compute_120",
            "arch=compute_86,code=lto_86",
        ],
        ("sm_90a", "sm_100f"),
        ("compute_100a", "compute_120"),
    ),
}


@pytest.fixture(scope="session")
def nvcc_libraries(tmp_path_factory) -> dict[str, Path]:
    """The LIBRARIES compiled by nvcc (in parallel; ~4 s each on this machine)."""
    if not NVCC.is_file():
        pytest.skip(f"no CUDA toolkit at {NVCC} (set ENVLOCK_NVCC)")
    work = tmp_path_factory.mktemp("nvcc")
    source = work / "kernel.cu"
    source.write_text(KERNEL_SOURCE)
    procs = {}
    for name, (targets, _, _) in LIBRARIES.items():
        argv = [str(NVCC), "-shared", "-Xcompiler", "-fPIC", "-o", str(work / f"lib{name}.so"), str(source)]
        for target in targets:
            argv += ["-gencode", target]
        procs[name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    built = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"nvcc failed for {name}:\n{out}"
        built[name] = work / f"lib{name}.so"
    return built


@pytest.fixture(scope="session")
def cuobjdump() -> Path:
    """The real cuobjdump from NVIDIA's wheel, downloaded once into .cache/envlock-tools/."""
    binary = TOOLS_CACHE / "cuobjdump" / "nvidia" / "cu13" / "bin" / "cuobjdump"
    if not binary.is_file():
        TOOLS_CACHE.mkdir(parents=True, exist_ok=True)
        download = TOOLS_CACHE / "wheels"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(download), CUOBJDUMP_WHEEL],
            capture_output=True,
            text=True,
            timeout=600,
        )
        wheels = sorted(download.glob("nvidia_cuda_cuobjdump-*.whl"))
        if result.returncode != 0 or not wheels:
            pytest.skip(f"cannot download {CUOBJDUMP_WHEEL}: {result.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[-1]) as archive:
            archive.extractall(TOOLS_CACHE / "cuobjdump")
        binary.chmod(0o755)
    return binary


def cuobjdump_archs(tool: Path, library: Path) -> tuple[set[str], set[str]]:
    """(SASS, PTX) as cuobjdump names them: ``ELF file 1: libx.1.sm_90a.cubin``, ``PTX file 1: libx.1.sm_90.ptx``."""
    out = subprocess.run(
        [str(tool), "--list-elf", "--list-ptx", str(library)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    sass, ptx = set(), set()
    for line in out.stdout.splitlines():
        match = re.match(r"(ELF|PTX) file\s+[0-9]+: .*\.sm_([0-9]+[a-z]?)\.(cubin|ptx)$", line.strip())
        if match:
            (sass if match.group(1) == "ELF" else ptx).add(match.group(2))
    assert sass or ptx, f"cuobjdump listed nothing:\n{out.stdout[:2000]}"
    return sass, ptx


def _strip_family(sass_names) -> set[str]:
    # cuobjdump names a family-specific cubin (sm_100f) by its base architecture (sm_100).
    return {n.removeprefix("sm_").removesuffix("f") for n in sass_names}


# --- nvcc-built libraries ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LIBRARIES))
def test_reports_exactly_the_gencode_targets(nvcc_libraries, name):
    _, sass, ptx = LIBRARIES[name]
    result = fatbin.read_library_kernels(nvcc_libraries[name])
    assert (result.sass, result.ptx, result.warnings) == (sass, ptx, ())


@pytest.mark.parametrize("name", sorted(LIBRARIES))
def test_nvcc_libraries_agree_with_cuobjdump(nvcc_libraries, cuobjdump, name):
    want_sass, want_ptx = cuobjdump_archs(cuobjdump, nvcc_libraries[name])
    result = fatbin.read_library_kernels(nvcc_libraries[name])
    assert _strip_family(result.sass) == want_sass
    assert {n.removeprefix("compute_") for n in result.ptx} == want_ptx


def test_fat_binary_moved_to_a_data_section_is_still_found(nvcc_libraries, tmp_path):
    """A fat binary renamed out of .nv_fatbin into a data section of another name is found there."""
    objcopy = shutil.which("objcopy")
    if objcopy is None:
        pytest.skip("objcopy (binutils) is not installed")
    moved = tmp_path / "libmoved.so"
    subprocess.run(
        [objcopy, "--rename-section", ".nv_fatbin=.rodata.kernels", str(nvcc_libraries["plain"]), str(moved)],
        check=True,
    )
    names = subprocess.run(["readelf", "-SW", str(moved)], capture_output=True, text=True).stdout
    assert ".nv_fatbin" not in names and ".rodata.kernels" in names
    result = fatbin.read_library_kernels(moved)
    assert (result.sass, result.ptx) == LIBRARIES["plain"][1:]


# --- real CUDA libraries from PyPI wheels ----------------------------------------------------


@pytest.fixture(scope="session")
def cuda_wheels():
    from tests.envs import TestEnvError, cuda_wheels_venv

    try:
        return cuda_wheels_venv()
    except TestEnvError as exc:
        pytest.skip(f"cannot build the CUDA wheels test env: {exc}")


def test_libcublas_matches_cuobjdump(cuda_wheels, cuobjdump):
    library = cuda_wheels.site_packages / "nvidia" / "cublas" / "lib" / "libcublas.so.12"
    want_sass, want_ptx = cuobjdump_archs(cuobjdump, library)
    result = fatbin.read_library_kernels(library)
    assert result.warnings == ()
    assert _strip_family(result.sass) == want_sass
    assert {n.removeprefix("compute_") for n in result.ptx} == want_ptx
    # What cuBLAS 12.9 is known to ship: Maxwell through Blackwell SASS, Blackwell PTX.
    assert {"sm_50", "sm_70", "sm_80", "sm_90", "sm_100", "sm_120"} <= set(result.sass)


def test_probe_package_kernels_on_the_cuda_wheels_env(cuda_wheels, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    interpreter = inspect_interpreter(str(cuda_wheels.python))
    ctx = CaptureContext(interpreter, scan_distributions(interpreter.site_dirs))
    kernels = fatbin.probe_package_kernels(ctx)
    direct = fatbin.read_library_kernels(cuda_wheels.site_packages / "nvidia" / "cublas" / "lib" / "libcublas.so.12")
    cublas = kernels["nvidia-cublas-cu12"]
    assert set(direct.sass) <= set(cublas.sass) and set(direct.ptx) <= set(cublas.ptx)
    assert ("nvidia/cublas/lib/libcublas.so.12", direct.sass, direct.ptx) in cublas.libraries
    assert "sm_90" in kernels["nvidia-cudnn-cu12"].sass
    assert ctx.warnings == []
    # The second capture is served from the cache written by the first.
    assert (tmp_path / "cache" / "envlock" / fatbin.CACHE_FILE).is_file()
    assert fatbin.probe_package_kernels(ctx) == kernels


# --- synthetic containers: the format as the tests understand it -------------------------------


def entry(kind: int, arch: int, payload: bytes = b"\0" * 8, flags: int = 0x11, header_size: int = 64) -> bytes:
    padded = payload + b"\0" * (-len(payload) % 8)
    head = struct.pack("<HHIQIIIIIIQ", kind, 0x0101, header_size, len(padded), 0, 0, 0, arch, 0, 0, flags)
    return head + b"\0" * (header_size - len(head)) + padded


def container(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def test_parse_synthetic_container():
    blob = container(
        entry(2, 75),
        entry(1, 90, b"ptx text"),
        entry(8, 86),
        entry(2, 90, flags=0x100011),
        entry(2, 100, flags=0x1200011, header_size=112),
    )
    result = fatbin.parse_fatbin_region(blob, 0, len(blob))
    assert result.sass == ("sm_75", "sm_90a", "sm_100f")
    assert result.ptx == ("compute_90",)
    assert result.warnings == ()


def test_parse_several_containers_with_zero_padding():
    blob = container(entry(2, 80)) + b"\0" * 24 + container(entry(2, 61), entry(1, 52))
    result = fatbin.parse_fatbin_region(blob, 0, len(blob))
    assert (result.sass, result.ptx, result.warnings) == (("sm_61", "sm_80"), ("compute_52",), ())


# --- damage ----------------------------------------------------------------------------------


def _section(path: Path) -> tuple[int, int]:
    out = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if ".nv_fatbin" in line:
            fields = line.split("]", 1)[1].split()
            return int(fields[3], 16), int(fields[4], 16)
    raise AssertionError("no .nv_fatbin")


def _damaged(source: Path, tmp_path: Path, edit) -> Path:
    data = bytearray(source.read_bytes())
    offset, size = _section(source)
    data = edit(data, offset, size)
    out = tmp_path / "libdamaged.so"
    out.write_bytes(bytes(data))
    return out


def test_file_cut_inside_the_fat_binary_warns(nvcc_libraries, tmp_path):
    # Cut the file in the middle of .nv_fatbin: the section header table (at the end) is lost too.
    path = _damaged(nvcc_libraries["plain"], tmp_path, lambda d, off, size: d[: off + size // 2])
    result = fatbin.read_library_kernels(path)
    assert result.sass == ()
    assert any("damaged ELF" in w and "section header table" in w for w in result.warnings)


def test_truncated_container_warns(nvcc_libraries, tmp_path):
    def edit(d, off, size):
        struct.pack_into("<Q", d, off + 8, size * 4)  # the first container claims more than the section holds
        return d

    result = fatbin.read_library_kernels(_damaged(nvcc_libraries["plain"], tmp_path, edit))
    assert any("truncated fat binary" in w and "libdamaged.so" in w for w in result.warnings)


def test_corrupted_magic_warns(nvcc_libraries, tmp_path):
    def edit(d, off, size):
        d[off : off + 4] = b"\xde\xad\xbe\xef"
        return d

    result = fatbin.read_library_kernels(_damaged(nvcc_libraries["plain"], tmp_path, edit))
    assert any("unrecognised bytes" in w or "no fat-binary header" in w for w in result.warnings)
    # The second container (the kernels of kernel.cu) is still read.
    assert "sm_90" in result.sass


def test_corrupted_entry_header_warns(nvcc_libraries, tmp_path):
    def edit(d, off, size):
        struct.pack_into("<I", d, off + 16 + 4, 3)  # first entry's header size: 3 bytes
        return d

    result = fatbin.read_library_kernels(_damaged(nvcc_libraries["plain"], tmp_path, edit))
    assert any("corrupted fat-binary entry" in w for w in result.warnings)


def test_section_past_end_of_file_warns(tmp_path):
    blob = container(entry(2, 75))
    # A minimal ELF64 with one .nv_fatbin section whose declared size exceeds the file.
    shstrtab = b"\0.nv_fatbin\0.shstrtab\0"
    body_off = 64
    strtab_off = body_off + len(blob)
    shoff = strtab_off + len(shstrtab)
    shoff += -shoff % 8
    header = bytearray(64)
    header[:16] = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    struct.pack_into("<HHIQQQIHHHHHH", header, 16, 3, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2)
    sections = bytes(64)
    sections += struct.pack("<IIQQQQIIQQ", 1, 1, 2, 0, body_off, len(blob) + 4096, 0, 0, 8, 0)
    sections += struct.pack("<IIQQQQIIQQ", 11, 3, 0, 0, strtab_off, len(shstrtab), 0, 0, 1, 0)
    data = bytes(header) + blob + shstrtab
    data += b"\0" * (shoff - len(data)) + sections
    path = tmp_path / "libhand.so"
    path.write_bytes(data)
    result = fatbin.read_library_kernels(path)
    assert result.sass == ("sm_75",)
    assert any("section .nv_fatbin is truncated" in w for w in result.warnings)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=20), st.integers(0, 400))
def test_random_damage_never_raises(edits, cut):
    blob = bytearray(container(entry(2, 75), entry(1, 90, b"x" * 40)) + container(entry(2, 86)))
    for position, value in edits:
        if position < len(blob):
            blob[position] = value
    blob = bytes(blob[: max(len(blob) - cut, 0)])
    result = fatbin.parse_fatbin_region(blob, 0, len(blob))
    assert all(re.fullmatch(r"sm_[0-9]+[af]?", n) for n in result.sass)
    assert all(re.fullmatch(r"compute_[0-9]+[af]?", n) for n in result.ptx)


def test_not_elf_and_missing_files(tmp_path):
    text = tmp_path / "libnot.so"
    text.write_text("INPUT(-lfoo)\n")  # a linker script named like a library
    assert fatbin.read_library_kernels(text) == fatbin.LibraryKernels()
    missing = fatbin.read_library_kernels(tmp_path / "gone.so")
    assert missing.sass == () and "cannot open" in missing.warnings[0]


# --- cache and the per-distribution probe ----------------------------------------------------


def test_cache_serves_unchanged_files_and_rereads_changed_ones(nvcc_libraries, tmp_path):
    library = tmp_path / "libk.so"
    shutil.copy(nvcc_libraries["plain"], library)
    cache_path = tmp_path / "cache.json"
    first = fatbin.scan_libraries([library], fatbin.KernelCache(cache_path))
    fatbin.KernelCache(cache_path)  # loading twice is harmless
    cache = fatbin.KernelCache(cache_path)
    assert cache.entries == {}  # nothing was saved by scan_libraries alone
    cache.put(str(library), fatbin.file_identity(library.stat()), first[str(library)])
    cache.save()

    # Same size, same inode, same mtime: a cache hit, even though the bytes changed.
    stat = library.stat()
    data = bytearray(library.read_bytes())
    offset, _ = _section(library)
    data[offset : offset + 4] = b"\0\0\0\0"
    with open(library, "r+b") as handle:
        handle.write(bytes(data))
    os.utime(library, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert library.stat().st_ino == stat.st_ino
    cached = fatbin.scan_libraries([library], fatbin.KernelCache(cache_path))
    assert cached[str(library)].sass == ("sm_75", "sm_90")
    # A new mtime: read again, and the damage shows.
    os.utime(library, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    reread = fatbin.scan_libraries([library], fatbin.KernelCache(cache_path))
    assert reread[str(library)].warnings


def _fake_site(tmp_path: Path, library: Path, name: str = "demo_ext") -> Path:
    site = tmp_path / "site-packages"
    (site / name).mkdir(parents=True)
    shutil.copy(library, site / name / "_kernels.cpython-311-x86_64-linux-gnu.so")
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n\n")
    (info / "RECORD").write_text(
        f"{name}/_kernels.cpython-311-x86_64-linux-gnu.so,sha256=x,1\n{name}/__init__.py,,\n{info.name}/RECORD,,\n"
    )
    return site


def test_probe_package_kernels_names_the_distribution(nvcc_libraries, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    site = _fake_site(tmp_path, nvcc_libraries["plain"])
    ctx = CaptureContext(inspect_interpreter(None), scan_distributions([str(site)]))
    assert fatbin.probe_package_kernels(ctx) == {
        "demo-ext": fatbin.PackageKernels(
            ("sm_75", "sm_90"),
            ("compute_90",),
            (("demo_ext/_kernels.cpython-311-x86_64-linux-gnu.so", ("sm_75", "sm_90"), ("compute_90",)),),
        )
    }
    assert ctx.warnings == []


def test_probe_package_kernels_warns_on_damage(nvcc_libraries, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def edit(d, off, size):
        struct.pack_into("<Q", d, off + 8, size * 4)
        return d

    damaged = _damaged(nvcc_libraries["plain"], tmp_path, edit)
    site = _fake_site(tmp_path, damaged)
    ctx = CaptureContext(inspect_interpreter(None), scan_distributions([str(site)]))
    fatbin.probe_package_kernels(ctx)
    assert any(w.startswith("kernels: ") and "truncated fat binary" in w for w in ctx.warnings)


def test_kernel_cache_lives_in_envlocks_cache_directory(tmp_path, monkeypatch):
    from envlock.capture.fatbin import CACHE_FILE, KernelCache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ENVLOCK_CACHE_DIR", raising=False)
    assert KernelCache().path == str(tmp_path / "xdg" / "envlock" / CACHE_FILE)
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "moved"))
    assert KernelCache().path == str(tmp_path / "moved" / CACHE_FILE)
