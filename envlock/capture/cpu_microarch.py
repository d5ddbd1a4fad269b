"""Name a CPU's microarchitecture from what ``/proc/cpuinfo`` reports.

The tables are data, kept sorted by vendor, family and first model, and
written from public documentation:

* Intel family-6 model numbers: Intel's SDM vol. 4 ("Model-Specific
  Registers", table 2-1 of DisplayFamily_DisplayModel values) and the Linux
  kernel's ``arch/x86/include/asm/intel-family.h``.
* AMD Zen generations: the family/model ranges that the Linux kernel's
  ``arch/x86/kernel/cpu/amd.c`` maps to ``X86_FEATURE_ZEN1..ZEN6``.
* Arm cores: MIDR implementer and part numbers from each core's Technical
  Reference Manual and the kernel's ``arch/arm64/include/asm/cputype.h``.

A model number alone can be ambiguous: Skylake-SP, Cascade Lake and Cooper
Lake all report family 6 model 85 and differ in ISA (VNNI, BF16), which is
what matters for numerics.  Rows may therefore require flags, and the match
with the most required flags wins, so the table order never decides.

Unknown x86 models fall back to the x86-64 psABI level the flags satisfy
(``x86_64_v2`` .. ``x86_64_v4``), so a CPU newer than this table still gets a
name that says which kernels it can run.

Cloud product names are not microarchitectures: AWS Graviton 2/3/4 report
Neoverse N1/V1/V2 parts and are recorded as such.
"""

from __future__ import annotations

from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Iterable


@record
class X86Row:
    vendor: str  # vendor_id as /proc/cpuinfo prints it
    family: int
    models: tuple[tuple[int, int], ...]  # inclusive ranges
    name: str
    requires: frozenset[str] = frozenset()


def _row(vendor: str, family: int, models: Iterable[int | tuple[int, int]], name: str, requires: str = "") -> X86Row:
    ranges = tuple(m if isinstance(m, tuple) else (m, m) for m in models)
    return X86Row(vendor, family, ranges, name, frozenset(requires.split()))


_INTEL = "GenuineIntel"
_AMD = "AuthenticAMD"
_HYGON = "HygonGenuine"

# Sorted by (vendor, family, first model).
X86_TABLE: tuple[X86Row, ...] = (
    _row(_AMD, 0x10, [(0x00, 0xFF)], "k10"),
    _row(_AMD, 0x15, [(0x00, 0x01)], "bulldozer"),
    _row(_AMD, 0x15, [0x02, (0x10, 0x1F)], "piledriver"),
    _row(_AMD, 0x15, [(0x30, 0x3F)], "steamroller"),
    _row(_AMD, 0x15, [(0x60, 0x7F)], "excavator"),
    # amd.c: family 0x17 models 0x00-0x2f and 0x50-0x5f are Zen 1 (and Zen+).
    _row(_AMD, 0x17, [(0x00, 0x2F), (0x50, 0x5F)], "zen"),
    _row(_AMD, 0x17, [(0x30, 0x4F), (0x60, 0x7F), (0x90, 0x91), (0xA0, 0xAF)], "zen2"),
    _row(_AMD, 0x19, [(0x00, 0x0F), (0x20, 0x5F)], "zen3"),
    _row(_AMD, 0x19, [(0x10, 0x1F), (0x60, 0xAF)], "zen4"),
    _row(_AMD, 0x1A, [(0x00, 0x2F), (0x40, 0x4F), (0x60, 0x7F)], "zen5"),
    _row(_AMD, 0x1A, [(0x50, 0x5F), (0x80, 0xAF), (0xC0, 0xCF)], "zen6"),
    _row(_INTEL, 6, [0x1A, 0x1E, 0x1F, 0x2E], "nehalem"),
    _row(_INTEL, 6, [0x25, 0x2C, 0x2F], "westmere"),
    _row(_INTEL, 6, [0x2A, 0x2D], "sandybridge"),
    _row(_INTEL, 6, [0x3A, 0x3E], "ivybridge"),
    _row(_INTEL, 6, [0x3C, 0x3F, 0x45, 0x46], "haswell"),
    _row(_INTEL, 6, [0x3D, 0x47, 0x4F, 0x56], "broadwell"),
    # Client Skylake and its refreshes (Kaby, Coffee, Comet Lake): same ISA.
    _row(_INTEL, 6, [0x4E, 0x5E, 0x8E, 0x9E, 0xA5, 0xA6], "skylake"),
    _row(_INTEL, 6, [0x55], "skylake_avx512", "avx512f"),
    _row(_INTEL, 6, [0x55], "cascadelake", "avx512f avx512_vnni"),
    _row(_INTEL, 6, [0x55], "cooperlake", "avx512f avx512_vnni avx512_bf16"),
    _row(_INTEL, 6, [0x57], "knl"),
    _row(_INTEL, 6, [0x66], "cannonlake"),
    _row(_INTEL, 6, [0x6A, 0x6C, 0x7D, 0x7E], "icelake"),
    _row(_INTEL, 6, [0x85], "knm"),
    _row(_INTEL, 6, [0x8C, 0x8D], "tigerlake"),
    _row(_INTEL, 6, [0x8F], "sapphirerapids"),
    _row(_INTEL, 6, [0x97, 0x9A, 0xBE], "alderlake"),
    _row(_INTEL, 6, [0xA7], "rocketlake"),
    _row(_INTEL, 6, [0xAA, 0xAC], "meteorlake"),
    _row(_INTEL, 6, [0xAD, 0xAE], "graniterapids"),
    _row(_INTEL, 6, [0xAF], "sierraforest"),
    _row(_INTEL, 6, [0xB5], "arrowlake"),
    _row(_INTEL, 6, [0xB7, 0xBA, 0xBF], "raptorlake"),
    _row(_INTEL, 6, [0xBD], "lunarlake"),
    _row(_INTEL, 6, [0xC5, 0xC6], "arrowlake"),
    # Emerald Rapids has Sapphire Rapids' ISA (AMX, AVX512-FP16) in a new model number.
    _row(_INTEL, 6, [0xCF], "emeraldrapids"),
    # Hygon Dhyana licenses the Zen 1 core.
    _row(_HYGON, 0x18, [(0x00, 0xFF)], "zen"),
)

# x86-64 psABI microarchitecture levels, as /proc/cpuinfo names the flags
# (``pni`` is SSE3, ``abm`` carries LZCNT).
X86_64_LEVELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("x86_64_v2", frozenset("cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3".split())),
    ("x86_64_v3", frozenset("avx avx2 bmi1 bmi2 f16c fma abm movbe xsave".split())),
    ("x86_64_v4", frozenset("avx512f avx512bw avx512cd avx512dq avx512vl".split())),
)

# Arm MIDR implementer codes.
ARM_IMPLEMENTERS: dict[int, str] = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x46: "Fujitsu",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x51: "Qualcomm",
    0x61: "Apple",
    0xC0: "Ampere",
}

# (implementer, part) -> core name; sorted.
ARM_PARTS: dict[tuple[int, int], str] = {
    (0x41, 0xD03): "cortex_a53",
    (0x41, 0xD07): "cortex_a57",
    (0x41, 0xD08): "cortex_a72",  # AWS Graviton (1)
    (0x41, 0xD0B): "cortex_a76",
    (0x41, 0xD0C): "neoverse_n1",  # AWS Graviton2, Ampere Altra
    (0x41, 0xD0D): "cortex_a77",
    (0x41, 0xD40): "neoverse_v1",  # AWS Graviton3
    (0x41, 0xD41): "cortex_a78",
    (0x41, 0xD44): "cortex_x1",
    (0x41, 0xD46): "cortex_a510",
    (0x41, 0xD47): "cortex_a710",
    (0x41, 0xD48): "cortex_x2",
    (0x41, 0xD49): "neoverse_n2",
    (0x41, 0xD4D): "cortex_a715",
    (0x41, 0xD4E): "cortex_x3",
    (0x41, 0xD4F): "neoverse_v2",  # NVIDIA Grace, AWS Graviton4
    (0x41, 0xD83): "neoverse_v3ae",
    (0x41, 0xD84): "neoverse_v3",
    (0x41, 0xD8E): "neoverse_n3",
    (0x42, 0x516): "thunderx2",
    (0x43, 0x0AF): "thunderx2",
    (0x46, 0x001): "a64fx",
    (0x48, 0xD01): "tsv110",  # HiSilicon Kunpeng 920
    (0x4E, 0x004): "carmel",
    (0x4E, 0x010): "olympus",  # NVIDIA Vera
    (0x61, 0x022): "m1",
    (0x61, 0x023): "m1",
    (0x61, 0x032): "m2",
    (0x61, 0x033): "m2",
    (0xC0, 0xAC3): "ampere1",
    (0xC0, 0xAC4): "ampere1a",
}


def x86_microarchitecture(
    vendor: str | None, family: int | None, model: int | None, flags: Iterable[str]
) -> str | None:
    """The most specific table row that matches, else the highest x86-64 level the flags reach."""
    have = frozenset(flags)
    best: X86Row | None = None
    if vendor is not None and family is not None and model is not None:
        for row in X86_TABLE:
            if row.vendor != vendor or row.family != family:
                continue
            if not any(lo <= model <= hi for lo, hi in row.models):
                continue
            if not row.requires <= have:
                continue
            if best is None or len(row.requires) > len(best.requires):
                best = row
    if best is not None:
        return best.name
    return x86_64_level(have)


def x86_64_level(flags: frozenset[str]) -> str | None:
    """The highest psABI level whose flags (and every lower level's) are all present."""
    reached = None
    needed: frozenset[str] = frozenset()
    for name, adds in X86_64_LEVELS:
        needed = needed | adds
        if not needed <= flags:
            break
        reached = name
    return reached


def arm_microarchitecture(implementer: int | None, part: int | None) -> str | None:
    if implementer is None or part is None:
        return None
    return ARM_PARTS.get((implementer, part))


def arm_vendor(implementer: int | None) -> str | None:
    if implementer is None:
        return None
    return ARM_IMPLEMENTERS.get(implementer, f"implementer-0x{implementer:02x}")
