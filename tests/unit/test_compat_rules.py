"""host_findings: can lock B's host run lock A's software?  Scenarios built as Lock objects.

The GPU values are the ones real boards report through NVML (the same presets
as tests/fakes/nvml.py); the host scenarios through the real CLI and the fake
libnvidia-ml.so.1 are in test_doctor.py.
"""

from __future__ import annotations

import pytest

from envlock.compat import rules
from envlock.findings import BLOCKER, EXACT, INFO, NUMERIC
from envlock.lockfile import model as m

CU128_TORCH_SASS = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")

H200 = m.Gpu(index=0, name="NVIDIA H200", compute_capability="9.0", memory_total_mib=143771)
H100 = m.Gpu(index=0, name="NVIDIA H100 80GB HBM3", compute_capability="9.0", memory_total_mib=81559)
A100 = m.Gpu(index=0, name="NVIDIA A100-SXM4-80GB", compute_capability="8.0", memory_total_mib=81920)
T4 = m.Gpu(index=0, name="Tesla T4", compute_capability="7.5", memory_total_mib=15360)
V100 = m.Gpu(index=0, name="Tesla V100-SXM2-16GB", compute_capability="7.0", memory_total_mib=16384)

AVX512_FLAGS = ("avx", "avx2", "avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl", "fma", "sse4_2")
AVX2_FLAGS = ("avx", "avx2", "fma", "sse4_2")


def nvidia(driver: str | None, cuda: str | None, *gpus: m.Gpu) -> m.NvidiaSection:
    numbered = tuple(m.Gpu(**{**{f: getattr(g, f) for f in g.__slots__}, "index": i}) for i, g in enumerate(gpus))
    return m.NvidiaSection(
        driver_present=driver is not None, driver_version=driver, cuda_driver_version=cuda, source="nvml", gpus=numbered
    )


def lock(*, packages=(), frameworks=(), components=(), nv=None, cpu=None, os_=None) -> m.Lock:
    return m.Lock(
        python=m.PythonSection(packages=tuple(packages)),
        cuda=m.CudaSection(components=tuple(components), frameworks=tuple(frameworks)),
        nvidia=nv,
        cpu=cpu,
        os=os_,
    )


def torch(version: str, sass=(), ptx=()) -> m.PythonPackage:
    return m.PythonPackage(name="torch", version=version, cuda_sass=tuple(sass), cuda_ptx=tuple(ptx))


def blockers(findings):
    return [f for f in findings if f.severity == BLOCKER]


def by_severity(findings, severity, layer=None):
    return [f for f in findings if f.severity == severity and (layer is None or f.layer == layer)]


# --- the scenarios ------------------------------------------------------------


def test_h200_on_driver_580_runs_a_cuda_13_lock():
    a = lock(
        packages=[torch("2.9.0+cu130", ("sm_75", "sm_80", "sm_90", "sm_100", "sm_120"), ("compute_120",))],
        nv=nvidia("580.65.06", "13.0", H200),
    )
    b = lock(nv=nvidia("580.65.06", "13.0", H200))
    findings = rules.host_findings(a, b, include_passed=True)
    assert blockers(findings) == []
    assert by_severity(findings, NUMERIC) == []
    passed = {f.path for f in findings if f.status == EXACT}
    assert {"cuda.runtime[13.0]", "python.packages[torch].cuda-sass", "nvidia.gpus"} <= passed


def test_t4_on_driver_470_blocks_a_cuda_12_1_lock():
    a = lock(packages=[torch("2.1.0+cu121")], nv=nvidia("530.30.02", "12.1", T4))
    b = lock(nv=nvidia("470.82.01", "11.4", T4))
    found = blockers(rules.host_findings(a, b))
    assert [f.path for f in found] == ["cuda.runtime[12.1]"]
    assert found[0].layer == "driver"
    assert "530.30.02" in found[0].locked  # the 12.1 GA driver
    assert "525.60.13" in found[0].why  # the 12.x minor-version floor
    assert "cuda-compat-12-1" in found[0].fix  # T4 is a data-center GPU: forward compatibility exists


def test_geforce_gets_no_forward_compat_advice():
    rtx = m.Gpu(index=0, name="NVIDIA GeForce RTX 3090", compute_capability="8.6")
    found = blockers(
        rules.host_findings(lock(packages=[torch("2.1.0+cu121")]), lock(nv=nvidia("470.82.01", "11.4", rtx)))
    )
    assert found and "cuda-compat" not in found[0].fix


def test_v100_cannot_run_cu128_torch_recorded_kernels():
    a = lock(packages=[torch("2.7.0+cu128", CU128_TORCH_SASS, ("compute_120",))], nv=nvidia("570.124.06", "12.8", H100))
    b = lock(nv=nvidia("570.124.06", "12.8", V100))
    found = blockers(rules.host_findings(a, b))
    assert [f.path for f in found] == ["python.packages[torch].cuda-sass"]
    assert found[0].actual == "sm_70"
    assert "no kernel image is available" in found[0].why
    assert "torch 2.8 CUDA 12.6" in found[0].fix  # the published build that still has sm_70


def test_v100_cannot_run_cu128_torch_from_the_published_list():
    """An imported lock with no recorded kernels: PyTorch's published arch list decides."""
    a = lock(packages=[torch("2.7.0+cu128")])
    b = lock(nv=nvidia("570.124.06", "12.8", V100))
    found = blockers(rules.host_findings(a, b))
    assert [f.path for f in found] == ["python.packages[torch].cuda-sass"]
    assert "published list" in found[0].why


def test_a100_lock_on_h100_is_numeric():
    a = lock(packages=[torch("2.7.0+cu128", CU128_TORCH_SASS, ("compute_120",))], nv=nvidia("570.124.06", "12.8", A100))
    b = lock(nv=nvidia("570.124.06", "12.8", H100))
    findings = rules.host_findings(a, b)
    assert blockers(findings) == []
    gpu = by_severity(findings, NUMERIC, "gpu")
    assert len(gpu) == 1 and "A100" in gpu[0].locked and "H100" in gpu[0].actual


def test_tf32_is_named_when_one_side_predates_ampere():
    findings = rules.host_findings(
        lock(packages=[torch("2.8.0+cu126")], nv=nvidia("560.28.03", "12.6", V100)),
        lock(nv=nvidia("560.28.03", "12.6", A100)),
    )
    assert "TF32" in by_severity(findings, NUMERIC, "gpu")[0].why


def test_avx512_lock_host_on_avx2_host_is_numeric():
    a = lock(cpu=m.CpuSection(architecture="x86_64", vendor="GenuineIntel", flags=AVX512_FLAGS))
    b = lock(cpu=m.CpuSection(architecture="x86_64", vendor="GenuineIntel", flags=AVX2_FLAGS))
    findings = rules.host_findings(a, b)
    cpu = by_severity(findings, NUMERIC, "cpu")
    assert len(cpu) == 1 and cpu[0].path == "cpu.flags"
    assert cpu[0].locked == "avx512bw avx512cd avx512dq avx512f avx512vl"
    assert blockers(findings) == []
    # And the reverse direction: features only this host has.
    reverse = by_severity(rules.host_findings(b, a), NUMERIC, "cpu")
    assert len(reverse) == 1 and "avx512f" in reverse[0].actual


def test_no_gpu_with_a_gpu_lock_blocks():
    a = lock(packages=[torch("2.7.0+cu128", CU128_TORCH_SASS)], nv=nvidia("570.124.06", "12.8", A100, A100))
    for host in (nvidia(None, None), nvidia("570.124.06", "12.8")):
        found = blockers(rules.host_findings(a, lock(nv=host)))
        assert [f.path for f in found] == ["nvidia.gpus"]
        assert "2x NVIDIA A100-SXM4-80GB" in found[0].locked


def test_no_gpu_here_nor_on_the_lock_host_is_not_a_blocker():
    """A CUDA build captured on a machine without a GPU: nothing changes on another machine without one."""
    a = lock(packages=[torch("2.7.0+cu128", CU128_TORCH_SASS)], nv=nvidia(None, None))
    findings = rules.host_findings(a, lock(nv=nvidia(None, None)))
    assert blockers(findings) == [] and [f.severity for f in findings] == [INFO]
    # Unknown GPU state on the lock's host is not "no GPU": still a blocker.
    assert blockers(
        rules.host_findings(lock(packages=[torch("2.7.0+cu128", CU128_TORCH_SASS)]), lock(nv=nvidia(None, None)))
    )


def test_no_gpu_is_fine_for_cpu_only_software():
    a = lock(packages=[torch("2.13.0+cpu")], nv=nvidia("570.124.06", "12.8", A100))
    findings = rules.host_findings(a, lock(nv=nvidia(None, None)))
    assert blockers(findings) == [] and [f.severity for f in findings] == [INFO]


# --- driver rules -------------------------------------------------------------------------


def test_minor_version_compat_runs_with_a_note():
    a = lock(
        components=[m.CudaComponent(name="cudart", version="12.4.127", source="pip")],
        packages=[m.PythonPackage(name="ext", version="1.0", cuda_sass=("sm_80",))],
    )
    b = lock(nv=nvidia("535.104.05", "12.2", A100))
    findings = rules.host_findings(a, b)
    assert blockers(findings) == []
    notes = [f for f in findings if f.path == "cuda.runtime[12.4]"]
    assert len(notes) == 1 and notes[0].severity == INFO and "minor-version compatibility" in notes[0].message


def test_minor_version_compat_cannot_jit_ptx():
    a = lock(
        components=[m.CudaComponent(name="cudart", version="12.4.127", source="pip")],
        packages=[m.PythonPackage(name="ext", version="1.0", cuda_sass=("sm_80",), cuda_ptx=("compute_80",))],
    )
    b = lock(nv=nvidia("535.104.05", "12.2", H100))
    found = blockers(rules.host_findings(a, b))
    assert [f.path for f in found] == ["python.packages[ext].cuda-sass"]
    assert "cudaErrorUnsupportedPtxVersion" in found[0].why


def test_ptx_only_coverage_runs_through_jit():
    a = lock(
        packages=[m.PythonPackage(name="ext", version="1.0", cuda_sass=("sm_80",), cuda_ptx=("compute_80",))],
        components=[m.CudaComponent(name="cudart", version="12.4", source="system")],
    )
    findings = rules.host_findings(a, lock(nv=nvidia("550.54.14", "12.4", H100)))
    assert blockers(findings) == []
    assert [f.severity for f in findings if f.path == "python.packages[ext].cuda-sass"] == [INFO]


def test_driver_version_alone_when_cuda_version_unknown():
    a = lock(frameworks=[m.FrameworkBuild(name="torch", version="2.3.0", cuda="12.1")])
    ok = rules.host_findings(a, lock(nv=nvidia("530.30.02", None, A100)))
    assert blockers(ok) == []
    old = blockers(rules.host_findings(a, lock(nv=nvidia("520.61.05", None, A100))))
    assert [f.path for f in old] == ["cuda.runtime[12.1]"]


def test_newer_driver_major_runs_older_runtime():
    a = lock(frameworks=[m.FrameworkBuild(name="torch", version="1.13.1", cuda="11.7")])
    assert blockers(rules.host_findings(a, lock(nv=nvidia("580.65.06", "13.0", H100)))) == []


def test_unknown_driver_state_is_reported_not_blocking():
    findings = rules.host_findings(lock(packages=[torch("2.1.0+cu121")]), lock())
    assert [(f.severity, f.status) for f in findings] == [(INFO, "unknown")]


def test_toolkit_drop_table_without_recorded_kernels():
    a = lock(components=[m.CudaComponent(name="cudart", version="13.0.48", source="pip")])
    found = blockers(rules.host_findings(a, lock(nv=nvidia("580.65.06", "13.0", V100))))
    assert [f.path for f in found] == ["cuda.runtime[13.0]"] and "Volta" in found[0].why


# --- kernel arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cc,sass,ptx,expected",
    [
        ((8, 9), ("sm_86",), (), "sass"),  # "sm_86 cubins run on sm_89"
        ((8, 6), ("sm_89",), (), None),  # never on an older minor
        ((9, 0), ("sm_80", "sm_86"), (), None),  # never across majors
        ((9, 0), ("sm_80",), ("compute_80",), "ptx"),
        ((7, 0), ("sm_75",), ("compute_120",), None),  # PTX only for newer GPUs
        ((10, 0), ("sm_90a",), (), None),  # arch-specific: exactly 9.0
        ((9, 0), ("sm_90a",), (), "sass"),
        ((10, 3), ("sm_100f",), (), "sass"),  # family-specific within 10.x
        ((12, 0), (), ("compute_100a",), None),
        ((12, 1), ("sm_120",), (), "sass"),
    ],
)
def test_kernel_coverage(cc, sass, ptx, expected):
    assert rules.kernel_coverage(cc, sass, ptx) == expected


@pytest.mark.parametrize(
    "version,cuda",
    [
        ("2.1.0+cu121", (12, 1)),
        ("1.12.1+cu116", (11, 6)),
        ("1.2.0+cu92", (9, 2)),
        ("2.9.0+cu130", (13, 0)),
        ("2.13.0+cpu", None),
        ("2.1.0", None),
        ("0.16.0+cu121.post1", (12, 1)),
    ],
)
def test_cuda_from_local_label(version, cuda):
    assert rules.cuda_from_local_label(version) == cuda


def test_runtimes_are_collected_from_every_source():
    a = lock(
        packages=[torch("2.4.0+cu124"), m.PythonPackage(name="nvidia-cuda-runtime-cu12", version="12.1.105")],
        frameworks=[m.FrameworkBuild(name="jax", version="0.4.30", cuda="12.3")],
        components=[
            m.CudaComponent(name="cudart", version="13.0.48", source="system"),
            m.CudaComponent(name="nvcc", version="12.9.86", source="system"),
        ],
    )
    assert sorted(rules.cuda_runtimes(a)) == [(12, 1), (12, 3), (12, 4), (13, 0)]


# --- CPU and OS -----------------------------------------------------------------------------


def test_cpu_architecture_mismatch_blocks():
    a = lock(cpu=m.CpuSection(architecture="x86_64", flags=AVX2_FLAGS))
    b = lock(cpu=m.CpuSection(architecture="aarch64", flags=("asimd",)))
    assert [f.path for f in blockers(rules.host_findings(a, b))] == ["cpu.architecture"]


def test_cpu_vendor_change_is_numeric():
    a = lock(cpu=m.CpuSection(architecture="x86_64", vendor="GenuineIntel", flags=AVX2_FLAGS))
    b = lock(cpu=m.CpuSection(architecture="x86_64", vendor="AuthenticAMD", flags=AVX2_FLAGS))
    assert [f.path for f in by_severity(rules.host_findings(a, b), NUMERIC)] == ["cpu.vendor"]


def test_wheel_glibc_requirement_blocks_on_older_glibc():
    wheel = m.PythonPackage(
        name="fastlib",
        version="1.0",
        url="https://example.org/fastlib-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    )
    a = lock(packages=[wheel], os_=m.OsSection(glibc="2.35"))
    old = blockers(rules.host_findings(a, lock(os_=m.OsSection(glibc="2.17"))))
    assert [f.path for f in old] == ["python.packages[fastlib]"] and old[0].locked == "glibc >= 2.28"
    assert blockers(rules.host_findings(a, lock(os_=m.OsSection(glibc="2.31")))) == []


@pytest.mark.parametrize(
    "tag,glibc",
    [
        ("manylinux_2_28_x86_64", (2, 28)),
        ("manylinux2014_x86_64", (2, 17)),
        ("manylinux2010_x86_64", (2, 12)),
        ("manylinux1_x86_64", (2, 5)),
        ("linux_x86_64", None),
        ("musllinux_1_2_x86_64", None),
    ],
)
def test_glibc_from_tag(tag, glibc):
    assert rules.glibc_from_tag(tag) == glibc


def test_older_glibc_without_wheel_tags_is_info():
    findings = rules.host_findings(lock(os_=m.OsSection(glibc="2.35")), lock(os_=m.OsSection(glibc="2.31")))
    assert [(f.severity, f.path) for f in findings] == [(INFO, "os.glibc")]


def test_gpu_count_change_is_numeric():
    a = lock(packages=[torch("2.7.0+cu128", CU128_TORCH_SASS)], nv=nvidia("570.124.06", "12.8", H100, H100))
    b = lock(nv=nvidia("570.124.06", "12.8", H100))
    numeric = by_severity(rules.host_findings(a, b), NUMERIC, "gpu")
    assert [(f.locked, f.actual) for f in numeric] == [("2", "1")]


def test_compat_never_imports_capture():
    """DESIGN.md: compat is pure rules over data; doctor composes it with capture."""
    import subprocess
    import sys

    code = (
        "import sys, envlock.compat.rules, envlock.compat.data; "
        "print(sorted(n for n in sys.modules if n.startswith('envlock.capture')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_windows_hosts_use_the_windows_driver_column():
    a = lock(frameworks=[m.FrameworkBuild(name="torch", version="2.2.0", cuda="12.1")])
    windows_host = m.Lock(python=m.PythonSection(platform_tag="win_amd64"), nvidia=nvidia("531.14", None, A100))
    assert blockers(rules.host_findings(a, windows_host)) == []  # 531.14 is the 12.1 Windows minimum
    linux_host = lock(nv=nvidia("531.14", None, A100))
    assert blockers(rules.host_findings(a, linux_host)) == []  # 531.14 >= 530.30.02 on Linux too
    old_windows = m.Lock(python=m.PythonSection(platform_tag="win_amd64"), nvidia=nvidia("530.50", None, A100))
    found = blockers(rules.host_findings(a, old_windows))
    assert [f.path for f in found] == ["cuda.runtime[12.1]"] and "531.14" in found[0].locked


def test_runtime_newer_than_the_table_uses_the_driver_cuda_version():
    a = lock(
        components=[m.CudaComponent(name="cudart", version="13.5.37", source="pip")],
        packages=[m.PythonPackage(name="ext", version="1.0", cuda_sass=("sm_90",))],
    )
    assert blockers(rules.host_findings(a, lock(nv=nvidia("600.10", "13.5", H100)))) == []
    unknown = rules.host_findings(a, lock(nv=nvidia("600.10", None, H100)))
    assert [(f.severity, f.status) for f in unknown if f.path == "cuda.runtime[13.5]"] == [(INFO, "unknown")]


def test_gpus_here_but_none_on_the_lock_host_is_numeric():
    a = lock(packages=[torch("2.7.0+cu128", CU128_TORCH_SASS)], nv=nvidia(None, None))
    findings = rules.host_findings(a, lock(nv=nvidia("570.124.06", "12.8", H100)))
    assert [(f.severity, f.path) for f in findings if f.status != EXACT] == [(NUMERIC, "nvidia.gpus")]


def test_a_system_toolkit_no_package_loads_is_not_a_blocker():
    """The lock host's /usr/local/cuda 13.0 next to a Python env on CUDA 12.8 wheels, on a 12.8 driver."""
    a = lock(
        components=[
            m.CudaComponent(name="cudart", version="13.0", source="system"),
            m.CudaComponent(name="cudart", version="12.8", source="pip"),
        ],
        packages=[m.PythonPackage(name="nvidia-cublas-cu12", version="12.9.3.13", cuda_sass=("sm_90",))],
    )
    findings = rules.host_findings(a, lock(nv=nvidia("570.124.06", "12.8", H100)))
    assert blockers(findings) == []
    [note] = [f for f in findings if f.path == "cuda.runtime[13.0]"]
    assert note.severity == INFO and "system CUDA 13.0 toolkit" in note.message
    # When a package needs that runtime too, it blocks.
    b = lock(components=a.cuda.components, packages=[torch("2.9.0+cu130", ("sm_90",))])
    assert [f.path for f in blockers(rules.host_findings(b, lock(nv=nvidia("570.124.06", "12.8", H100))))] == [
        "cuda.runtime[13.0]"
    ]
