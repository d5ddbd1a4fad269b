"""Compare two locks: findings grouped by layer, ranked by how likely each is to change numbers.

Pure: no I/O, no clock.  ``diff(a, b)`` lists every difference between lock A
and lock B, with A's value in ``Finding.locked`` and B's in ``Finding.actual``.

Ranking (``Finding.rank``, lower first), from the kernels that do the
arithmetic outwards:

==== ==========================================================================
10   GPU architecture (compute capability), then model (11), count (12), SMs/MIG/memory (13-14);
     other accelerators ([accelerators]: AMD/Intel GPUs, NPUs) take the same ranks, and their
     compute stack (ROCm, CANN) ranks with the CUDA runtime (23), their driver with NVIDIA's (30)
20   cuDNN, cuBLAS (21), NCCL (22), CUDA runtime/toolkit (23), other CUDA libraries (24),
     the CUDA/cuDNN a framework was built against (25)
30   NVIDIA driver
40   BLAS/LAPACK vendor or version (runtime.libraries; conda and OS BLAS packages), OpenMP (41)
49   CPU architecture, ISA flags (50), microarchitecture (51), model (52), core counts (55)
60   thread-count and determinism variables (runtime.env)
70   framework versions (torch, jax, tensorflow, numpy, scipy, ...), interpreter (72)
80   other Python packages
85   conda packages
90   OS packages, OS release (91), kernel (92)
94   glibc / libstdc++
98   project (git state)
==== ==========================================================================

Ranks below 80 are ``numeric`` findings (except GPU clocks, power and ECC,
rank 17), the rest ``differs``.  Unknown is not
different: a layer that one lock does not record gives one ``unknown``
finding (severity ``info``), and fields one side does not know are listed
in one ``unknown`` finding per layer, never as differences.

Symmetry: ``diff(b, a)`` is ``diff(a, b)`` with A and B swapped (H2 in
THREATS.md); the host rules, which are directional, are applied both ways.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

from envlock import records
from envlock.findings import BLOCKER, CHANGED, DIFFERS, INFO, LAYER_ORDER, NUMERIC, UNKNOWN, Finding
from envlock.lockfile import model as m
from envlock.names import canonical_name, canonical_names

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable, Iterable
    from typing import Any

# --- ranks --------------------------------------------------------------------

RANK_GPU_ARCH = 10
RANK_GPU_MODEL = 11
RANK_GPU_COUNT = 12
RANK_GPU_SHAPE = 13  # SM count, MIG
RANK_GPU_MEMORY = 14
RANK_GPU_OTHER = 17
RANK_CUDNN = 20
RANK_CUBLAS = 21
RANK_NCCL = 22
RANK_CUDA_RUNTIME = 23
RANK_CUDA_OTHER = 24
RANK_FRAMEWORK_BUILD = 25
RANK_DRIVER = 30
RANK_BLAS = 40
RANK_OPENMP = 41
RANK_CPU_ARCH = 49
RANK_CPU_ISA = 50
RANK_CPU_MICROARCH = 51
RANK_CPU_MODEL = 52
RANK_CPU_CORES = 55
RANK_ENV = 60
RANK_FRAMEWORK = 70
RANK_INTERPRETER = 72
RANK_PACKAGE = 80
RANK_CONDA = 85
RANK_OS_PACKAGE = 90
RANK_OS_RELEASE = 91
RANK_KERNEL = 92
RANK_LIBC = 94
RANK_PROJECT = 98
NUMERIC_BELOW = 80

# Lock sections in the order they are compared, and the report layer of each.
SECTIONS = ("nvidia", "accelerators", "cuda", "runtime", "cpu", "python", "conda", "os", "project")
SECTION_LAYER = {
    "nvidia": "gpu",
    # AMD/Intel GPUs and NPUs (issue 18) do the arithmetic as NVIDIA GPUs do, and rank with them.
    "accelerators": "gpu",
    "cuda": "cuda",
    "runtime": "runtime",
    "cpu": "cpu",
    "python": "python",
    "conda": "conda",
    "os": "os",
    "project": "project",
}

# Python (and conda) packages whose version changes numbers most often:
# the array libraries and the frameworks that choose kernels.
FRAMEWORKS = frozenset(
    {
        "torch",
        "pytorch",
        "torchvision",
        "torchaudio",
        "jax",
        "jaxlib",
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "tensorflow-intel",
        "tf-nightly",
        "keras",
        "numpy",
        "scipy",
        "triton",
        "cupy",
        "paddlepaddle",
        "paddlepaddle-gpu",
        "mxnet",
        "onnxruntime",
        "onnxruntime-gpu",
        "scikit-learn",
        "xformers",
        "flash-attn",
    }
)

# (pattern, rank, layer, what): CUDA and BLAS libraries, whether they arrive
# as a CUDA component, a pip wheel, a conda package or an OS package.  The
# patterns are compiled together (_ANY_LIBRARY), not one by one.
_LIBRARY_CLASSES: tuple[tuple[str, int, str, str], ...] = (
    (r"(?:nvidia-)?(?:lib)?cudnn(?:[0-9]*)(?:-cu[0-9]+|-dev)?|cudnn", RANK_CUDNN, "cuda", "cuDNN"),
    (r"(?:nvidia-)?(?:lib)?cublas(?:lt)?(?:[0-9-]*)(?:-cu[0-9]+|-dev)?", RANK_CUBLAS, "cuda", "cuBLAS"),
    (r"(?:nvidia-)?(?:lib)?nccl(?:[0-9]*)(?:-cu[0-9]+|-dev)?", RANK_NCCL, "cuda", "NCCL"),
    (
        r"cudart|nvcc|toolkit|cuda-runtime|cudatoolkit|cuda-toolkit|cuda-cudart(?:-dev)?"
        r"|nvidia-cuda-runtime-cu[0-9]+|nvidia-cuda-nvrtc-cu[0-9]+|nvidia-cuda-nvcc-cu[0-9]+|cuda-nvcc|nvrtc",
        RANK_CUDA_RUNTIME,
        "cuda",
        "the CUDA runtime",
    ),
    (
        r"nvidia-[a-z0-9-]+-cu[0-9]+|cufft|curand|cusolver|cusparse|nvjitlink|cupti|cusparselt|nvtx",
        RANK_CUDA_OTHER,
        "cuda",
        "a CUDA library",
    ),
    (
        r"(?:lib)?openblas[a-z0-9.-]*|mkl|mkl-[a-z-]+|intel-openmp|libblas[0-9]*|liblapack[0-9]*|libcblas|blis|libblis[0-9]*"
        r"|libatlas[a-z0-9-]*|scipy-openblas[0-9]*|numpy-base|libmkl[a-z0-9-]*|accelerate",
        RANK_BLAS,
        "blas",
        "BLAS/LAPACK",
    ),
)

WHY = {
    RANK_GPU_ARCH: "kernels are compiled per GPU architecture and libraries pick different algorithms on each, so results change in the low bits or more",
    RANK_GPU_MODEL: "a different GPU model has different SM counts and clocks, and cuDNN/cuBLAS heuristics pick different kernels for it",
    RANK_GPU_COUNT: "a different GPU count changes data-parallel batch splits and the order of gradient all-reductions",
    RANK_GPU_SHAPE: "the number of SMs (and MIG slicing) changes how reductions are split across blocks",
    RANK_GPU_MEMORY: "memory size changes which algorithms fit their workspace and the largest batch that runs",
    RANK_GPU_OTHER: "this setting changes speed or availability more than arithmetic, but can expose timing-dependent bugs",
    RANK_CUDNN: "cuDNN versions ship different convolution kernels and heuristics, so results differ in the low bits",
    RANK_CUBLAS: "cuBLAS versions choose different GEMM kernels and split-K reductions, which changes rounding",
    RANK_NCCL: "NCCL versions change all-reduce algorithms and reduction order across GPUs",
    RANK_CUDA_RUNTIME: "the CUDA runtime/toolkit decides which kernels and math-library builds are used",
    RANK_CUDA_OTHER: "CUDA math libraries (cuFFT, cuRAND, cuSOLVER, ...) change algorithms between versions",
    RANK_FRAMEWORK_BUILD: "the framework was built against a different CUDA/cuDNN, so it calls different kernels",
    RANK_DRIVER: "the driver JIT-compiles PTX and decides the highest usable CUDA version; too old a driver cannot run the kernels",
    RANK_BLAS: "BLAS vendors and versions block matrix products differently, so floating-point sums round differently",
    RANK_OPENMP: "the OpenMP runtime sets default thread counts and scheduling, which changes reduction order",
    RANK_CPU_ARCH: "a different CPU architecture runs different compiled code paths throughout the stack",
    RANK_CPU_ISA: "numeric libraries dispatch on ISA flags (AVX2, AVX-512, AMX, FMA), and FMA and vector width change rounding",
    RANK_CPU_MICROARCH: "libraries tune kernels per microarchitecture (oneDNN, OpenBLAS targets), which changes blocking and rounding",
    RANK_CPU_MODEL: "a different CPU model can select different library code paths",
    RANK_CPU_CORES: "default thread counts follow the core count, and the number of threads changes parallel reduction order",
    RANK_ENV: "thread counts and determinism switches change reduction order and which kernels may run",
    RANK_FRAMEWORK: "framework and array-library releases change default algorithms, dtypes and kernel choices",
    RANK_INTERPRETER: "the interpreter version changes which wheels are installed and some numeric library behaviour",
    RANK_PACKAGE: "a different package version can change behaviour that the code relies on",
    RANK_CONDA: "conda packages bring their own native libraries, which can change numeric code paths",
    RANK_OS_PACKAGE: "OS packages provide shared libraries that Python packages may load",
    RANK_OS_RELEASE: "the OS release decides the system libraries and compilers everything else links against",
    RANK_KERNEL: "the kernel rarely changes numbers, but affects drivers, scheduling and available features",
    RANK_LIBC: "glibc's libm implements exp/log/pow/sin; its versions differ in the last bits of some results",
    RANK_PROJECT: "the code itself is different",
}
CONTENT_WHY = "the same version with a different file hash means the content changed: a rebuild, a different build variant, or tampering"
BYTES_WHY = (
    "the same version installed as different files: another build of the release (a build-tagged re-upload,"
    " another platform's wheel, a local build) or files changed after installing, which can hold other code"
)


def _severity(rank: int) -> str:
    # Clocks, power limit, ECC and persistence change speed, not arithmetic.
    return NUMERIC if rank < NUMERIC_BELOW and rank != RANK_GPU_OTHER else DIFFERS


# All the classes in one pattern, one group per class in _LIBRARY_CLASSES order:
# a diff classifies every changed package, and one fullmatch instead of up to
# six saves ~4 ms per 5,000 packages (compiling it costs what compiling the
# six did, 1.5 ms).  fullmatch backtracks into the next alternative when one
# cannot reach the end of the name, so the first class that matches the
# whole name wins, as with one pattern at a time.
_ANY_LIBRARY = re.compile("|".join(f"({pattern})" for pattern, *_ in _LIBRARY_CLASSES))
_LIBRARY_CLASS_OF_GROUP = tuple((rank, layer, what) for _pattern, rank, layer, what in _LIBRARY_CLASSES)


def rank_library(name: str) -> tuple[int, str, str] | None:
    """(rank, layer, description) for a CUDA/BLAS library name, or None."""
    found = _ANY_LIBRARY.fullmatch(name.lower())
    if found is None:
        return None
    group = found.lastindex
    assert group is not None  # the pattern is an alternation of groups: a match is inside one of them
    return _LIBRARY_CLASS_OF_GROUP[group - 1]


# --- small helpers --------------------------------------------------------------


class _Out:
    """Collects findings for one comparison, with the side labels."""

    def __init__(self, labels: tuple[str, str]) -> None:
        self.a, self.b = labels
        self.items: list[Finding] = []
        self.unknown: dict[str, list[str]] = {}

    def add(
        self,
        layer: str,
        path: str,
        rank: int,
        message: str,
        va: Any,
        vb: Any,
        why: str | None = None,
        fix: str | None = None,
    ) -> None:
        self._append(layer, path, rank, message, _show(va), _show(vb), why, fix)

    def changed(self, layer: str, path: str, rank: int, what: str, va: Any, vb: Any, why: str | None = None) -> None:
        # Each value is shown once, for both the message and the cells.
        shown_a, shown_b = _show(va), _show(vb)
        self._append(
            layer,
            path,
            rank,
            f"{what}: {shown_a or 'none'} in {self.a}, {shown_b or 'none'} in {self.b}",
            shown_a,
            shown_b,
            why,
            None,
        )

    def _append(
        self,
        layer: str,
        path: str,
        rank: int,
        message: str,
        locked: str | None,
        actual: str | None,
        why: str | None,
        fix: str | None,
    ) -> None:
        self.items.append(
            Finding(
                layer=layer,
                path=path,
                severity=_severity(rank),
                message=message,
                why=why or WHY.get(rank),
                fix=fix,
                locked=locked,
                actual=actual,
                status=CHANGED,
                rank=rank,
            )
        )

    def missing(self, layer: str, field: str, a_known: bool) -> None:
        side = self.a if a_known else self.b
        self.unknown.setdefault(layer, []).append(f"{field}\x00{side}")


def _show(value: Any) -> str | None:
    if value is None or type(value) is str:  # most values (package versions) are already text
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _scalar(out: _Out, layer: str, path: str, rank: int, what: str, va: Any, vb: Any) -> None:
    """Compare one field: unknown on one side is noted, not a difference."""
    if va == vb:
        return
    if va is None or vb is None:
        out.missing(layer, path, va is not None)
        return
    out.changed(layer, path, rank, what, va, vb)


def _counts(values: Iterable[Any]) -> str:
    counted = Counter(values)
    return ", ".join(
        f"{value} ×{n}" if n > 1 else str(value) for value, n in sorted(counted.items(), key=lambda kv: str(kv[0]))
    )


# findall gives each non-zero number of a version without its leading zeros
# ("010" -> "10"; "0" and "00" give nothing), so that two lists of these
# strings are equal exactly when the numbers are, with no int() per number.
_NONZERO_NUMBER = re.compile(r"0*([1-9][0-9]*)")


# The version an importer records for a package whose name it read but whose version it could not
# (``name @ file:///...``, an unpinned requirement).
UNREAD_VERSION = "unknown"


def _versions_equal(va: str, vb: str) -> bool:
    if va == vb:
        return True
    # Two equal PEP 440 versions have the same non-zero numbers in the same
    # order, whatever their separators, spellings ("alpha", "-1" for
    # ".post1"), leading zeros or trailing ".0"s.  Most changed versions
    # differ there, which spares importing packaging.version (4 ms).
    if _NONZERO_NUMBER.findall(va) != _NONZERO_NUMBER.findall(vb):
        return False
    from packaging.version import InvalidVersion, Version

    try:
        return Version(va) == Version(vb)
    except InvalidVersion:
        return False


# PEP 503 normalisation (one implementation, shared with the loader's duplicate check).
_norm_python = canonical_name


# --- per-section comparisons -------------------------------------------------------


def _diff_nvidia(out: _Out, a: m.NvidiaSection, b: m.NvidiaSection) -> None:
    if a.driver_present != b.driver_present:
        # A host without a driver has no driver version: that is the one difference, not an unknown.
        out.changed(
            "driver", "nvidia.driver-present", RANK_DRIVER, "NVIDIA driver present", a.driver_present, b.driver_present
        )
    else:
        _scalar(
            out, "driver", "nvidia.driver-version", RANK_DRIVER, "NVIDIA driver", a.driver_version, b.driver_version
        )
        _scalar(
            out,
            "driver",
            "nvidia.cuda-driver-version",
            RANK_DRIVER,
            "highest CUDA the driver supports",
            a.cuda_driver_version,
            b.cuda_driver_version,
        )
    ga, gb = a.gpus, b.gpus
    if len(ga) != len(gb):
        out.changed("gpu", "nvidia.gpus", RANK_GPU_COUNT, "GPU count", len(ga), len(gb))
    if not ga or not gb:
        # GPUs on one side only: the count says it; the models are in the count finding's values.
        if ga or gb:
            names = _counts(g.name for g in (ga or gb))
            out.items[-1] = records.replace(
                out.items[-1], message=f"GPU count: {len(ga)} in {out.a}, {len(gb)} in {out.b} ({names})"
            )
        return
    ccs_a = [g.compute_capability for g in ga]
    ccs_b = [g.compute_capability for g in gb]
    if None not in ccs_a and None not in ccs_b:
        if set(ccs_a) != set(ccs_b):
            out.changed(
                "gpu",
                "nvidia.gpus.compute-capability",
                RANK_GPU_ARCH,
                "GPU compute capability",
                _counts(ccs_a),
                _counts(ccs_b),
            )
    else:
        out.missing("gpu", "nvidia.gpus.compute-capability", None not in ccs_a)
    names_a = sorted(set(g.name for g in ga))
    names_b = sorted(set(g.name for g in gb))
    if names_a != names_b:
        out.changed(
            "gpu",
            "nvidia.gpus.name",
            RANK_GPU_MODEL,
            "GPU model",
            _counts(g.name for g in ga),
            _counts(g.name for g in gb),
        )
    per_field = (
        ("multiprocessors", RANK_GPU_SHAPE, "streaming multiprocessors"),
        ("mig_mode", RANK_GPU_SHAPE, "MIG mode"),
        ("memory_total_mib", RANK_GPU_MEMORY, "GPU memory (MiB)"),
        ("ecc_mode", RANK_GPU_OTHER, "ECC mode"),
        ("compute_mode", RANK_GPU_OTHER, "compute mode"),
        ("persistence_mode", RANK_GPU_OTHER, "persistence mode"),
        ("power_limit_w", RANK_GPU_OTHER, "power limit (W)"),
        ("max_sm_clock_mhz", RANK_GPU_OTHER, "max SM clock (MHz)"),
        ("max_memory_clock_mhz", RANK_GPU_OTHER, "max memory clock (MHz)"),
    )
    for attr, rank, what in per_field:
        va = [getattr(g, attr) for g in ga]
        vb = [getattr(g, attr) for g in gb]
        path = "nvidia.gpus." + attr.replace("_", "-")
        if None in va or None in vb:
            if any(v is not None for v in va + vb):
                out.missing("gpu", path, None not in va)
            continue
        if sorted(set(map(str, va))) != sorted(set(map(str, vb))):
            out.changed("gpu", path, rank, what, _counts(va), _counts(vb))


ACCELERATOR_WHY = {
    RANK_GPU_ARCH: "kernels are compiled per accelerator architecture (gfx90a, Ascend910B) and libraries pick different algorithms on each",
    RANK_GPU_MODEL: "a different accelerator model has other compute-unit counts and clocks, so libraries pick different kernels",
    RANK_CUDA_RUNTIME: "the accelerator's compute stack (ROCm, CANN, oneAPI) decides which kernels and math-library builds are used",
}


def _diff_accelerators(out: _Out, a: m.AcceleratorSection, b: m.AcceleratorSection) -> None:
    stack = f"{a.runtime or b.runtime or 'accelerator compute stack'}"
    for field, what, va, vb in (
        ("runtime", "accelerator compute stack", a.runtime, b.runtime),
        ("runtime-version", f"{stack} version", a.runtime_version, b.runtime_version),
    ):
        if va is not None and vb is not None and va != vb:
            # In the section's own layer (not "cuda"): reports place findings by layer, and
            # every accelerator finding belongs on the host line with the devices.
            out.changed(
                "gpu", f"accelerators.{field}", RANK_CUDA_RUNTIME, what, va, vb, why=ACCELERATOR_WHY[RANK_CUDA_RUNTIME]
            )
        elif va != vb:
            out.missing("gpu", f"accelerators.{field}", va is not None)
    _scalar(
        out,
        "driver",
        "accelerators.driver-version",
        RANK_DRIVER,
        "accelerator driver",
        a.driver_version,
        b.driver_version,
    )
    da, db = a.devices, b.devices
    if len(da) != len(db):
        # Devices on one side only name themselves in the count finding, as GPUs do.
        names = f" ({_counts(d.name for d in (da or db))})" if not da or not db else ""
        out.add(
            "gpu",
            "accelerators.devices",
            RANK_GPU_COUNT,
            f"accelerator count: {len(da)} in {out.a}, {len(db)} in {out.b}{names}",
            len(da),
            len(db),
        )
    if not da or not db:
        return
    _device_values(
        out,
        "architecture",
        RANK_GPU_ARCH,
        "accelerator architecture",
        [d.architecture for d in da],
        [d.architecture for d in db],
        ACCELERATOR_WHY[RANK_GPU_ARCH],
    )
    for attr, path, what in (("vendor", "vendor", "accelerator vendor"), ("name", "name", "accelerator model")):
        models_a = [getattr(d, attr) for d in da]
        models_b = [getattr(d, attr) for d in db]
        if sorted(set(models_a)) != sorted(set(models_b)):
            out.changed(
                "gpu",
                f"accelerators.devices.{path}",
                RANK_GPU_MODEL,
                what,
                _counts(models_a),
                _counts(models_b),
                why=ACCELERATOR_WHY[RANK_GPU_MODEL],
            )
    _device_values(
        out,
        "memory-total-mib",
        RANK_GPU_MEMORY,
        "accelerator memory (MiB)",
        [d.memory_total_mib for d in da],
        [d.memory_total_mib for d in db],
        None,
    )


def _device_values(out: _Out, field: str, rank: int, what: str, va: list, vb: list, why: str | None) -> None:
    """One field over all devices: the known values compared, devices that do not say it as unknown."""
    known_a = [v for v in va if v is not None]
    known_b = [v for v in vb if v is not None]
    path = f"accelerators.devices.{field}"
    if len(known_a) == len(va) and len(known_b) == len(vb):
        if set(known_a) != set(known_b):
            out.changed("gpu", path, rank, what, _counts(known_a), _counts(known_b), why=why)
    elif len(known_a) != len(known_b):
        out.missing("gpu", path, len(known_a) > len(known_b))
    elif sorted(map(str, known_a)) != sorted(map(str, known_b)):
        # As many devices unknown on both sides: what both sides know still differs.
        out.changed("gpu", path, rank, what, _counts(known_a), _counts(known_b), why=why)


def _grouped(pairs: Iterable[tuple[Any, str]]) -> dict[Any, list[str]]:
    """(key, value) pairs to each key's sorted, distinct values."""
    found: dict[Any, set[str]] = {}
    for key, value in pairs:
        found.setdefault(key, set()).add(value)
    return {key: sorted(values) for key, values in found.items()}


def _diff_cuda(out: _Out, a: m.CudaSection, b: m.CudaSection) -> None:
    def components(section: m.CudaSection) -> dict[str, list[str]]:
        return _grouped((comp.name.lower(), comp.version) for comp in section.components)

    ca, cb = components(a), components(b)
    for name in sorted(set(ca) | set(cb)):
        va, vb = ca.get(name), cb.get(name)
        if va == vb:
            continue
        rank, _layer, what = rank_library(name) or (RANK_CUDA_OTHER, "cuda", "a CUDA library")
        path = f"cuda.components[{name}]"
        label = f"{name} version"
        if va is None or vb is None:
            present = va if va is not None else vb or []
            side = out.a if va is not None else out.b
            out.add("cuda", path, rank, f"{name} {', '.join(present)} only in {side}", va, vb)
        else:
            out.changed("cuda", path, rank, label, va, vb)
    fa = {_norm_python(f.name): f for f in a.frameworks}
    fb = {_norm_python(f.name): f for f in b.frameworks}
    for name in sorted(set(fa) & set(fb)):
        for attr in ("cuda", "cudnn", "rocm"):
            _scalar(
                out,
                "cuda",
                f"cuda.frameworks[{name}].{attr}",
                RANK_FRAMEWORK_BUILD,
                f"{name} built against {attr}",
                getattr(fa[name], attr),
                getattr(fb[name], attr),
            )


def _diff_runtime(out: _Out, a: m.RuntimeSection, b: m.RuntimeSection) -> None:
    for name in sorted(set(a.env) | set(b.env)):
        va, vb = a.env.get(name), b.env.get(name)
        if va != vb:
            out.add(
                "runtime",
                f"runtime.env.{name}",
                RANK_ENV,
                f"{name}: {_env_show(va)} in {out.a}, {_env_show(vb)} in {out.b}",
                va,
                vb,
            )

    def libraries(section: m.RuntimeSection) -> dict[tuple[str, str], list[str]]:
        return _grouped(
            ((_norm_python(lib.package), lib.kind), f"{lib.name} {lib.version}" if lib.version else lib.name)
            for lib in section.libraries
        )

    la, lb = libraries(a), libraries(b)
    for key in sorted(set(la) | set(lb)):
        libs_a, libs_b = la.get(key), lb.get(key)
        if libs_a == libs_b:
            continue
        package, kind = key
        rank = RANK_OPENMP if kind == "openmp" else RANK_BLAS
        out.changed(
            "blas", f"runtime.libraries[{package}:{kind}]", rank, f"{kind} library bundled by {package}", libs_a, libs_b
        )


def _env_show(value: str | None) -> str:
    return "unset" if value is None else repr(value)


def _diff_cpu(out: _Out, a: m.CpuSection, b: m.CpuSection) -> None:
    _scalar(out, "cpu", "cpu.architecture", RANK_CPU_ARCH, "CPU architecture", a.architecture, b.architecture)
    fa, fb = set(a.flags), set(b.flags)
    if fa != fb:
        if fa and fb:
            only_a = sorted(fa - fb)
            only_b = sorted(fb - fa)
            parts = []
            if only_a:
                parts.append(f"only in {out.a}: {', '.join(only_a)}")
            if only_b:
                parts.append(f"only in {out.b}: {', '.join(only_b)}")
            out.add("cpu", "cpu.flags", RANK_CPU_ISA, "CPU ISA flags differ (" + "; ".join(parts) + ")", only_a, only_b)
        else:
            out.missing("cpu", "cpu.flags", bool(fa))
    _scalar(
        out,
        "cpu",
        "cpu.microarchitecture",
        RANK_CPU_MICROARCH,
        "CPU microarchitecture",
        a.microarchitecture,
        b.microarchitecture,
    )
    model_a = (a.vendor, a.model_name, a.family, a.model, a.stepping)
    model_b = (b.vendor, b.model_name, b.family, b.model, b.stepping)
    if model_a != model_b:
        known_a = [v for v in model_a if v is not None]
        known_b = [v for v in model_b if v is not None]
        both = [i for i in range(5) if model_a[i] is not None and model_b[i] is not None]
        if any(model_a[i] != model_b[i] for i in both):
            out.changed("cpu", "cpu.model-name", RANK_CPU_MODEL, "CPU model", _cpu_name(a), _cpu_name(b))
        elif len(known_a) != len(known_b):
            out.missing("cpu", "cpu.model-name", len(known_a) > len(known_b))
    for attr in ("logical_cores", "physical_cores", "sockets", "numa_nodes"):
        _scalar(
            out,
            "cpu",
            "cpu." + attr.replace("_", "-"),
            RANK_CPU_CORES,
            attr.replace("_", " "),
            getattr(a, attr),
            getattr(b, attr),
        )


def _cpu_name(cpu: m.CpuSection) -> str:
    parts = [cpu.model_name or cpu.vendor or "unknown"]
    if cpu.family is not None:
        parts.append(f"(family {cpu.family} model {cpu.model} stepping {cpu.stepping})")
    return " ".join(parts)


def _python_key(pkg: m.PythonPackage) -> tuple:
    """What decides a Python package's content; installer and 'requested' do not."""
    return (
        pkg.version,
        pkg.source,
        pkg.url if pkg.source in ("vcs", "url") else None,
        pkg.commit,
        pkg.subdirectory,
        pkg.archive_hash,
        # Most packages embed no kernels: their empty tuple is used as it is.
        tuple(sorted(pkg.cuda_sass)) if pkg.cuda_sass else (),
        tuple(sorted(pkg.cuda_ptx)) if pkg.cuda_ptx else (),
        # The digest over the installed files (issue 11): last, so the fields
        # above keep their places in _describe_python and _python_content.
        pkg.content_digest,
    )


def _package_rank(norm: str) -> tuple[int, str]:
    if norm in FRAMEWORKS:
        return RANK_FRAMEWORK, "framework"
    cls = rank_library(norm)
    if cls is not None:
        return cls[0], cls[1]
    return RANK_PACKAGE, "python"


def _diff_packages(
    out: _Out,
    section: str,
    items_a: dict[str, tuple],
    items_b: dict[str, tuple],
    rank_of: Callable[[str], tuple[int, str]],
    describe: Callable[..., str],  # (key, full=False): the version, or with full=True its source too
    content_hash: Callable[[tuple], Any],
    compare_version: Callable[[tuple, tuple], bool],
    base_rank: int,
    installed_digest: Callable[[tuple], Any] | None = None,
) -> None:
    """Compare two {normalised name: key tuple} maps; key[0] is the version.

    ``installed_digest`` gives a digest of the installed files (Python's
    content digest): known on both sides and different, the same version
    holds different bytes.
    """
    for name in sorted(set(items_a) | set(items_b)):
        ka, kb = items_a.get(name), items_b.get(name)
        if ka == kb:
            continue
        rank, layer = rank_of(name)
        if rank == RANK_PACKAGE:  # an ordinary package: ranked and shown as one of this section's
            rank, layer = base_rank, section
        path = f"{section}.packages[{name}]"
        if ka is None or kb is None:
            present = ka if ka is not None else kb
            assert present is not None  # ka == kb was handled above, so not both are None
            side = out.a if ka is not None else out.b
            out.add(
                layer,
                path,
                rank,
                f"{name} {describe(present)} only in {side}",
                describe(ka) if ka else None,
                describe(kb) if kb else None,
            )
            continue
        if not compare_version(ka, kb):
            out.changed(layer, path, rank, name, describe(ka), describe(kb))
            continue
        ha, hb = content_hash(ka), content_hash(kb)
        if ha is not None and hb is not None and ha != hb:
            out.add(
                layer,
                path,
                rank,
                f"{name} {ka[0]}: same version, different content ({_short(ha)} in {out.a}, {_short(hb)} in {out.b})",
                _short(ha),
                _short(hb),
                why=CONTENT_WHY,
                fix="find out which file is the published one (compare with the index's hash) before trusting either",
            )
            continue
        if installed_digest is not None:
            da, db = installed_digest(ka), installed_digest(kb)
            if da is not None and db is not None and da != db:
                out.add(
                    layer,
                    path,
                    rank,
                    f"{name} {ka[0]}: same version, different bytes"
                    f" (content digest {_short(da)} in {out.a}, {_short(db)} in {out.b})",
                    _short(da),
                    _short(db),
                    why=BYTES_WHY,
                    fix="replay the lock that holds the bytes you trust from its pins (envlock pin) or its pack",
                )
                continue
        # Same version and no contradicting hash: the remaining fields differ
        # (source, URL, commit, kernels), or only one side knows the hash.
        if _differs_beyond_unknown(ka[1:], kb[1:]):
            out.changed(
                layer,
                path,
                rank,
                f"{name} {ka[0]} comes from a different source or build",
                describe(ka, full=True),
                describe(kb, full=True),
            )


def _differs_beyond_unknown(ka: tuple, kb: tuple) -> bool:
    for va, vb in zip(ka, kb, strict=True):
        if va is None or vb is None or va == () or vb == ():
            continue
        if va != vb:
            return True
    return False


def _short(value: Any) -> str:
    text = str(value)
    if text.startswith("sha256:"):
        return text[:19]
    return text[:16] if re.fullmatch(r"[0-9a-f]{20,}", text) else text


def _describe_python(key: tuple | None, full: bool = False) -> str:
    if key is None:
        return ""
    version, source, url, commit, subdirectory, archive_hash, sass, ptx, _digest = key
    text = version
    if source not in ("index", "unknown") or full:
        text += f" ({source}"
        if commit:
            text += f" @{commit[:12]}"
        elif url and full:
            text += f" {url}"
        if full and (sass or ptx):
            text += f" kernels {','.join(sass + ptx)}"
        text += ")"
    return text


def _python_content(key: tuple) -> Any:
    return key[5]  # the archive hash


def _python_installed_digest(key: tuple) -> Any:
    return key[8]  # the content digest of the installed files


def _python_versions_equal(ka: tuple, kb: tuple) -> bool:
    if UNREAD_VERSION in (ka[0], kb[0]):
        return True  # an importer could not read this version: unknown, not different
    if not _versions_equal(ka[0], kb[0]):
        return False
    # Two VCS installs of the "same" version from different commits are different code.
    return not (ka[3] and kb[3] and ka[3] != kb[3])


def _diff_python(out: _Out, a: m.PythonSection, b: m.PythonSection) -> None:
    _scalar(out, "python", "python.version", RANK_INTERPRETER, "Python version", a.version, b.version)
    _scalar(
        out,
        "python",
        "python.implementation",
        RANK_INTERPRETER,
        "Python implementation",
        a.implementation,
        b.implementation,
    )
    _scalar(out, "python", "python.abi-tag", RANK_INTERPRETER, "Python ABI", a.abi_tag, b.abi_tag)
    _scalar(out, "python", "python.platform-tag", RANK_INTERPRETER, "platform tag", a.platform_tag, b.platform_tag)
    _scalar(
        out,
        "python",
        "python.environment-kind",
        RANK_PACKAGE,
        "environment kind",
        a.environment_kind,
        b.environment_kind,
    )
    named_a = dict(zip(canonical_names([p.name for p in a.packages]), a.packages, strict=True))
    named_b = dict(zip(canonical_names([p.name for p in b.packages]), b.packages, strict=True))
    # One record on both sides cannot differ, so its key is not built: the
    # loader gives identical package tables one record, and two locks of one
    # environment share nearly all their packages (5,000 packages: 25 ms -> 5 ms).
    pa = {name: _python_key(p) for name, p in named_a.items() if named_b.get(name) is not p}
    pb = {name: _python_key(p) for name, p in named_b.items() if named_a.get(name) is not p}
    _diff_packages(
        out,
        "python",
        pa,
        pb,
        _package_rank,
        _describe_python,
        _python_content,
        _python_versions_equal,
        RANK_PACKAGE,
        _python_installed_digest,
    )


def _conda_key(pkg: m.CondaPackage) -> tuple:
    return (pkg.version, pkg.build, pkg.channel, pkg.subdir, pkg.sha256 or pkg.md5)


def _describe_conda(key: tuple | None, full: bool = False) -> str:
    if key is None:
        return ""
    version, build, channel, subdir, _digest = key
    text = version + (f"={build}" if build else "")
    if channel and full:
        text += f" ({channel})"
    return text


def _conda_versions_equal(ka: tuple, kb: tuple) -> bool:
    # A different build string is a different binary: treat it as a version change.
    return ka[0] == kb[0] and (ka[1] is None or kb[1] is None or ka[1] == kb[1])


def _diff_conda(out: _Out, a: m.CondaSection, b: m.CondaSection) -> None:
    pa = {p.name.lower(): _conda_key(p) for p in a.packages}
    pb = {p.name.lower(): _conda_key(p) for p in b.packages}
    _diff_packages(
        out, "conda", pa, pb, _package_rank, _describe_conda, lambda k: k[4], _conda_versions_equal, RANK_CONDA
    )


def _diff_os(out: _Out, a: m.OsSection, b: m.OsSection) -> None:
    release_a = (a.id, a.version_id)
    release_b = (b.id, b.version_id)
    if release_a != release_b and None not in release_a and None not in release_b:
        out.changed(
            "os",
            "os.release",
            RANK_OS_RELEASE,
            "OS release",
            a.name or f"{a.id} {a.version_id}",
            b.name or f"{b.id} {b.version_id}",
        )
    elif release_a != release_b:
        out.missing("os", "os.release", None not in release_a)
    _scalar(out, "os", "os.architecture", RANK_OS_RELEASE, "OS architecture", a.architecture, b.architecture)
    _scalar(out, "os", "os.kernel", RANK_KERNEL, "kernel", a.kernel, b.kernel)
    _scalar(out, "os", "os.glibc", RANK_LIBC, "glibc", a.glibc, b.glibc)
    _scalar(out, "os", "os.libstdcxx", RANK_LIBC, "libstdc++", a.libstdcxx, b.libstdcxx)

    def packages(section: m.OsSection) -> dict[str, tuple]:
        found = {}
        for pkg in section.packages:
            key = pkg.name if not pkg.architecture else f"{pkg.name}:{pkg.architecture}"
            found[key] = (pkg.version,)
        return found

    def rank_of(key: str) -> tuple[int, str]:
        cls = rank_library(key.split(":", 1)[0])
        if cls is not None:
            return cls[0] + 3 if cls[1] == "blas" else cls[0], cls[1]
        return RANK_OS_PACKAGE, "os"

    _diff_packages(
        out,
        "os",
        packages(a),
        packages(b),
        rank_of,
        lambda k, full=False: k[0] if k else "",
        lambda k: None,
        lambda x, y: x[0] == y[0],
        RANK_OS_PACKAGE,
    )


def _diff_project(out: _Out, a: m.ProjectSection, b: m.ProjectSection) -> None:
    _scalar(out, "project", "project.commit", RANK_PROJECT, "git commit", a.commit, b.commit)
    _scalar(out, "project", "project.dirty", RANK_PROJECT, "uncommitted changes", a.dirty, b.dirty)
    _scalar(out, "project", "project.diff-hash", RANK_PROJECT, "hash of uncommitted changes", a.diff_hash, b.diff_hash)
    _scalar(out, "project", "project.remote", RANK_PROJECT, "git remote", a.remote, b.remote)
    _scalar(out, "project", "project.branch", RANK_PROJECT, "git branch", a.branch, b.branch)


_SECTION_DIFF: dict[str, Callable[[_Out, Any, Any], None]] = {
    "nvidia": _diff_nvidia,
    "accelerators": _diff_accelerators,
    "cuda": _diff_cuda,
    "runtime": _diff_runtime,
    "cpu": _diff_cpu,
    "python": _diff_python,
    "conda": _diff_conda,
    "os": _diff_os,
    "project": _diff_project,
}


# --- the public functions ----------------------------------------------------------


def diff_section(name: str, a: Any, b: Any, labels: tuple[str, str] = ("A", "B")) -> list[Finding]:
    """Findings for one lock section (``"python"``, ``"nvidia"``, ...); ``None`` is unknown."""
    out = _Out(labels)
    layer = SECTION_LAYER[name]
    if a is None and b is None:
        return []
    if a is None or b is None:
        side = labels[0] if a is not None else labels[1]
        other = labels[1] if a is not None else labels[0]
        return [
            Finding(
                layer=layer,
                path=name,
                severity=INFO,
                message=f"the {name} layer is recorded only in {side}; {other} does not know it, so it was not compared",
                why="unknown is not different: a partial lock (an import) or a failed probe leaves a layer unknown",
                locked="recorded" if a is not None else "unknown",
                actual="recorded" if b is not None else "unknown",
                status=UNKNOWN,
                rank=_first_rank(name),
            )
        ]
    _SECTION_DIFF[name](out, a, b)
    findings = list(out.items)
    for unknown_layer, entries in sorted(out.unknown.items()):
        by_side: dict[str, list[str]] = {}
        for entry in entries:
            field_path, side = entry.split("\x00")
            by_side.setdefault(side, []).append(field_path)
        parts = [f"{', '.join(sorted(fields))} known only in {side}" for side, fields in sorted(by_side.items())]
        in_a = sorted(by_side.get(labels[0], []))
        in_b = sorted(by_side.get(labels[1], []))
        findings.append(
            Finding(
                layer=unknown_layer,
                path=f"{name} (partly unknown)",
                severity=INFO,
                message="not compared: " + "; ".join(parts),
                why="unknown is not different",
                locked=", ".join(in_a) or None,
                actual=", ".join(in_b) or None,
                status=UNKNOWN,
                rank=_first_rank(name),
            )
        )
    return findings


def _first_rank(section: str) -> int:
    return {
        "nvidia": RANK_GPU_ARCH,
        "accelerators": RANK_GPU_ARCH,
        "cuda": RANK_CUDNN,
        "runtime": RANK_ENV,
        "cpu": RANK_CPU_ARCH,
        "python": RANK_FRAMEWORK,
        "conda": RANK_CONDA,
        "os": RANK_OS_PACKAGE,
        "project": RANK_PROJECT,
    }[section]


_LAYER_POSITION = {layer: position for position, layer in enumerate(LAYER_ORDER)}


def ranking_key(finding: Finding) -> tuple:
    """Order of a diff report: blockers, then by rank and layer; unknowns last."""
    layer = _LAYER_POSITION.get(finding.layer, len(LAYER_ORDER))
    return (finding.status == UNKNOWN, finding.severity != BLOCKER, finding.rank, layer, finding.path, finding.message)


def host_findings_both_ways(a: m.Lock, b: m.Lock, labels: tuple[str, str]) -> list[Finding]:
    """The hardware engineer's host rules (envlock.compat.rules), both directions."""
    if all(lock.nvidia is None and lock.cpu is None and lock.os is None for lock in (a, b)):
        # Nothing known about either host (a lock of Python packages only): the
        # rules could only say "unknown", so their modules (10 ms) are not imported.
        return []
    from envlock.compat.rules import host_findings

    findings = []
    for locked, host, locked_name, host_name in ((a, b, labels[0], labels[1]), (b, a, labels[1], labels[0])):
        if host.nvidia is None and host.cpu is None and host.os is None:
            continue  # nothing known about that host: the rules could only say "unknown"
        # Only what would stop one lock's software on the other's host: the
        # rules' numeric and info findings (another GPU architecture, other
        # ISA flags) restate differences this diff already ranks.
        blockers = [f for f in host_findings(locked, host) if f.severity == BLOCKER]
        if not blockers:
            continue
        # A problem the lock already has on its own host is not a difference.
        own = {(f.path, f.message) for f in host_findings(locked, locked) if f.severity == BLOCKER}
        for finding in blockers:
            if (finding.path, finding.message) in own:
                continue
            findings.append(
                Finding(
                    layer=finding.layer,
                    path=f"{finding.path} ({locked_name} on {host_name}'s host)",
                    severity=finding.severity,
                    message=f"{host_name}'s host running {locked_name}'s environment: {finding.message}",
                    why=finding.why,
                    fix=finding.fix,
                    locked=finding.locked if locked is a else finding.actual,
                    actual=finding.actual if locked is a else finding.locked,
                    status=finding.status,
                    rank=finding.rank,
                )
            )
    return findings


def diff(
    a: m.Lock, b: m.Lock, labels: tuple[str, str] = ("A", "B"), *, sections: Iterable[str] = SECTIONS, host: bool = True
) -> list[Finding]:
    """Every difference between lock A and lock B, most likely to change numbers first."""
    findings: list[Finding] = []
    for name in sections:
        findings.extend(diff_section(name, getattr(a, name), getattr(b, name), labels))
    if host:
        findings.extend(host_findings_both_ways(a, b, labels))
    return sorted(findings, key=ranking_key)


def differs(findings: Iterable[Finding]) -> bool:
    """True when any finding is a real difference (unknowns do not count)."""
    return any(f.status != UNKNOWN for f in findings)


# --- digests for N-way grouping -------------------------------------------------------


def section_view(name: str, section: Any) -> Any:
    """The part of a section that :func:`diff_section` compares, as plain data.

    Two sections with equal views give no findings (tested as a property), so
    N-way grouping by :func:`section_digest` agrees with pairwise diffs.
    """
    if section is None:
        return None
    if name == "python":
        return {
            "interp": [
                section.version,
                section.implementation,
                section.abi_tag,
                section.platform_tag,
                section.environment_kind,
            ],
            "packages": sorted([_norm_python(p.name), *map(_jsonable, _python_key(p))] for p in section.packages),
        }
    if name == "conda":
        return sorted([p.name.lower(), *_conda_key(p)] for p in section.packages)
    if name == "os":
        return {
            "release": [
                section.id,
                section.version_id,
                section.architecture,
                section.kernel,
                section.glibc,
                section.libstdcxx,
            ],
            "packages": sorted([p.name, p.architecture, p.version] for p in section.packages),
        }
    if name == "cuda":
        return {
            "components": sorted({(c.name.lower(), c.version) for c in section.components}),
            "frameworks": sorted([_norm_python(f.name), f.cuda, f.cudnn, f.rocm] for f in section.frameworks),
        }
    if name == "nvidia":
        gpus = sorted(
            [
                g.name,
                g.compute_capability,
                g.multiprocessors,
                g.mig_mode,
                g.memory_total_mib,
                g.ecc_mode,
                g.compute_mode,
                g.persistence_mode,
                g.power_limit_w,
                g.max_sm_clock_mhz,
                g.max_memory_clock_mhz,
            ]
            for g in section.gpus
        )
        return {
            "driver": [section.driver_present, section.driver_version, section.cuda_driver_version],
            "gpus": [[_jsonable(v) for v in g] for g in gpus],
        }
    if name == "accelerators":
        return {
            "stack": [section.runtime, section.runtime_version, section.driver_version],
            # repr orders devices whose architecture or memory is unknown (None) among known ones.
            "devices": sorted(
                ([d.vendor, d.name, d.architecture, d.memory_total_mib] for d in section.devices), key=repr
            ),
        }
    if name == "cpu":
        return [
            section.architecture,
            sorted(set(section.flags)),
            section.microarchitecture,
            section.vendor,
            section.model_name,
            section.family,
            section.model,
            section.stepping,
            section.logical_cores,
            section.physical_cores,
            section.sockets,
            section.numa_nodes,
        ]
    if name == "runtime":
        return {
            "env": sorted(section.env.items()),
            "libraries": sorted(
                {(_norm_python(lib.package), lib.kind, lib.name, lib.version or "") for lib in section.libraries}
            ),
        }
    if name == "project":
        return [section.commit, section.dirty, section.diff_hash, section.remote, section.branch]
    raise KeyError(name)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def section_digest(name: str, section: Any) -> str | None:
    """A short digest of :func:`section_view`, or None for an unknown section."""
    view = section_view(name, section)
    if view is None:
        return None
    text = json.dumps(view, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# envlock.diff(...) is also the API function: calling this module calls it (see envlock/__init__.py).
import envlock as _envlock  # noqa: E402

_envlock._callable_module(__name__)
