"""Hardware rules: can host B run the software locked in A, and what will differ?

Pure functions over two ``Lock`` objects (no I/O, no probing): lock A supplies
the software (CUDA runtimes, frameworks, the SASS/PTX architectures recorded
per package, wheel tags) and the host it was captured on; lock B supplies the
host to judge (driver, GPUs, CPU flags, glibc).  ``envlock doctor`` passes a
capture of this machine as B; replay's verify step passes the built image's
capture; ``envlock diff`` passes a second lockfile.

The rules encode ``shared/facts/CUDA.md`` section 3.2, with the tables in
:mod:`envlock.compat.data`:

* backward compatibility: a driver runs every runtime up to the CUDA version it
  reports;
* minor-version compatibility (CUDA 11+): an older driver of the family floor
  runs a newer runtime of the same major with a limited feature set, and
  cannot JIT-compile PTX from a newer toolkit (``cudaErrorUnsupportedPtxVersion``);
* SASS for ``sm_XY`` runs on compute capability ``X.Z`` with ``Z >= Y``;
  ``sm_XYa`` only on exactly ``X.Y``; PTX ``compute_XY`` is JIT-compiled for
  any newer GPU.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from envlock.compat import data
from envlock.findings import BLOCKER, EXACT, INFO, NUMERIC, UNKNOWN, Finding
from envlock.lockfile import model as m

# --- architectures ----------------------------------------------------------------

_ARCH = re.compile(r"(sm|compute)_([0-9]{2,3})([af]?)")


class Arch(NamedTuple):
    kind: str  # "sm" (SASS) or "compute" (PTX)
    cc: tuple[int, int]
    suffix: str  # "", "a" (arch-specific) or "f" (family-specific)

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.cc[0]}{self.cc[1]}{self.suffix}"


def parse_arch(name: str) -> Arch | None:
    """``"sm_90a"`` -> ``Arch("sm", (9, 0), "a")``; ``sm_100`` is compute capability 10.0."""
    match = _ARCH.fullmatch(name)
    if not match:
        return None
    digits = match.group(2)
    return Arch(match.group(1), (int(digits[:-1]), int(digits[-1])), match.group(3))


def sass_runs_on(arch: Arch, cc: tuple[int, int]) -> bool:
    """SASS runs within its major only, on the same or a later minor; ``a`` targets run on their exact cc."""
    if arch.suffix == "a":
        return arch.cc == cc
    return arch.cc[0] == cc[0] and arch.cc[1] <= cc[1]


def ptx_jits_for(arch: Arch, cc: tuple[int, int]) -> bool:
    """PTX is forward compatible: the driver compiles ``compute_XY`` for any GPU of cc >= X.Y."""
    if arch.suffix == "a":
        return arch.cc == cc
    if arch.suffix == "f":
        return arch.cc[0] == cc[0] and arch.cc[1] <= cc[1]
    return arch.cc <= cc


def kernel_coverage(cc: tuple[int, int], sass: tuple[str, ...], ptx: tuple[str, ...]) -> str | None:
    """``"sass"`` when a cubin runs as is, ``"ptx"`` when only JIT from PTX works, else ``None``."""
    if any(a is not None and sass_runs_on(a, cc) for a in map(parse_arch, sass)):
        return "sass"
    if any(a is not None and ptx_jits_for(a, cc) for a in map(parse_arch, ptx)):
        return "ptx"
    return None


def _arch_list_text(sass: tuple[str, ...], ptx: tuple[str, ...]) -> str:
    parts = []
    if sass:
        parts.append("SASS " + " ".join(sass))
    parts.append("PTX " + " ".join(ptx) if ptx else "no PTX")
    return "; ".join(parts)


# --- what lock A needs ------------------------------------------------------------

_CU_LABEL = re.compile(r"\+cu([0-9]{2,3})(?:$|[._-])")
_RUNTIME_COMPONENTS = {"cudart", "cuda-runtime", "cuda_runtime", "libcudart"}
_RUNTIME_WHEELS = re.compile(r"nvidia-cuda-runtime(?:-cu[0-9]+)?")


def cuda_from_local_label(version: str) -> tuple[int, int] | None:
    """``"2.1.0+cu121"`` -> ``(12, 1)``; ``+cu92`` -> ``(9, 2)``; ``+cpu`` -> ``None``."""
    match = _CU_LABEL.search(version)
    if not match:
        return None
    digits = match.group(1)
    return int(digits[:-1]), int(digits[-1])


def cuda_runtimes(lock: m.Lock) -> dict[tuple[int, int], list[str]]:
    """Every CUDA runtime ``major.minor`` the lock's software loads, with what needs it."""
    return {version: list(origins) for version, origins in _runtime_origins(lock).items()}


def system_only_runtimes(lock: m.Lock) -> set[tuple[int, int]]:
    """Runtimes that only the host's system toolkit (``/usr/local/cuda``) brings, used by no locked package.

    Dev machines often carry a system toolkit the Python environment never
    loads (it uses ``nvidia-*`` wheels or a framework's bundled runtime).
    """
    return {v for v, origins in _runtime_origins(lock).items() if all(origins.values())}


def _runtime_origins(lock: m.Lock) -> dict[tuple[int, int], dict[str, bool]]:
    """``{version: {origin: is_system_toolkit}}`` in the order found."""
    found: dict[tuple[int, int], dict[str, bool]] = {}

    def add(version: tuple[int, int] | None, origin: str, system: bool = False) -> None:
        if version is not None:
            found.setdefault(version, {}).setdefault(origin, system)

    if lock.cuda is not None:
        for fw in lock.cuda.frameworks:
            add(data.cuda_major_minor(fw.cuda), f"{fw.name} {fw.version}")
        for comp in lock.cuda.components:
            if comp.name.lower() in _RUNTIME_COMPONENTS:
                add(
                    data.cuda_major_minor(comp.version),
                    f"{comp.name} {comp.version} ({comp.source})",
                    comp.source == "system",
                )
    if lock.python is not None:
        for pkg in lock.python.packages:
            add(cuda_from_local_label(pkg.version), f"{pkg.name} {pkg.version}")
            if _RUNTIME_WHEELS.fullmatch(pkg.name):
                add(data.cuda_major_minor(pkg.version), f"{pkg.name} {pkg.version}")
    return found


class PackageKernels(NamedTuple):
    name: str
    version: str
    sass: tuple[str, ...]
    ptx: tuple[str, ...]
    origin: str  # "recorded" (read from its files at capture) or the table row's source
    # Each library's own lists when the lock records them (issue 16); empty for older locks.
    libraries: tuple[m.CudaLibrary, ...] = ()


# Libraries a framework does not load to compute on the GPU: lacking kernels
# for a GPU, they break one feature (profiling, an optional API), not the run.
# Matched on the file name; each says what is lost.
_PROFILER = (
    "a profiling library (CUPTI and its helpers): frameworks load it only for profiling "
    "(torch.profiler, Nsight, Triton's proton), so the model runs, but profiling on this GPU fails"
)
_LIBRARY_ROLES = (
    (re.compile(r"libcupti\.so"), _PROFILER),
    (re.compile(r"libnvperf_(?:host|target)\.so"), _PROFILER),
    (re.compile(r"libpcsamplingutil\.so"), _PROFILER),
    (
        re.compile(r"libcheckpoint\.so"),
        "CUDA's checkpoint helper shipped with CUPTI: loaded only to checkpoint GPU state",
    ),
    (
        re.compile(r"libcufftw\.so"),
        "the FFTW-compatible interface to cuFFT: loaded only by programs written against FFTW's API; "
        "frameworks call libcufft",
    ),
    (
        re.compile(r"libnvblas\.so"),
        "the BLAS drop-in for CPU programs: loaded only when preloaded; frameworks call libcublas",
    ),
    (
        re.compile(r"lib(?:torch_)?nvshmem[a-z0-9_]*\.so"),
        "NVSHMEM: loaded only for symmetric-memory and multi-GPU communication kernels, not for single-GPU compute",
    ),
)


def optional_library_role(file: str) -> str | None:
    """Why a library lacking kernels only warns (profiler, optional API), or ``None`` when the GPU path loads it."""
    name = file.rsplit("/", 1)[-1]
    for pattern, why in _LIBRARY_ROLES:
        if pattern.match(name):
            return why
    return None


def package_kernels(lock: m.Lock) -> list[PackageKernels]:
    """Packages with known kernel architectures: recorded at capture, else PyTorch's published lists."""
    result: list[PackageKernels] = []
    if lock.python is None:
        return result
    per_package: dict[str, list[m.CudaLibrary]] = {}
    for library in lock.python.cuda_libraries:
        per_package.setdefault(library.package, []).append(library)
    for pkg in lock.python.packages:
        if pkg.cuda_sass or pkg.cuda_ptx:
            libraries = tuple(per_package.get(pkg.name, ()))
            result.append(PackageKernels(pkg.name, pkg.version, pkg.cuda_sass, pkg.cuda_ptx, "recorded", libraries))
            continue
        cuda = cuda_from_local_label(pkg.version)
        if pkg.name == "torch" and cuda is not None:
            row = data.torch_arch_list(pkg.version, cuda)
            if row is not None:
                result.append(PackageKernels(pkg.name, pkg.version, row.sass, row.ptx, row.source))
    return result


def uses_cuda(lock: m.Lock) -> bool:
    return bool(cuda_runtimes(lock)) or bool(package_kernels(lock))


# --- what host B offers -----------------------------------------------------------


class HostGpu(NamedTuple):
    name: str
    cc: tuple[int, int] | None
    gpus: int  # how many of this model (not `count`: a NamedTuple field must not hide tuple.count)
    memory_mib: int | None
    indexes: tuple[int, ...] = ()


def host_gpus(lock: m.Lock) -> list[HostGpu]:
    """The lock's GPUs grouped by model; compute capability from NVML, else from the table by name."""
    if lock.nvidia is None:
        return []
    groups: dict[tuple[str, tuple[int, int] | None], list[m.Gpu]] = {}
    for gpu in lock.nvidia.gpus:
        cc = data.cc_tuple(gpu.compute_capability) or data.cc_tuple(data.compute_capability_for(gpu.name))
        groups.setdefault((gpu.name, cc), []).append(gpu)
    return [
        HostGpu(name, cc, len(gpus), gpus[0].memory_total_mib, tuple(g.index for g in gpus))
        for (name, cc), gpus in groups.items()
    ]


def _platform(lock: m.Lock) -> str:
    tag = lock.python.platform_tag if lock.python is not None else None
    return "windows" if tag and tag.startswith("win") else "linux"


def _cc_text(cc: tuple[int, int] | None) -> str:
    return "unknown" if cc is None else f"{cc[0]}.{cc[1]}"


def _gpu_label(gpu: HostGpu) -> str:
    count = f"{gpu.gpus}x " if gpu.gpus > 1 else ""
    return f"{count}{gpu.name} (compute capability {_cc_text(gpu.cc)})"


# --- the rules ----------------------------------------------------------------------


class _Context:
    """What the rules share while judging one pair of locks (a plain class: cheaper to import than a dataclass)."""

    def __init__(
        self,
        a: m.Lock,
        b: m.Lock,
        include_passed: bool,
        platform: str,
        runtimes: dict[tuple[int, int], list[str]],
        kernels: list[PackageKernels],
    ) -> None:
        self.a, self.b = a, b
        self.include_passed = include_passed
        self.platform = platform
        self.runtimes = runtimes
        self.system_only = system_only_runtimes(a)
        self.kernels = kernels
        self.findings: list[Finding] = []
        # False when B's driver runs some locked runtime only through minor-version
        # compatibility: then PTX from that toolkit cannot be JIT-compiled.
        self.ptx_jit_ok = True

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def passed(self, layer: str, path: str, message: str, locked: str | None = None, actual: str | None = None) -> None:
        if self.include_passed:
            self.add(Finding(layer, path, INFO, message, locked=locked, actual=actual, status=EXACT, rank=900))


def host_findings(lock_a: m.Lock, lock_b: m.Lock, *, include_passed: bool = False) -> list[Finding]:
    """Can lock B's host run lock A's locked software, and where will its numbers differ?

    Severities: ``blocker`` (will not run: driver too old or absent, no
    kernels for a GPU, wrong CPU architecture, glibc older than a wheel
    needs), ``numeric`` (runs, numbers may differ: another GPU architecture or
    count, other CPU ISA features), ``info`` (worth knowing).  With
    ``include_passed`` every check that passed is reported too (status
    ``exact``), which is what ``envlock doctor`` shows.
    """
    ctx = _Context(lock_a, lock_b, include_passed, _platform(lock_b), cuda_runtimes(lock_a), package_kernels(lock_a))
    gpus_present = _driver_rules(ctx)
    if gpus_present:
        _kernel_rules(ctx)
    _gpu_comparison_rules(ctx)
    _cpu_rules(ctx)
    _glibc_rules(ctx)
    return ctx.findings


def _needs_text(ctx: _Context) -> str:
    versions = sorted(ctx.runtimes)
    if versions:
        return "CUDA " + ", ".join(data.format_cuda(v) for v in versions)
    names = sorted({k.name for k in ctx.kernels})
    return "CUDA kernels (" + ", ".join(names) + ")"


def _driver_rules(ctx: _Context) -> bool:
    """Driver present and new enough for every runtime; returns whether B has usable GPUs to check kernels on."""
    needs_cuda = bool(ctx.runtimes) or bool(ctx.kernels)
    nv = ctx.b.nvidia
    a_gpus = host_gpus(ctx.a)
    locked_gpus = ", ".join(_gpu_label(g) for g in a_gpus) or None
    if nv is None:
        if needs_cuda:
            ctx.add(
                Finding(
                    "driver",
                    "nvidia",
                    INFO,
                    "the NVIDIA driver and GPUs of this host are unknown",
                    why=f"the lock needs {_needs_text(ctx)}; nothing was recorded about this host's driver",
                    locked=locked_gpus,
                    status=UNKNOWN,
                    rank=10,
                )
            )
        return False
    b_gpus = host_gpus(ctx.b)
    if not nv.driver_present or not b_gpus:
        a_nv = ctx.a.nvidia
        if needs_cuda and a_nv is not None and not a_gpus:
            # The lock was captured on a host without a GPU too: its software
            # evidently ran there (CUDA builds run CPU code paths), so this is no change.
            ctx.add(
                Finding(
                    "gpu",
                    "nvidia.gpus",
                    INFO,
                    f"no NVIDIA GPU here, as on the lock's host; the locked "
                    f"software ships {_needs_text(ctx)} but was captured without a GPU",
                    why="only its CPU code paths can have run where it was captured",
                    locked="none",
                    actual="none",
                    rank=50,
                )
            )
        elif needs_cuda:
            what = (
                "no NVIDIA driver"
                if not nv.driver_present
                else f"NVIDIA driver {nv.driver_version or ''} but no GPU".replace("  ", " ")
            )
            ctx.add(
                Finding(
                    "gpu",
                    "nvidia.gpus",
                    BLOCKER,
                    f"{what} on this host; the lock needs {_needs_text(ctx)}",
                    why="the locked software runs CUDA kernels; without a GPU and driver it fails at the first CUDA call "
                    "(or silently falls back to the CPU, with other numbers)",
                    fix="run on a host with an NVIDIA GPU and driver (and, in containers, the NVIDIA container toolkit: "
                    "docker run --gpus all)",
                    locked=locked_gpus,
                    actual="none",
                    rank=1,
                )
            )
        elif a_gpus:
            ctx.add(
                Finding(
                    "gpu",
                    "nvidia.gpus",
                    INFO,
                    "this host has no NVIDIA GPU; the lock's host had one, but the locked software does not use CUDA",
                    locked=locked_gpus,
                    actual="none",
                    rank=50,
                )
            )
        return False
    driver = nv.driver_version
    driver_cuda = data.cuda_major_minor(nv.cuda_driver_version)
    gpu_models = [data.gpu_model(g.name) for g in b_gpus]
    forward_ok = any(model is not None and model.forward_compat_possible for model in gpu_models)
    for runtime in sorted(ctx.runtimes):
        _runtime_rule(ctx, runtime, driver, driver_cuda, forward_ok)
    return True


def _runtime_rule(
    ctx: _Context, runtime: tuple[int, int], driver: str | None, driver_cuda: tuple[int, int] | None, forward_ok: bool
) -> None:
    rt = data.format_cuda(runtime)
    who = ", ".join(ctx.runtimes[runtime])
    full = data.minimum_driver(runtime, ctx.platform)
    full_driver = full.driver_for(ctx.platform) if full else None
    floor = data.minor_compat_floor(runtime[0])
    floor_driver = floor.driver_for(ctx.platform) if floor else None
    path = f"cuda.runtime[{rt}]"
    actual = f"driver {driver or 'unknown'}" + (f" (CUDA {data.format_cuda(driver_cuda)})" if driver_cuda else "")
    needs = (
        f"driver >= {full_driver} ({full.toolkit})" if full and full_driver else f"a driver that reports CUDA >= {rt}"
    )

    fully: bool | None
    if driver_cuda is not None:
        fully = driver_cuda >= runtime
    else:
        fully = data.driver_at_least(driver, full_driver)
    if fully:
        ctx.passed("driver", path, f"driver supports the CUDA {rt} runtime ({who})", locked=needs, actual=actual)
        return
    if fully is None:
        ctx.add(
            Finding(
                "driver",
                path,
                INFO,
                f"cannot tell whether this driver runs CUDA {rt} ({who})",
                why=f"CUDA {rt} needs {needs}; the driver's version could not be read"
                + ("" if full else "; this CUDA release is newer than envlock's driver table"),
                locked=needs,
                actual=actual,
                status=UNKNOWN,
                rank=20,
            )
        )
        return
    same_major = driver_cuda is None or driver_cuda[0] == runtime[0]
    minor_ok = floor_driver is not None and same_major and data.driver_at_least(driver, floor_driver)
    if minor_ok:
        ctx.ptx_jit_ok = False
        ctx.add(
            Finding(
                "driver",
                path,
                INFO,
                f"driver {driver} runs CUDA {rt} ({who}) only through minor-version compatibility",
                why=f"full support needs {needs}; drivers >= {floor_driver} run any CUDA {runtime[0]}.x runtime with a "
                "limited feature set: calls that need a newer driver fail with cudaErrorCallRequiresNewerDriver, "
                "and PTX from the newer toolkit cannot be JIT-compiled (cudaErrorUnsupportedPtxVersion), so every "
                "GPU needs SASS in the packages",
                fix=f"upgrade the driver to >= {full_driver}" if full_driver else "upgrade the driver",
                locked=needs,
                actual=actual,
                rank=15,
            )
        )
        return
    why = f"CUDA {rt} needs {needs}"
    if floor_driver:
        why += f"; minor-version compatibility would accept >= {floor_driver} (with limits)"
    why += f"; {actual} is older, so the runtime fails to initialise (cudaErrorInsufficientDriver)"
    fixes = [f"install NVIDIA driver >= {full_driver or floor_driver or rt}"]
    if forward_ok:
        fixes.append(
            f"or, on this data-center GPU, install the cuda-compat-{runtime[0]}-{runtime[1]} package "
            "(forward compatibility; only on supported driver branches)"
        )
    fixes.append("or use a lock built for an older CUDA")
    if runtime in ctx.system_only:
        # Only the lock host's system toolkit has this runtime; no locked package loads it.
        ctx.add(
            Finding(
                "driver",
                path,
                INFO,
                f"driver {driver} is too old for the system CUDA {rt} toolkit ({who})",
                why=why + "; no locked Python package loads this runtime, but programs built with that "
                f"toolkit fail here, and nvidia/cuda:{rt} images refuse to start (cuda>={rt} unsatisfied)",
                fix="; ".join(fixes),
                locked=needs,
                actual=actual,
                rank=16,
            )
        )
        return
    ctx.add(
        Finding(
            "driver",
            path,
            BLOCKER,
            f"driver {driver} is too old for the CUDA {rt} runtime ({who})",
            why=why,
            fix="; ".join(fixes),
            locked=needs,
            actual=actual,
            rank=2,
        )
    )


def _kernel_rules(ctx: _Context) -> None:
    """Every GPU of B needs SASS of its major or JIT-able PTX in every package that ships kernels."""
    b_gpus = [g for g in host_gpus(ctx.b) if g.cc is not None]
    for gpu in host_gpus(ctx.b):
        if gpu.cc is None:
            ctx.add(
                Finding(
                    "gpu",
                    "nvidia.gpus",
                    INFO,
                    f"compute capability of {gpu.name} is unknown; kernel coverage not checked",
                    status=UNKNOWN,
                    rank=30,
                )
            )
    for gpu in b_gpus:
        assert gpu.cc is not None
        for pkg in ctx.kernels:
            _package_kernel_rule(ctx, gpu, pkg)
        if not any(k.origin == "recorded" for k in ctx.kernels):
            _toolkit_support_rule(ctx, gpu)


def _package_kernel_rule(ctx: _Context, gpu: HostGpu, pkg: PackageKernels) -> None:
    """Judge a package by each library it records (issue 16), else by its union of architectures."""
    if not pkg.libraries:
        _kernel_verdict(ctx, gpu, pkg, pkg.sass, pkg.ptx, ())
        return
    assert gpu.cc is not None
    required: list[m.CudaLibrary] = []
    for library in pkg.libraries:
        why_optional = optional_library_role(library.file)
        if why_optional is None:
            required.append(library)
            continue
        coverage = kernel_coverage(gpu.cc, library.sass, library.ptx)
        if coverage == "sass" or (coverage == "ptx" and ctx.ptx_jit_ok):
            continue
        sm = f"sm_{gpu.cc[0]}{gpu.cc[1]}"
        archs = _arch_list_text(library.sass, library.ptx)
        ctx.add(
            Finding(
                "gpu",
                f"python.cuda-libraries[{library.file}]",
                INFO,
                f"warning: {_file_name(library.file)} ({pkg.name}) has no kernels for {_gpu_label(gpu)}",
                why=f"it carries {archs}; it is {why_optional}",
                fix=f"needed only for that feature; where it matters, install a {pkg.name} build with kernels for {sm}",
                locked=archs,
                actual=sm,
                rank=6,
            )
        )
    if not required:
        return
    # The package runs only if every library the GPU path loads has kernels: the
    # verdict is the worst library's, naming each library that falls short.
    coverages = [(lib, kernel_coverage(gpu.cc, lib.sass, lib.ptx)) for lib in required]
    short = tuple(lib for lib, cov in coverages if cov is None) or tuple(lib for lib, cov in coverages if cov == "ptx")
    if short:
        _kernel_verdict(ctx, gpu, pkg, short[0].sass, short[0].ptx, short)
    else:
        sass = tuple(sorted({a for lib in required for a in lib.sass}, key=_arch_key))
        ptx = tuple(sorted({a for lib in required for a in lib.ptx}, key=_arch_key))
        _kernel_verdict(ctx, gpu, pkg, sass, ptx, ())


def _lists_from_an_older_capture(lock: m.Lock, pkg: PackageKernels) -> bool:
    """Recorded lists in a captured lock without any per-library lists: written before issue 16's reader."""
    return pkg.origin == "recorded" and lock.python is not None and not lock.python.cuda_libraries


def _file_name(file: str) -> str:
    return file.rsplit("/", 1)[-1]


def _arch_key(name: str) -> tuple:
    arch = parse_arch(name)
    return (1, name) if arch is None else (0, arch.cc, arch.suffix)


def _kernel_verdict(
    ctx: _Context,
    gpu: HostGpu,
    pkg: PackageKernels,
    sass: tuple[str, ...],
    ptx: tuple[str, ...],
    libraries: tuple[m.CudaLibrary, ...],
) -> None:
    """One finding for a package on a GPU; ``libraries`` names the files that fall short, when known."""
    assert gpu.cc is not None
    coverage = kernel_coverage(gpu.cc, sass, ptx)
    path = f"python.packages[{pkg.name}].cuda-sass"
    archs = _arch_list_text(sass, ptx)
    source = "" if pkg.origin == "recorded" else f" (from PyTorch's published list: {pkg.origin})"
    sm = f"sm_{gpu.cc[0]}{gpu.cc[1]}"
    files = ", ".join(_file_name(lib.file) for lib in libraries)
    where = f" in {files}" if files else ""
    carrier = f"{files} ({pkg.name} {pkg.version})" if files else f"{pkg.name} {pkg.version}"
    if len(libraries) > 1:
        archs_why = "; ".join(f"{_file_name(lib.file)}: {_arch_list_text(lib.sass, lib.ptx)}" for lib in libraries)
        carries = f"{pkg.name} {pkg.version}'s {archs_why}"
    else:
        carries = f"{carrier} carries {archs}{source}"
    if coverage == "sass":
        ctx.passed("gpu", path, f"{pkg.name} has SASS for {gpu.name} ({sm})", locked=archs, actual=sm)
        return
    if coverage == "ptx" and ctx.ptx_jit_ok:
        ctx.add(
            Finding(
                "gpu",
                path,
                INFO,
                f"{pkg.name} runs on {gpu.name} ({sm}) only through PTX JIT compilation{where}",
                why=f"{carries}; the driver compiles the PTX at first launch "
                "(slow start, cached in ~/.nv/ComputeCache) with its own compiler, so the machine code is not "
                "the one a SASS build would run",
                locked=archs,
                actual=sm,
                rank=40,
            )
        )
        return
    if coverage == "ptx":
        why = (
            f"{carries}; only PTX matches {sm}, and a driver in "
            "minor-version compatibility cannot JIT-compile PTX from a newer toolkit (cudaErrorUnsupportedPtxVersion)"
        )
        fix = "upgrade the driver to fully support the locked CUDA runtime, or use a build with SASS for " + sm
    else:
        why = (
            f"{carries}; SASS runs only within its compute-capability "
            f"major (X.y on X.z, z >= y) and PTX only on the same or newer GPUs, so {gpu.name} gets "
            "'no kernel image is available for execution on the device'"
        )
        if files:
            why += f"; the framework loads {files} for its GPU work"
        fix = _kernel_fix(pkg, gpu.cc)
        if _lists_from_an_older_capture(ctx.a, pkg):
            why += (
                "; but this lock has no per-library kernel lists, so an envlock that read only .nv_fatbin "
                "captured it, and such lists miss kernels kept in other sections (libcufft.so.12 keeps all "
                "but one of its fat binaries in .ldata)"
            )
            fix = "capture the environment again with this envlock to confirm, then " + fix
    ctx.add(
        Finding(
            "gpu",
            path,
            BLOCKER,
            f"{pkg.name} has no kernels for {_gpu_label(gpu)}{where}",
            why=why,
            fix=fix,
            locked=archs,
            actual=sm,
            rank=3,
        )
    )


def _kernel_fix(pkg: PackageKernels, cc: tuple[int, int]) -> str:
    sm = f"sm_{cc[0]}{cc[1]}"
    if pkg.name == "torch":
        builds = [row for row in data.torch_arch_lists() if kernel_coverage(cc, row.sass, row.ptx) == "sass"]
        if builds:
            names = ", ".join(f"torch {row.torch} CUDA {data.format_cuda(row.cuda)}" for row in builds)
            return f"install a PyTorch build whose arch list includes {sm} (published lists that do: {names}), or use a newer GPU"
    return f"rebuild or reinstall {pkg.name} with kernels for {sm} (e.g. TORCH_CUDA_ARCH_LIST / -gencode arch=compute_{cc[0]}{cc[1]},code={sm}), or use a GPU it was built for"


def _toolkit_support_rule(ctx: _Context, gpu: HostGpu) -> None:
    """Without recorded kernels, fall back to which GPUs each CUDA release still supports."""
    assert gpu.cc is not None
    for runtime, who in sorted(ctx.runtimes.items()):
        rt = data.format_cuda(runtime)
        dropped = data.unsupported_by_cuda(runtime, gpu.cc)
        if dropped is not None:
            when = (
                f"removed in CUDA {data.format_cuda(dropped.cuda)}"
                if dropped.status == "removed"
                else f"last supported by CUDA {data.format_cuda(dropped.cuda)}"
            )
            ctx.add(
                Finding(
                    "cuda",
                    f"cuda.runtime[{rt}]",
                    INFO if runtime in ctx.system_only else BLOCKER,
                    f"CUDA {rt} ({', '.join(who)}) does not support {_gpu_label(gpu)}",
                    why=f"{dropped.architecture} GPUs (compute capability {' '.join(dropped.patterns)}) were {when} "
                    f"({dropped.source}); the toolkit's libraries carry no kernels for them",
                    fix=f"use a lock built with a CUDA release that still supports compute capability {_cc_text(gpu.cc)}, "
                    "or a newer GPU",
                    locked=f"CUDA {rt}",
                    actual=f"sm_{gpu.cc[0]}{gpu.cc[1]}",
                    rank=4,
                )
            )
            continue
        deprecated = data.deprecated_in_cuda(runtime, gpu.cc)
        if deprecated is not None:
            ctx.add(
                Finding(
                    "cuda",
                    f"cuda.runtime[{rt}]",
                    INFO,
                    f"{gpu.name} ({_cc_text(gpu.cc)}) is deprecated in CUDA {rt}",
                    why=f"{deprecated.architecture} is feature-complete and slated for removal ({deprecated.source}); "
                    "some wheels built for this CUDA already omit its kernels",
                    rank=60,
                )
            )
        model = data.gpu_model(gpu.name)
        if model is not None and model.first_cuda is not None and runtime < model.first_cuda:
            ctx.add(
                Finding(
                    "cuda",
                    f"cuda.runtime[{rt}]",
                    INFO,
                    f"CUDA {rt} predates {model.gpu} (first supported in CUDA {data.format_cuda(model.first_cuda)})",
                    why="its libraries carry no SASS for this GPU; kernels can only come from PTX JIT, "
                    "if the packages ship PTX",
                    rank=45,
                )
            )


# Compute capability 8.0 (Ampere) introduced TF32 tensor cores.
_TF32_FROM = (8, 0)


def _gpu_comparison_rules(ctx: _Context) -> None:
    a_gpus, b_gpus = host_gpus(ctx.a), host_gpus(ctx.b)
    if not a_gpus and b_gpus and ctx.a.nvidia is not None and (ctx.runtimes or ctx.kernels):
        ctx.add(
            Finding(
                "gpu",
                "nvidia.gpus",
                NUMERIC,
                "this host has GPUs; the lock's host had none",
                why="the locked software was captured where only its CPU code paths could run; code that picks a GPU "
                "when one is present (device='cuda' if available) will compute here with CUDA kernels instead",
                fix="force the device the results were made with (e.g. CUDA_VISIBLE_DEVICES= for CPU)",
                locked="none",
                actual=", ".join(_gpu_label(g) for g in b_gpus),
                rank=8,
            )
        )
        return
    if not a_gpus or not b_gpus:
        return
    a_total = sum(g.gpus for g in a_gpus)
    b_total = sum(g.gpus for g in b_gpus)
    a_ccs = {g.cc for g in a_gpus}
    b_ccs = {g.cc for g in b_gpus}
    a_text = ", ".join(_gpu_label(g) for g in a_gpus)
    b_text = ", ".join(_gpu_label(g) for g in b_gpus)
    if a_ccs != b_ccs:
        why = (
            "cuBLAS, cuDNN and the frameworks choose kernels (tile sizes, tensor-core algorithms, split-K "
            "reductions) per GPU architecture, so the same code sums in another order and gives other "
            "floating-point results"
        )
        known = [cc for cc in a_ccs | b_ccs if cc is not None]
        if known and min(known) < _TF32_FROM <= max(known):
            why += (
                "; TF32 tensor cores exist only from compute capability 8.0: there PyTorch runs cuDNN "
                "convolutions in TF32 by default (10-bit mantissa), before 8.0 in full FP32"
            )
        ctx.add(
            Finding(
                "gpu",
                "nvidia.gpus",
                NUMERIC,
                "different GPU architecture than the lock's host",
                why=why,
                fix="compare results on the locked GPU model; to narrow the gap pin the math: NVIDIA_TF32_OVERRIDE=0, "
                "torch.backends.cudnn.deterministic=True, CUBLAS_WORKSPACE_CONFIG=:4096:8",
                locked=a_text,
                actual=b_text,
                rank=5,
            )
        )
    elif {g.name for g in a_gpus} != {g.name for g in b_gpus}:
        ctx.add(
            Finding(
                "gpu",
                "nvidia.gpus",
                INFO,
                "different GPU model of the same architecture",
                why="same compute capability, so the same kernels exist; SM count and memory size can still "
                "steer library heuristics (cuBLAS algorithm choice, batch sizes that fit)",
                locked=a_text,
                actual=b_text,
                rank=55,
            )
        )
    else:
        ctx.passed("gpu", "nvidia.gpus", "same GPU model as the lock's host", locked=a_text, actual=b_text)
    if a_total != b_total:
        ctx.add(
            Finding(
                "gpu",
                "nvidia.gpus",
                NUMERIC if max(a_total, b_total) > 1 else INFO,
                f"{b_total} GPU(s) here, {a_total} on the lock's host",
                why="multi-GPU runs reduce gradients across devices: another world size changes the reduction order "
                "and, unless the global batch is fixed, the per-device batch",
                fix="run with the locked number of processes/devices (or fix the global batch size)",
                locked=str(a_total),
                actual=str(b_total),
                rank=25,
            )
        )
    a_mem = {g.name: g.memory_mib for g in a_gpus}
    for g in b_gpus:
        locked_mem = a_mem.get(g.name)
        if locked_mem is None and len(a_gpus) == 1:
            locked_mem = a_gpus[0].memory_mib
        if locked_mem and g.memory_mib and g.memory_mib < locked_mem:
            ctx.add(
                Finding(
                    "gpu",
                    "nvidia.gpus",
                    INFO,
                    f"{g.name} has less memory ({g.memory_mib} MiB) than the lock's GPU ({locked_mem} MiB)",
                    why="batch sizes or models that fit there may run out of memory here",
                    locked=f"{locked_mem} MiB",
                    actual=f"{g.memory_mib} MiB",
                    rank=70,
                )
            )


# ISA flags whose presence changes which BLAS / oneDNN / MKL kernels run (the
# dispatch ladders of oneDNN and MKL's CNR code paths), or how a*b+c rounds.
KERNEL_CHOICE_FLAGS: frozenset[str] = frozenset(
    """
    sse4_1 sse4_2 avx avx2 fma f16c
    avx512f avx512cd avx512bw avx512dq avx512vl avx512ifma avx512vbmi
    avx512_vbmi2 avx512_vnni avx512_bf16 avx512_fp16 avx512_bitalg avx512_vpopcntdq
    avx_vnni avx_vnni_int8 avx_vnni_int16 avx_ifma avx_ne_convert
    amx_tile amx_bf16 amx_int8 amx_fp16 amx_complex
    asimd asimdhp fphp asimddp asimdfhm asimdrdm fcma
    sve sve2 svebf16 svei8mm svef32mm svef64mm bf16 i8mm sme sme2
    """.split()
)


def _cpu_rules(ctx: _Context) -> None:
    a, b = ctx.a.cpu, ctx.b.cpu
    if a is None or b is None:
        return
    if a.architecture and b.architecture and a.architecture != b.architecture:
        ctx.add(
            Finding(
                "cpu",
                "cpu.architecture",
                BLOCKER,
                f"CPU architecture {b.architecture} here, {a.architecture} in the lock",
                why="compiled wheels and OS packages are built for one instruction set",
                fix=f"run on an {a.architecture} host (or rebuild every binary package for {b.architecture})",
                locked=a.architecture,
                actual=b.architecture,
                rank=1,
            )
        )
        return
    flags_a = set(a.flags) & KERNEL_CHOICE_FLAGS
    flags_b = set(b.flags) & KERNEL_CHOICE_FLAGS
    missing = sorted(flags_a - flags_b)
    extra = sorted(flags_b - flags_a)
    pin = (
        "to get one code path on both hosts pin it: MKL_CBWR=AVX2 (MKL), OPENBLAS_CORETYPE=Haswell (OpenBLAS), "
        "ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN)"
    )
    why = (
        "OpenBLAS, MKL and oneDNN pick kernels by CPU features at run time; other kernels block, vectorise and "
        "fuse multiply-adds differently, so float results can differ in the last bits"
    )
    if missing:
        ctx.add(
            Finding(
                "cpu",
                "cpu.flags",
                NUMERIC,
                "this CPU lacks ISA features the lock's host had: " + " ".join(missing),
                why=why + "; a binary compiled to require them would stop with 'illegal instruction'",
                fix=pin,
                locked=" ".join(missing),
                actual="absent",
                rank=30,
            )
        )
    if extra:
        ctx.add(
            Finding(
                "cpu",
                "cpu.flags",
                NUMERIC,
                "this CPU has ISA features the lock's host lacked: " + " ".join(extra),
                why=why,
                fix=pin,
                locked="absent",
                actual=" ".join(extra),
                rank=35,
            )
        )
    if not missing and not extra:
        ctx.passed("cpu", "cpu.flags", "same numerics-relevant CPU features as the lock's host")
    if a.vendor and b.vendor and a.vendor != b.vendor:
        ctx.add(
            Finding(
                "cpu",
                "cpu.vendor",
                NUMERIC,
                f"CPU vendor {b.vendor} here, {a.vendor} in the lock",
                why="MKL takes other code paths on non-Intel CPUs even with the same ISA flags",
                fix="MKL_CBWR pins MKL's code path on both hosts",
                locked=a.vendor,
                actual=b.vendor,
                rank=32,
            )
        )
    elif (
        a.microarchitecture
        and b.microarchitecture
        and a.microarchitecture != b.microarchitecture
        and not (missing or extra)
    ):
        ctx.add(
            Finding(
                "cpu",
                "cpu.microarchitecture",
                INFO,
                "different CPU microarchitecture, same ISA features",
                why="the same kernels run; only thread timing (and so dynamic scheduling) differs",
                locked=a.microarchitecture,
                actual=b.microarchitecture,
                rank=80,
            )
        )


_MANYLINUX = re.compile(r"manylinux_([0-9]+)_([0-9]+)_")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def glibc_from_tag(tag: str) -> tuple[int, int] | None:
    """The glibc a platform tag requires: ``manylinux_2_28_x86_64`` -> (2, 28); ``manylinux2014_*`` -> (2, 17)."""
    match = _MANYLINUX.match(tag + "_")
    if match:
        return int(match.group(1)), int(match.group(2))
    for legacy, version in _LEGACY_MANYLINUX.items():
        if tag.startswith(legacy + "_"):
            return version
    return None


def wheel_glibc_requirements(lock: m.Lock) -> list[tuple[str, tuple[int, int]]]:
    """(package, glibc) for each locked wheel whose file name (from its URL) carries manylinux tags."""
    found: list[tuple[str, tuple[int, int]]] = []
    if lock.python is None:
        return found
    for pkg in lock.python.packages:
        if not pkg.url or not pkg.url.split("#", 1)[0].endswith(".whl"):
            continue
        filename = pkg.url.split("#", 1)[0].rsplit("/", 1)[-1]
        platform_part = filename[:-4].split("-")[-1]
        needs = [g for g in (glibc_from_tag(t) for t in platform_part.split(".")) if g is not None]
        if needs:
            # A wheel with several tags installs where the least demanding one fits.
            found.append((pkg.name, min(needs)))
    return found


def _glibc_rules(ctx: _Context) -> None:
    b_os = ctx.b.os
    host = data.cc_tuple(b_os.glibc) if b_os is not None else None
    if host is None:
        return
    host_text = f"{host[0]}.{host[1]}"
    too_new = [(name, need) for name, need in wheel_glibc_requirements(ctx.a) if need > host]
    for name, need in sorted(too_new):
        ctx.add(
            Finding(
                "os",
                f"python.packages[{name}]",
                BLOCKER,
                f"{name}'s wheel needs glibc >= {need[0]}.{need[1]}; this host has {host_text}",
                why="manylinux wheels declare the oldest glibc they run on; an older glibc fails to load "
                "them ('version GLIBC_2.xx not found')",
                fix="use a newer base OS (or container image) for the replay",
                locked=f"glibc >= {need[0]}.{need[1]}",
                actual=host_text,
                rank=6,
            )
        )
    a_os = ctx.a.os
    locked = data.cc_tuple(a_os.glibc) if a_os is not None else None
    if locked is not None and host < locked and not too_new:
        ctx.add(
            Finding(
                "os",
                "os.glibc",
                INFO,
                f"glibc {host_text} here is older than the lock's host ({locked[0]}.{locked[1]})",
                why="wheels resolved on the lock's host may carry manylinux tags up to its glibc; those whose "
                "tags are not recorded in the lock could fail to install or load here",
                locked=f"{locked[0]}.{locked[1]}",
                actual=host_text,
                rank=65,
            )
        )
    elif locked is not None:
        ctx.passed(
            "os",
            "os.glibc",
            "glibc is as new as the lock's host's",
            locked=f"{locked[0]}.{locked[1]}",
            actual=host_text,
        )
