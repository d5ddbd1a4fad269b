"""The CPU probe against this real machine (cross-checked with lscpu) and recorded hosts.

Recorded hosts live in tests/data/hosts/<name>/ (see each folder's README or
SOURCE.txt: real recordings unless named *synthetic*).  Expected values are
written out by hand from the recordings and from archspec's own names for
them, never computed by the code under test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from envlock.capture import cpu
from envlock.capture.collect import CaptureContext
from envlock.capture.interpreter import inspect_interpreter
from envlock.lockfile import dumps_lock, identity, parse_lock
from envlock.lockfile import model as m

HOSTS = Path(__file__).resolve().parent.parent / "data" / "hosts"


def _collect(host: str, architecture: str | None = None) -> tuple[m.CpuSection | None, list[str]]:
    warnings: list[str] = []
    return cpu.collect_cpu(str(HOSTS / host), warn=warnings.append, architecture=architecture), warnings


# (host folder, vendor, family, model, stepping, microarchitecture) — the
# microarchitecture column is archspec's name for the same recording.
RECORDED = [
    ("linux-debian12-x86_64-emeraldrapids", "GenuineIntel", 6, 207, 2, "emeraldrapids"),
    ("linux-rhel7-x86_64-haswell", "GenuineIntel", 6, 63, 2, "haswell"),
    ("linux-rhel7-x86_64-broadwell", "GenuineIntel", 6, 79, 1, "broadwell"),
    ("linux-rhel7-x86_64-skylake_avx512", "GenuineIntel", 6, 85, 4, "skylake_avx512"),
    ("linux-centos7-x86_64-cascadelake", "GenuineIntel", 6, 85, 7, "cascadelake"),
    ("linux-unknown-x86_64-sapphirerapids", "GenuineIntel", 6, 143, 6, "sapphirerapids"),
    # archspec's "alderlake" recording is a Core Ultra 9 285, model 0xC6: Arrow
    # Lake-S in Intel's numbering (archspec names it by its Alder Lake-level ISA).
    ("linux-ubuntu24.04-x86_64-alderlake", "GenuineIntel", 6, 198, 2, "arrowlake"),
    ("linux-rhel6-x86_64-piledriver", "AuthenticAMD", 21, 2, 0, "piledriver"),
    ("linux-rhel7-x86_64-zen", "AuthenticAMD", 23, 1, 2, "zen"),
    ("linux-ubuntu20.04-x86_64-zen3", "AuthenticAMD", 25, 33, 0, "zen3"),
    ("linux-rocky8.5-x86_64-zen4", "AuthenticAMD", 25, 17, 1, "zen4"),
    ("linux-rocky9-x86_64-zen5", "AuthenticAMD", 26, 68, 0, "zen5"),
    # Arm: family = CPU architecture, model = CPU part, stepping = CPU revision.
    ("linux-amazon-aarch64-cortex_a72", "ARM", 8, 0xD08, 3, "cortex_a72"),
    ("linux-amazon-aarch64-neoverse_n1", "ARM", 8, 0xD0C, 1, "neoverse_n1"),
    ("linux-rhel8-aarch64-neoverse_v1", "ARM", 8, 0xD40, 1, "neoverse_v1"),
    ("linux-rhel9-aarch64-neoverse_v2", "ARM", 8, 0xD4F, 0, "neoverse_v2"),
    ("linux-rocky8-aarch64-a64fx", "Fujitsu", 8, 0x001, 0, "a64fx"),
    ("linux-ubuntu22.04-aarch64-ampere1a", "Ampere", 8, 0xAC4, 0, "ampere1a"),
]


@pytest.mark.parametrize("host,vendor,family,model,stepping,uarch", RECORDED, ids=[r[0] for r in RECORDED])
def test_recorded_hosts_identify_their_cpu(host, vendor, family, model, stepping, uarch):
    section, warnings = _collect(host)
    assert section is not None
    assert (section.vendor, section.family, section.model, section.stepping) == (vendor, family, model, stepping)
    assert section.microarchitecture == uarch
    assert section.architecture == ("aarch64" if "aarch64" in host else "x86_64")
    assert warnings == []


def test_numerics_flags_of_recorded_hosts():
    skylake, _ = _collect("linux-rhel7-x86_64-skylake_avx512")
    assert skylake.flags == (
        "avx",
        "avx2",
        "avx512bw",
        "avx512cd",
        "avx512dq",
        "avx512f",
        "avx512vl",
        "f16c",
        "fma",
        "pni",
        "sse4_1",
        "sse4_2",
        "ssse3",
    )
    sapphire, _ = _collect("linux-unknown-x86_64-sapphirerapids")
    for flag in ("amx_tile", "amx_bf16", "amx_int8", "avx512_fp16", "avx512_bf16", "avx512_vnni", "avx_vnni"):
        assert flag in sapphire.flags
    # Flags that do not change numerics stay out of the lock.
    for flag in ("aes", "sha_ni", "rdrand", "vmx", "hypervisor", "ht"):
        assert flag not in sapphire.flags
    grace, _ = _collect("linux-rhel9-aarch64-neoverse_v2")
    assert grace.flags == (
        "asimd",
        "asimddp",
        "asimdfhm",
        "asimdhp",
        "asimdrdm",
        "bf16",
        "fcma",
        "fphp",
        "i8mm",
        "sve",
        "sve2",
        "svebf16",
        "svei8mm",
    )


def test_model_name_absent_on_arm_and_present_on_x86():
    graviton2, _ = _collect("linux-amazon-aarch64-neoverse_n1")
    assert graviton2.model_name is None
    zen5, _ = _collect("linux-rocky9-x86_64-zen5")
    assert zen5.model_name == "AMD Ryzen 9 9950X 16-Core Processor"


def test_topology_of_two_socket_smt_host():
    section, _ = _collect("linux-synthetic-x86_64-2socket-smt")
    assert (section.logical_cores, section.physical_cores, section.sockets, section.numa_nodes) == (8, 4, 2, 2)
    assert section.microarchitecture == "skylake_avx512"


def test_arm_topology_falls_back_to_sysfs(tmp_path):
    (tmp_path / "proc").mkdir()
    one_block = (HOSTS / "linux-amazon-aarch64-neoverse_n1" / "proc" / "cpuinfo").read_text()
    # Four processors, as Linux prints them: the same block with its own number.
    blocks = [one_block.replace("processor       : 0", f"processor       : {n}") for n in range(4)]
    (tmp_path / "proc" / "cpuinfo").write_text("\n".join(blocks))
    for n in range(4):
        topo = tmp_path / "sys/devices/system/cpu" / f"cpu{n}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text("0\n")
        (topo / "core_id").write_text(f"{n}\n")
    (tmp_path / "sys/devices/system/node/node0").mkdir(parents=True)
    warnings: list[str] = []
    section = cpu.collect_cpu(str(tmp_path), warn=warnings.append)
    assert (section.logical_cores, section.physical_cores, section.sockets, section.numa_nodes) == (4, 4, 1, 1)
    assert section.microarchitecture == "neoverse_n1"


def test_unknown_x86_model_gets_the_psabi_level():
    v3 = "fpu cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3 avx avx2 bmi1 bmi2 f16c fma abm movbe xsave"
    text = f"processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 250\nflags\t\t: {v3}\n"
    assert cpu.microarchitecture(cpu.parse_cpuinfo(text)) == "x86_64_v3"
    v4 = v3 + " avx512f avx512bw avx512cd avx512dq avx512vl"
    assert cpu.microarchitecture(cpu.parse_cpuinfo(text.replace(v3, v4))) == "x86_64_v4"
    # v4 flags without v3's BMI2 do not reach v3 (levels are cumulative).
    broken = v4.replace(" bmi2", "")
    assert cpu.microarchitecture(cpu.parse_cpuinfo(text.replace(v3, broken))) == "x86_64_v2"


def test_cascade_lake_and_cooper_lake_told_apart_by_flags_not_table_order():
    base = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nflags\t\t: {}\n"
    assert cpu.microarchitecture(cpu.parse_cpuinfo(base.format("avx512f"))) == "skylake_avx512"
    assert cpu.microarchitecture(cpu.parse_cpuinfo(base.format("avx512f avx512_vnni"))) == "cascadelake"
    assert cpu.microarchitecture(cpu.parse_cpuinfo(base.format("avx512_bf16 avx512f avx512_vnni"))) == "cooperlake"


def test_numerics_flag_differences_avx512_host_against_avx2_host():
    skylake, _ = _collect("linux-rhel7-x86_64-skylake_avx512")
    haswell, _ = _collect("linux-rhel7-x86_64-haswell")
    missing, extra = cpu.numerics_flag_differences(skylake.flags, haswell.flags)
    assert missing == ("avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl")
    assert extra == ()
    # The other way round, and flags that do not pick kernels are ignored.
    missing, extra = cpu.numerics_flag_differences(["avx2", "fma", "aes"], ["avx2", "fma", "avx512f", "sha_ni", "pni"])
    assert (missing, extra) == ((), ("avx512f",))
    assert cpu.numerics_flag_differences(["sve", "asimd"], ["asimd", "sve2"]) == (("sve",), ("sve2",))


def test_s390x_vendor_is_not_taken_for_x86():
    text = "vendor_id       : IBM/S390\n# processors    : 4\nfeatures\t: esan3 zarch stfle msa\n"
    info = cpu.parse_cpuinfo(text)
    assert info.architecture is None and cpu.microarchitecture(info) is None


def test_heterogeneous_cores_are_reported():
    text = (
        "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 151\nflags\t\t: avx avx2\n\n"
        "processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 151\nflags\t\t: avx\n"
    )
    info = cpu.parse_cpuinfo(text)
    assert info.flags == frozenset({"avx", "avx2"})
    assert len(info.problems) == 1 and "heterogeneous" in info.problems[0]


def test_missing_or_empty_cpuinfo_never_crashes(tmp_path):
    warnings: list[str] = []
    assert cpu.collect_cpu(str(tmp_path), warn=warnings.append) is None
    assert len(warnings) == 1 and "proc/cpuinfo" in warnings[0]
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("")
    section = cpu.collect_cpu(str(tmp_path), warn=warnings.append)
    assert section == m.CpuSection()


def test_hostile_cpuinfo_values_are_dropped_with_a_warning(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(
        "processor\t: 0\nvendor_id\t: Genuine\x1b[31mIntel\nmodel name\t: "
        + "X" * 5000
        + "\ncpu family\t: six\nflags\t\t: avx2 fma\n"
    )
    warnings: list[str] = []
    section = cpu.collect_cpu(str(tmp_path), warn=warnings.append, architecture="x86_64")
    assert section.vendor is None and section.model_name is None and section.family is None
    assert section.flags == ("avx2", "fma")
    assert len(warnings) == 2 and any("vendor" in w for w in warnings) and any("model name" in w for w in warnings)


# --- this machine, cross-checked with the real lscpu ------------------------------------


def _lscpu(path: Path | None = None) -> dict[str, str]:
    if path is None:
        if shutil.which("lscpu") is None:
            pytest.skip("lscpu is not installed")
        text = subprocess.run(["lscpu", "-J"], capture_output=True, text=True, check=True).stdout
    else:
        text = path.read_text()
    out: dict[str, str] = {}

    def walk(entries):
        for entry in entries:
            out.setdefault(entry["field"].rstrip(":"), entry.get("data") or "")
            walk(entry.get("children", []))

    walk(json.loads(text)["lscpu"])
    return out


def _assert_matches_lscpu(section: m.CpuSection, lscpu: dict[str, str]) -> None:
    assert section.vendor == lscpu["Vendor ID"]
    assert section.model_name == lscpu["Model name"]
    assert (section.family, section.model, section.stepping) == (
        int(lscpu["CPU family"]),
        int(lscpu["Model"]),
        int(lscpu["Stepping"]),
    )
    assert section.logical_cores == int(lscpu["CPU(s)"])
    assert section.sockets == int(lscpu["Socket(s)"])
    assert section.physical_cores == int(lscpu["Core(s) per socket"]) * int(lscpu["Socket(s)"])
    if "NUMA node(s)" in lscpu:  # lscpu omits the line where /sys/devices/system/node is missing
        assert section.numa_nodes == int(lscpu["NUMA node(s)"])
    assert set(section.flags) <= set(lscpu["Flags"].split())
    assert section.architecture == lscpu["Architecture"]


def test_recorded_debian_host_matches_its_recorded_lscpu():
    host = HOSTS / "linux-debian12-x86_64-emeraldrapids"
    section, _ = _collect(host.name, architecture=(host / "commands/uname-m.txt").read_text().strip())
    _assert_matches_lscpu(section, _lscpu(host / "commands" / "lscpu-J.json"))


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="needs Linux /proc")
def test_this_machine_matches_lscpu():
    ctx = CaptureContext(inspect_interpreter(None), [])
    section = cpu.probe_cpu(ctx)
    lscpu = _lscpu()
    if section.architecture == "x86_64":
        _assert_matches_lscpu(section, lscpu)
    else:  # Arm lscpu prints no family/stepping the same way; compare what it does print
        assert section.logical_cores == int(lscpu["CPU(s)"])
    assert section.microarchitecture is not None
    assert ctx.warnings == []


def test_captured_cpu_section_passes_the_lockfile_checks():
    section, _ = _collect("linux-debian12-x86_64-emeraldrapids", architecture="x86_64")
    lock = identity.with_fingerprint(m.Lock(origin="capture", cpu=section))
    loaded = parse_lock(dumps_lock(lock).encode())
    assert loaded.lock.cpu == section


def test_microarchitecture_tables_are_sorted_and_unambiguous():
    from envlock.capture import cpu_microarch as ua

    keys = [(row.vendor, row.family, row.models[0][0], len(row.requires)) for row in ua.X86_TABLE]
    assert keys == sorted(keys)
    assert list(ua.ARM_PARTS) == sorted(ua.ARM_PARTS)
    # Two rows that share a model must differ in required flags, or the match would be a tie.
    seen = {}
    for row in ua.X86_TABLE:
        for lo, hi in row.models:
            for model in range(lo, hi + 1):
                key = (row.vendor, row.family, model, row.requires)
                assert key not in seen, f"{row.name} and {seen[key]} both claim {key}"
                seen[key] = row.name


def test_doctor_compares_the_same_kernel_choice_flags_as_capture_defines():
    """compat/ keeps its own copy (compat and capture never import each other); keep the two equal."""
    from envlock.compat import rules

    assert rules.KERNEL_CHOICE_FLAGS == cpu.KERNEL_CHOICE_FLAGS
    # and every flag doctor compares is one that capture records
    assert cpu.KERNEL_CHOICE_FLAGS <= cpu.RECORDED_FLAGS
