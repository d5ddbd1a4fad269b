"""Fat binaries outside ``.nv_fatbin`` (issue 16): every one is found, wherever the linker put it.

* a library built here with nvcc whose fat binaries sit in ``.nv_fatbin``, in
  ``.ldata`` (a medium/large code-model data array) and in a section of its own;
* the real libraries of NVIDIA's wheels that do this: cuFFT 12.0 (CUDA 13:
  ``.ldata``), cuFFT 11.0 (CUDA 12: ``.data``), cuSPARSE 12.6 (``.rodata``),
  CUPTI 13.0 (``.rodata``, no ``.nv_fatbin`` at all).

Expected lists come from ``independent_scan`` below, written for these tests
and sharing nothing with envlock's reader: it reads the whole file, takes every
fat-binary magic at any offset, and walks each container's entries with its
own offsets.  (cuobjdump is no oracle here: it reads ``.nv_fatbin`` only and
lists one sm_75 cubin for libcufft.so.12.)
"""

from __future__ import annotations

import mmap
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from envlock.capture import fatbin
from envlock.capture.collect import CaptureContext
from envlock.capture.distributions import scan_distributions
from envlock.capture.interpreter import inspect_interpreter

NVCC = Path(os.environ.get("ENVLOCK_NVCC", "/usr/local/cuda/bin/nvcc"))

# --- the independent scanner ------------------------------------------------------------

MAGIC = b"\x50\xed\x55\xba"  # 0xBA55ED50, little-endian


def independent_scan(path: Path, start: int = 0, end: int | None = None) -> tuple[set[str], set[str]]:
    """(SASS, PTX) names of every fat binary whose header lies in ``path[start:end]``, found by brute force."""
    sass: set[str] = set()
    ptx: set[str] = set()
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        stop = len(data) if end is None else end
        at = data.find(MAGIC, start, stop)
        while at >= 0:
            version, header, body = struct.unpack_from("<HHQ", data, at + 4)
            if version != 1 or header != 16:
                at = data.find(MAGIC, at + 1, stop)
                continue
            entry, container_end = at + header, at + header + body
            while entry < container_end:
                kind = int.from_bytes(data[entry : entry + 2], "little")
                entry_header = int.from_bytes(data[entry + 4 : entry + 8], "little")
                payload = int.from_bytes(data[entry + 8 : entry + 16], "little")
                arch = int.from_bytes(data[entry + 28 : entry + 32], "little")
                flags = int.from_bytes(data[entry + 40 : entry + 48], "little")
                suffix = "a" if flags & 0x100000 else "f" if flags & 0x200000 else ""
                if kind == 2:
                    sass.add(f"sm_{arch}{suffix}")
                elif kind == 1:
                    ptx.add(f"compute_{arch}{suffix}")
                entry += entry_header + payload
            at = data.find(MAGIC, container_end, stop)
    return sass, ptx


def section_range(path: Path, name: str) -> tuple[int, int]:
    """(file offset, end) of a section, as binutils' readelf reports it."""
    out = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] == name:
            offset, size = int(fields[4], 16), int(fields[5], 16)
            return offset, offset + size
    raise AssertionError(f"{path.name} has no section {name}:\n{out}")


def _needs_readelf() -> None:
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) is not installed")


# --- a library built here: .nv_fatbin, .ldata and a section of its own ------------------

KERNEL = r"""
__global__ void add_one(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += 1.0f;
}
extern "C" void launch_add_one(float *x, int n) { add_one<<<(n + 255) / 256, 256>>>(x, n); }
"""


def _c_array(declaration: str, blob: bytes) -> str:
    return f"{declaration}[] = {{{','.join(map(str, blob))}}};\n"


@pytest.fixture(scope="session")
def placed_library(tmp_path_factory) -> Path:
    """libplaced.so: sm_75 registered by nvcc (.nv_fatbin), sm_90 + compute_90 as a code-model
    large data array (.ldata, as libcufft.so.12 keeps its 23,984), sm_86 in ``.kernel_blobs``.

    The two data blobs are ``nvcc -fatbin`` output compiled into C arrays, as
    libraries that load their own modules (cuModuleLoadData) carry them.
    """
    if not NVCC.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no CUDA toolkit at {NVCC}")
        pytest.skip(f"no CUDA toolkit at {NVCC} (set ENVLOCK_NVCC)")
    _needs_readelf()
    work = tmp_path_factory.mktemp("placed")
    (work / "kernel.cu").write_text(KERNEL)
    jobs = {
        "ldata.fatbin": ["-gencode", "arch=compute_90,code=sm_90", "-gencode", "arch=compute_90,code=compute_90"],
        "own.fatbin": ["-gencode", "arch=compute_86,code=sm_86"],
    }
    procs = [
        subprocess.Popen([str(NVCC), "-fatbin", *targets, "-o", str(work / out), str(work / "kernel.cu")])
        for out, targets in jobs.items()
    ]
    assert all(proc.wait(timeout=300) == 0 for proc in procs)
    (work / "blobs.c").write_text(
        _c_array("__attribute__((aligned(8))) unsigned char large_data_fatbin", (work / "ldata.fatbin").read_bytes())
        + _c_array(
            '__attribute__((aligned(8), section(".kernel_blobs"))) const unsigned char own_section_fatbin',
            (work / "own.fatbin").read_bytes(),
        )
        + "unsigned long blob_bytes(void) { return sizeof large_data_fatbin + sizeof own_section_fatbin; }\n"
    )
    # The medium code model puts data above the threshold in .ldata (GCC 12's
    # large model keeps it in .data); -mcmodel=large is what libcufft was built with.
    subprocess.run(
        ["gcc", "-c", "-fPIC", "-mcmodel=medium", "-mlarge-data-threshold=1024", "-o", str(work / "blobs.o")]
        + [str(work / "blobs.c")],
        check=True,
    )
    library = work / "libplaced.so"
    subprocess.run(
        [str(NVCC), "-shared", "-Xcompiler", "-fPIC", "-gencode", "arch=compute_75,code=sm_75"]
        + ["-o", str(library), str(work / "kernel.cu"), str(work / "blobs.o")],
        check=True,
    )
    return library


def test_nvcc_library_with_fat_binaries_in_three_sections(placed_library):
    # Where each lies, by readelf and the brute-force scan: the case is the real one.
    assert independent_scan(placed_library, *section_range(placed_library, ".nv_fatbin")) == ({"sm_75"}, set())
    assert independent_scan(placed_library, *section_range(placed_library, ".ldata")) == ({"sm_90"}, {"compute_90"})
    assert independent_scan(placed_library, *section_range(placed_library, ".kernel_blobs")) == ({"sm_86"}, set())

    result = fatbin.read_library_kernels(placed_library)
    assert (result.sass, result.ptx, result.warnings) == (("sm_75", "sm_86", "sm_90"), ("compute_90",), ())
    assert result.has_fatbin


def test_a_magic_at_an_unaligned_offset_of_a_data_section_is_not_a_fat_binary():
    # Data that happens to hold the magic (and a plausible header) at an odd
    # offset: the compilers align containers to 8 bytes, so it is skipped.
    blob = bytearray(64) + struct.pack("<IHHQ", fatbin.FATBIN_MAGIC, 1, 16, 64) + bytes(64)
    shifted = bytes(3) + bytes(blob)
    result = fatbin.parse_fatbin_region(shifted, 0, len(shifted), strict=False)
    assert not result.has_fatbin and result.warnings == ()


# --- NVIDIA's wheels ------------------------------------------------------------------------


def _venv(factory):
    from tests.envs import TestEnvError

    try:
        return factory()
    except TestEnvError as exc:
        pytest.skip(f"cannot build the test env: {exc}")


@pytest.fixture(scope="session")
def cuda13():
    from tests.envs import cuda13_kernels_venv

    return _venv(cuda13_kernels_venv)


@pytest.fixture(scope="session")
def cufft_cu12():
    from tests.envs import cufft_cu12_venv

    return _venv(cufft_cu12_venv)


CUDA13_LIBRARIES = [
    "libcufft.so.12",
    "libcufftw.so.12",
    "libcusparse.so.12",
    "libcupti.so.13",
    "libcheckpoint.so",
    "libnvperf_host.so",
]


@pytest.mark.parametrize("name", CUDA13_LIBRARIES)
def test_cuda13_wheel_libraries_match_the_independent_scan(cuda13, name):
    library = cuda13.site_packages / "nvidia" / "cu13" / "lib" / name
    want_sass, want_ptx = independent_scan(library)
    result = fatbin.read_library_kernels(library)
    assert (set(result.sass), set(result.ptx)) == (want_sass, want_ptx)
    assert result.warnings == ()


def test_libcufft_12_kernels_are_mostly_outside_nv_fatbin(cuda13):
    library = cuda13.site_packages / "nvidia" / "cu13" / "lib" / "libcufft.so.12"
    # .nv_fatbin alone: the one sm_75 cubin the section-only reader recorded.
    assert independent_scan(library, *section_range(library, ".nv_fatbin")) == ({"sm_75"}, set())
    result = fatbin.read_library_kernels(library)
    # What issue 16 found reading every fat binary: SASS sm_75 ... sm_120, PTX compute_75 ... compute_90.
    assert {"sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "sm_100", "sm_120"} <= set(result.sass)
    assert result.ptx == ("compute_75", "compute_80", "compute_86", "compute_90")


def test_cupti_kernels_without_any_nv_fatbin_section(cuda13):
    library = cuda13.site_packages / "nvidia" / "cu13" / "lib" / "libcupti.so.13"
    out = subprocess.run(["readelf", "-SW", str(library)], capture_output=True, text=True, check=True).stdout
    assert ".nv_fatbin" not in out
    result = fatbin.read_library_kernels(library)
    assert "sm_90" in result.sass and "sm_70" not in result.sass


def test_cuda12_cufft_matches_the_independent_scan(cufft_cu12):
    library = cufft_cu12.site_packages / "nvidia" / "cufft" / "lib" / "libcufft.so.11"
    want_sass, want_ptx = independent_scan(library)
    result = fatbin.read_library_kernels(library)
    assert (set(result.sass), set(result.ptx)) == (want_sass, want_ptx)
    # Its .nv_fatbin holds one cubin per major (sm_50 ... sm_90); the minors
    # (Turing sm_75, Ada sm_89, ...) and most PTX are in .data.
    nv_sass, nv_ptx = independent_scan(library, *section_range(library, ".nv_fatbin"))
    assert {"sm_75", "sm_86", "sm_89"} & nv_sass == set()
    assert {"sm_75", "sm_86", "sm_89"} <= set(result.sass)
    assert len(result.ptx) > len(nv_ptx)


def test_probe_records_each_library_and_their_union(cuda13, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    interpreter = inspect_interpreter(str(cuda13.python))
    ctx = CaptureContext(interpreter, scan_distributions(interpreter.site_dirs))
    kernels = fatbin.probe_package_kernels(ctx)
    assert ctx.warnings == []
    lib = cuda13.site_packages / "nvidia" / "cu13" / "lib"
    cufft = kernels["nvidia-cufft"]
    per_file = {file: (set(sass), set(ptx)) for file, sass, ptx in cufft.libraries}
    assert per_file == {
        "nvidia/cu13/lib/libcufft.so.12": independent_scan(lib / "libcufft.so.12"),
        "nvidia/cu13/lib/libcufftw.so.12": independent_scan(lib / "libcufftw.so.12"),
    }
    union = set().union(*(sass for sass, _ in per_file.values()))
    assert set(cufft.sass) == union
    cupti = {file for file, _, _ in kernels["nvidia-cuda-cupti"].libraries}
    assert cupti == {"nvidia/cu13/lib/libcupti.so.13", "nvidia/cu13/lib/libcheckpoint.so"}


def test_results_of_the_section_only_reader_are_not_reused(cuda13, tmp_path, monkeypatch):
    """A cache written by the reader that read .nv_fatbin alone (kernels-v3) is ignored."""
    import json

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    library = str(cuda13.site_packages / "nvidia" / "cu13" / "lib" / "libcufft.so.12")
    old = tmp_path / "cache" / "envlock" / "kernels-v3.tsv"
    old.parent.mkdir(parents=True)
    identity = fatbin.file_identity(os.stat(library))
    old.write_text(
        "envlock kernel cache 3\nF"
        + json.dumps(library)
        + "\t"
        + json.dumps([identity, ["sm_75"], [], [], True])
        + "\n"
    )
    cache = fatbin.KernelCache()
    assert cache.path != str(old)
    result = fatbin.scan_libraries([library], cache)[library]
    assert "sm_90" in result.sass
