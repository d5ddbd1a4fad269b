"""Doctor's kernel verdict per library (issue 16), on a real CUDA 13 capture and on pure locks.

The real case: the CUDA 13 cuFFT, cuSPARSE, CUPTI and runtime wheels that
torch 2.14.1+cu130 pins (tests/envs.py ``cuda13_kernels_venv``), captured by
the CLI on an H200 host played by the fake ``libnvidia-ml.so.1`` with driver
580, then judged by ``envlock doctor`` on three simulated hosts.
"""

from __future__ import annotations

import json

import pytest

from envlock.compat.rules import host_findings
from envlock.findings import BLOCKER, INFO
from envlock.lockfile import io
from envlock.lockfile import model as m
from tests.conftest import run_envlock
from tests.fakes.nvml import H200, RTX_4090, V100_SXM2_16GB, FakeHost  # noqa: F401  (fixtures via conftest)

CUFFT = "nvidia/cu13/lib/libcufft.so.12"
CUPTI = "nvidia/cu13/lib/libcupti.so.13"
H200_ON_580 = FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(H200,))


def doctor(lock, env: dict) -> tuple[int, dict]:
    result = run_envlock("doctor", str(lock), "--json", env=env)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def of_severity(report: dict, severity: str) -> list[dict]:
    return [f for f in report["findings"] if f["severity"] == severity]


@pytest.fixture
def cu130_lock(fake_nvml, tmp_path):
    """The CUDA 13 wheels env captured on the H200/driver-580 host; (lock path, cache env)."""
    from tests.envs import TestEnvError, cuda13_kernels_venv

    try:
        venv = cuda13_kernels_venv()
    except TestEnvError as exc:
        pytest.skip(f"cannot build the CUDA 13 wheels test env: {exc}")
    lock = tmp_path / "cu130.lock"
    cache = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    captured = run_envlock(
        "capture", "--python", str(venv.python), "-o", str(lock), "-q", env={**fake_nvml.env(H200_ON_580), **cache}
    )
    assert captured.returncode == 0, captured.stderr
    return lock, cache


def test_capture_records_every_library_and_show_json_has_them(cu130_lock):
    lock, cache = cu130_lock
    loaded = io.load_lock(lock).lock
    assert [g.name for g in loaded.nvidia.gpus] == ["NVIDIA H200"]
    cufft = next(p for p in loaded.python.packages if p.name == "nvidia-cufft")
    assert "sm_90" in cufft.cuda_sass  # the section-only reader recorded ["sm_75"]
    shown = run_envlock("show", str(lock), "--json", env=cache)
    assert shown.returncode == 0, shown.stderr
    libraries = {lib["file"]: lib for lib in json.loads(shown.stdout)["python"]["cuda-libraries"]}
    assert libraries[CUFFT]["package"] == "nvidia-cufft"
    assert {"sm_75", "sm_89", "sm_90", "sm_120"} <= set(libraries[CUFFT]["sass"])
    assert libraries[CUPTI]["package"] == "nvidia-cuda-cupti" and "sm_90" in libraries[CUPTI]["sass"]


def test_the_capture_host_runs_its_own_lock(cu130_lock, fake_nvml):
    lock, cache = cu130_lock
    code, report = doctor(lock, {**fake_nvml.env(H200_ON_580), **cache})
    assert (code, of_severity(report, BLOCKER)) == (0, [])
    passed = {f["path"] for f in report["findings"] if f["status"] == "exact"}
    assert "python.packages[nvidia-cufft].cuda-sass" in passed


def test_an_rtx_4090_with_a_newer_driver_runs_it(cu130_lock, fake_nvml):
    lock, cache = cu130_lock
    newer = FakeHost(driver_version="590.44.01", cuda_driver_version=13010, gpus=(RTX_4090,))
    code, report = doctor(lock, {**fake_nvml.env(newer), **cache})
    assert (code, of_severity(report, BLOCKER)) == (0, [])


def test_a_v100_cannot_and_the_blocker_names_the_library(cu130_lock, fake_nvml):
    lock, cache = cu130_lock
    v100 = FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(V100_SXM2_16GB,))
    code, report = doctor(lock, {**fake_nvml.env(v100), **cache})
    assert code == 1
    blockers = of_severity(report, BLOCKER)
    assert [f["path"] for f in blockers] == ["python.packages[nvidia-cufft].cuda-sass"]
    assert "libcufft.so.12" in blockers[0]["message"] and "Tesla V100" in blockers[0]["message"]
    # cuSPARSE carries sm_70 SASS (in .rodata): it runs.  CUPTI does not, but only warns.
    warnings = {f["path"]: f for f in of_severity(report, INFO) if f["message"].startswith("warning:")}
    assert "profil" in warnings[f"python.cuda-libraries[{CUPTI}]"]["why"]
    assert "python.cuda-libraries[nvidia/cu13/lib/libcufftw.so.12]" in warnings


# --- the rule over pure locks -------------------------------------------------------------


def _lock(libraries: tuple[m.CudaLibrary, ...]) -> m.Lock:
    packages = {}
    for lib in libraries:
        sass, ptx = packages.get(lib.package, ((), ()))
        packages[lib.package] = (tuple(sorted(set(sass + lib.sass))), tuple(sorted(set(ptx + lib.ptx))))
    return m.Lock(
        python=m.PythonSection(
            packages=tuple(
                m.PythonPackage(name=name, version="1.0", cuda_sass=sass, cuda_ptx=ptx)
                for name, (sass, ptx) in sorted(packages.items())
            ),
            cuda_libraries=libraries,
        )
    )


def _host(cc: str, name: str = "GPU") -> m.Lock:
    gpu = m.Gpu(index=0, name=name, compute_capability=cc)
    return m.Lock(nvidia=m.NvidiaSection(driver_present=True, driver_version="590.44.01", gpus=(gpu,)))


def test_a_library_the_gpu_path_loads_blocks_even_when_a_sibling_covers_the_gpu():
    lock = _lock(
        (
            m.CudaLibrary("ext", "ext/lib/libext_core.so", ("sm_80", "sm_90"), ()),
            m.CudaLibrary("ext", "ext/lib/libext_fft.so", ("sm_75",), ()),
        )
    )
    blockers = [f for f in host_findings(lock, _host("9.0")) if f.severity == BLOCKER]
    assert [(f.path, f.message) for f in blockers] == [
        ("python.packages[ext].cuda-sass", "ext has no kernels for GPU (compute capability 9.0) in libext_fft.so")
    ]
    assert blockers[0].locked == "SASS sm_75; no PTX"


def test_profiler_and_optional_libraries_only_warn():
    lock = _lock(
        (
            m.CudaLibrary("prof", "prof/lib/libcupti.so.13", ("sm_75",), ()),
            m.CudaLibrary("fft", "fft/lib/libcufft.so.12", ("sm_90",), ()),
            m.CudaLibrary("fft", "fft/lib/libcufftw.so.12", ("sm_75",), ()),
        )
    )
    findings = host_findings(lock, _host("9.0"))
    assert [f for f in findings if f.severity == BLOCKER] == []
    warned = sorted(f.path for f in findings if f.message.startswith("warning:"))
    assert warned == [
        "python.cuda-libraries[fft/lib/libcufftw.so.12]",
        "python.cuda-libraries[prof/lib/libcupti.so.13]",
    ]


def test_ptx_that_jits_is_enough_and_names_the_library():
    lock = _lock(
        (
            m.CudaLibrary("ext", "ext/lib/libext.so", ("sm_80",), ("compute_80",)),
            m.CudaLibrary("ext", "ext/lib/libext_other.so", ("sm_90",), ()),
        )
    )
    findings = host_findings(lock, _host("9.0"))
    assert [f for f in findings if f.severity == BLOCKER] == []
    jit = [f for f in findings if "PTX JIT" in f.message]
    assert len(jit) == 1 and jit[0].message.endswith("in libext.so")


def test_a_blocker_from_a_lock_without_library_lists_says_the_lists_may_be_incomplete():
    """Locks captured before issue 16 recorded libcufft.so.12 as sm_75 only: the blocker says to re-capture."""
    old = m.Lock(
        python=m.PythonSection(
            packages=(m.PythonPackage(name="nvidia-cufft", version="12.0.0.61", cuda_sass=("sm_75",)),)
        )
    )
    blockers = [f for f in host_findings(old, _host("9.0", "NVIDIA H200")) if f.severity == BLOCKER]
    assert len(blockers) == 1
    assert "only .nv_fatbin" in blockers[0].why and blockers[0].fix.startswith("capture the environment again")
    # With per-library lists the same shortfall is a plain blocker.
    new = _lock((m.CudaLibrary("nvidia-cufft", CUFFT, ("sm_75",), ()),))
    blockers = [f for f in host_findings(new, _host("9.0", "NVIDIA H200")) if f.severity == BLOCKER]
    assert len(blockers) == 1 and ".nv_fatbin" not in blockers[0].why
