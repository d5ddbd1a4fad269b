"""The CPU layer: vendor, model, microarchitecture, numerics ISA flags, topology.

``read_*`` do the I/O (each takes a ``root`` so tests can point them at a
recorded host folder), ``parse_*`` are pure, ``probe_cpu`` builds the model.
No subprocess: ``/proc/cpuinfo`` and ``/sys`` carry everything, and the probe
costs about 0.2 ms on this 2-CPU host (timed, with the OS probe, in
tests/unit/test_capture_os.py::test_probes_are_fast_and_start_no_process).
"""

from __future__ import annotations

import os
import re

from envlock.capture import cpu_microarch
from envlock.capture.hostfiles import read_host_text
from envlock.lockfile import fields as chk
from envlock.lockfile import model as m
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable, Iterable

# ISA flags whose presence changes which kernels BLAS (OpenBLAS, MKL, BLIS),
# oneDNN and the frameworks pick, or changes rounding (FMA contracts a*b+c
# into one rounding).  oneDNN's ISA ladder (sse41, avx, avx2, avx2_vnni,
# avx512_core, avx512_core_vnni, avx512_core_bf16, avx512_core_fp16,
# avx512_core_amx) and MKL's CNR code paths (SSE4_2, AVX, AVX2, AVX512,
# AVX512_E1 = VNNI ...) are keyed on exactly these.
KERNEL_CHOICE_FLAGS_X86: frozenset[str] = frozenset(
    """
    sse4_1 sse4_2 avx avx2 fma f16c
    avx512f avx512cd avx512bw avx512dq avx512vl avx512ifma avx512vbmi
    avx512_vbmi2 avx512_vnni avx512_bf16 avx512_fp16 avx512_bitalg avx512_vpopcntdq
    avx_vnni avx_vnni_int8 avx_vnni_int16 avx_ifma avx_ne_convert
    amx_tile amx_bf16 amx_int8 amx_fp16 amx_complex
    """.split()
)
# The Arm equivalents: half-precision arithmetic, dot products, SVE/SVE2
# vector length agnostic kernels, BF16/I8MM matrix instructions, SME.
KERNEL_CHOICE_FLAGS_ARM: frozenset[str] = frozenset(
    """
    asimd asimdhp fphp asimddp asimdfhm asimdrdm fcma
    sve sve2 svebf16 svei8mm svef32mm svef64mm bf16 i8mm sme sme2
    """.split()
)
KERNEL_CHOICE_FLAGS = KERNEL_CHOICE_FLAGS_X86 | KERNEL_CHOICE_FLAGS_ARM

# What is recorded in the lock: the kernel-choice flags plus a few that change
# numerics in other ways (FMA4 on old AMD, SSSE3/SSE3 gates in older wheels).
RECORDED_FLAGS: frozenset[str] = KERNEL_CHOICE_FLAGS | frozenset("ssse3 pni fma4 xop".split())


@record
class CpuInfo:
    """What ``parse_cpuinfo`` reads from ``/proc/cpuinfo`` (every field may be absent)."""

    architecture: str | None = None
    vendor: str | None = None
    model_name: str | None = None
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    arm_implementer: int | None = None
    arm_part: int | None = None
    flags: frozenset[str] = frozenset()
    logical_cores: int | None = None
    physical_cores: int | None = None
    sockets: int | None = None
    problems: tuple[str, ...] = ()


_INT = re.compile(r"(0x[0-9a-fA-F]+|[0-9]+)")


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    match = _INT.fullmatch(value.strip())
    if not match:
        return None
    text = match.group(1)
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def parse_cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    """One ``{key: value}`` per processor block (blank-line separated)."""
    blocks: list[dict[str, str]] = []
    for chunk in text.split("\n\n"):
        block: dict[str, str] = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                block[key.strip()] = value.strip()
        if block:
            blocks.append(block)
    return blocks


def guess_architecture(blocks: list[dict[str, str]]) -> str | None:
    """For a recorded cpuinfo without ``uname -m``: x86 blocks name a vendor, Arm ones an implementer."""
    for block in blocks:
        if block.get("vendor_id") in _X86_VENDORS:
            return "x86_64"
        if "CPU implementer" in block:
            return "aarch64"
    return None


# s390x also prints a vendor_id ("IBM/S390"), so only these mean x86.
_X86_VENDORS = frozenset({"GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls", "  Shanghai  ", "Shanghai"})


def parse_cpuinfo(text: str, architecture: str | None = None) -> CpuInfo:
    """Pure: the CPU description and the topology that ``/proc/cpuinfo`` shows.

    Logical cores are the ``processor`` entries; physical cores are the unique
    ``(physical id, core id)`` pairs and sockets the unique ``physical id``s
    (absent on Arm and in some VMs, then ``None``: ``topology_from_sysfs``
    fills them).  On Arm, ``family`` is the ``CPU architecture`` (8),
    ``model`` the ``CPU part`` and ``stepping`` the ``CPU revision``.
    """
    blocks = parse_cpuinfo_blocks(text)
    processors = [b for b in blocks if "processor" in b and _int(b.get("processor")) is not None]
    if architecture is None:
        architecture = guess_architecture(blocks)
    # Descriptive fields come from the first processor block; Arm kernels
    # before 3.19 printed a trailing block with "Hardware"/"Revision" only.
    first = processors[0] if processors else (blocks[0] if blocks else {})
    flags_text = first.get("flags") or first.get("Features") or ""
    flags = frozenset(flags_text.split())
    problems: list[str] = []
    if len({b.get("flags") or b.get("Features") for b in processors}) > 1:
        problems.append(
            "cpu: processors report different ISA flags (heterogeneous cores); recorded those of processor 0"
        )

    topology = {(b.get("physical id"), b.get("core id")) for b in processors}
    has_topology = bool(processors) and all(p is not None and c is not None for p, c in topology)
    implementer = _int(first.get("CPU implementer"))
    is_arm = implementer is not None
    return CpuInfo(
        architecture=architecture,
        vendor=cpu_microarch.arm_vendor(implementer) if is_arm else first.get("vendor_id"),
        model_name=first.get("model name") or None,
        family=_int(first.get("CPU architecture")) if is_arm else _int(first.get("cpu family")),
        model=_int(first.get("CPU part")) if is_arm else _int(first.get("model")),
        stepping=_int(first.get("CPU revision")) if is_arm else _int(first.get("stepping")),
        arm_implementer=implementer,
        arm_part=_int(first.get("CPU part")),
        flags=flags,
        logical_cores=len(processors) or None,
        physical_cores=len(topology) if has_topology else None,
        sockets=len({p for p, _ in topology}) if has_topology else None,
        problems=tuple(problems),
    )


def microarchitecture(info: CpuInfo) -> str | None:
    if info.arm_implementer is not None:
        return cpu_microarch.arm_microarchitecture(info.arm_implementer, info.arm_part)
    if info.architecture is None and info.vendor not in _X86_VENDORS:
        return None
    if info.architecture not in (None, "x86_64", "i686", "i386", "amd64"):
        return None
    return cpu_microarch.x86_microarchitecture(info.vendor, info.family, info.model, info.flags)


def recorded_flags(flags: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(flags) & RECORDED_FLAGS))


def numerics_flag_differences(
    flags_a: Iterable[str], flags_b: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Pure: kernel-choice flags host A has that B lacks (``missing``), and those only B has (``extra``).

    Only flags that change which BLAS/oneDNN/MKL kernels run are compared, so
    a difference here means the same code may take a different numerical path.
    """
    a = set(flags_a) & KERNEL_CHOICE_FLAGS
    b = set(flags_b) & KERNEL_CHOICE_FLAGS
    return tuple(sorted(a - b)), tuple(sorted(b - a))


# --- I/O -----------------------------------------------------------------------

_NODE_DIR = re.compile(r"node[0-9]+")


def read_cpuinfo(root: str = "/") -> str | None:
    return read_host_text(root, "/proc/cpuinfo")


def read_numa_nodes(root: str = "/") -> int | None:
    """The number of ``/sys/devices/system/node/nodeN`` directories, or ``None`` without that folder."""
    try:
        names = os.listdir(os.path.join(root, "sys/devices/system/node"))
    except OSError:
        return None
    return sum(1 for name in names if _NODE_DIR.fullmatch(name)) or None


def read_topology_from_sysfs(root: str = "/") -> tuple[int | None, int | None]:
    """(physical cores, sockets) from ``/sys/devices/system/cpu/cpuN/topology`` when cpuinfo lacks them (Arm)."""
    base = os.path.join(root, "sys/devices/system/cpu")
    try:
        names = [n for n in os.listdir(base) if re.fullmatch(r"cpu[0-9]+", n)]
    except OSError:
        return None, None
    pairs = set()
    for name in names:
        package = read_host_text(base, f"{name}/topology/physical_package_id")
        core = read_host_text(base, f"{name}/topology/core_id")
        if package is None or core is None:
            continue
        pairs.add((package.strip(), core.strip()))
    if not pairs:
        return None, None
    return len(pairs), len({p for p, _ in pairs})


def _machine() -> str | None:
    try:
        return os.uname().machine or None
    except AttributeError:  # not a POSIX system
        return None


def collect_cpu(
    root: str = "/", *, warn: Callable[[str], None], architecture: str | None = None
) -> m.CpuSection | None:
    """The CPU section of the host whose files live under ``root``; ``None`` without ``/proc/cpuinfo``."""
    text = read_cpuinfo(root)
    if text is None:
        warn(f"cpu: {os.path.join(root, 'proc/cpuinfo')} could not be read; CPU layer recorded as unknown")
        return None
    info = parse_cpuinfo(text, architecture)
    for problem in info.problems:
        warn(problem)
    physical, sockets = info.physical_cores, info.sockets
    if physical is None:
        physical, sockets = read_topology_from_sysfs(root)
    return build_cpu_section(
        info, physical_cores=physical, sockets=sockets, numa_nodes=read_numa_nodes(root), warn=warn
    )


def build_cpu_section(
    info: CpuInfo,
    *,
    physical_cores: int | None,
    sockets: int | None,
    numa_nodes: int | None,
    warn: Callable[[str], None],
) -> m.CpuSection:
    """The model object, with every string that fails its lockfile check dropped and reported."""

    def checked(name: str, value: str | None, check: chk.Check) -> str | None:
        if value is None:
            return None
        problem = check(value)
        if problem:
            warn(f"cpu: {name} {problem}; not recorded")
            return None
        return value

    return m.CpuSection(
        architecture=checked("architecture", info.architecture, chk.token),
        vendor=checked("vendor", info.vendor, chk.text),
        model_name=checked("model name", info.model_name, chk.text),
        family=info.family,
        model=info.model,
        stepping=info.stepping,
        microarchitecture=checked("microarchitecture", microarchitecture(info), chk.token),
        # Allow-listed names only, so every flag passes the token check.
        flags=recorded_flags(info.flags),
        logical_cores=info.logical_cores,
        physical_cores=physical_cores,
        sockets=sockets,
        numa_nodes=numa_nodes,
    )


def probe_cpu(ctx) -> m.CpuSection | None:
    """Capture this machine's CPU."""
    return collect_cpu("/", warn=ctx.warn, architecture=_machine())
