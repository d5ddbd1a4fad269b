"""`envlock doctor` through the real CLI, on simulated GPU hosts.

No GPU here, so the lowest boundary is replaced: the real ``nvidia-ml-py``
binding loads the fake ``libnvidia-ml.so.1`` (tests/fakes/nvml.py), and a
recorded ``/proc/cpuinfo`` (tests/data/hosts/, real machines' files) stands in
for the CPU through ``ENVLOCK_HOST_ROOT``.  The lock under test is written
with envlock's own writer; its CPU sections are parsed from the same recorded
hosts by the real CPU probe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envlock.capture.cpu import collect_cpu
from envlock.doctor import diagnose
from envlock.lockfile import io, write
from envlock.lockfile import model as m
from tests.conftest import run_envlock
from tests.fakes.nvml import (
    A100_SXM4_80GB,
    H100_SXM,
    H200,
    T4,
    V100_SXM2_16GB,
    FakeHost,
)

HOSTS = Path(__file__).resolve().parents[1] / "data" / "hosts"
HASWELL = HOSTS / "linux-rhel7-x86_64-haswell"  # AVX2, no AVX-512
SKYLAKE_AVX512 = HOSTS / "linux-rhel7-x86_64-skylake_avx512"

CU128_TORCH = m.PythonPackage(
    name="torch",
    version="2.7.0+cu128",
    cuda_sass=("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"),
    cuda_ptx=("compute_120",),
)
CU130_TORCH = m.PythonPackage(
    name="torch",
    version="2.9.0+cu130",
    cuda_sass=("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"),
    cuda_ptx=("compute_120",),
)
CU121_TORCH = m.PythonPackage(name="torch", version="2.1.0+cu121")


def gpu(fake, index: int = 0) -> m.Gpu:
    return m.Gpu(
        index=index, name=fake.name, compute_capability=fake.compute_capability, memory_total_mib=fake.memory_total_mib
    )


def cpu_of(host: Path) -> m.CpuSection:
    return collect_cpu(str(host), warn=lambda message: None)


def write_lock(tmp_path: Path, *, packages=(), components=(), driver=None, cuda=None, gpus=(), cpu=None) -> Path:
    lock = m.Lock(
        origin="capture",
        python=m.PythonSection(packages=tuple(packages)),
        cuda=m.CudaSection(components=tuple(components)),
        nvidia=m.NvidiaSection(
            driver_present=driver is not None,
            driver_version=driver,
            cuda_driver_version=cuda,
            source="nvml",
            gpus=tuple(gpus),
        ),
        cpu=cpu,
    )
    path = tmp_path / "envlock.lock"
    write.write_lock(lock, path, "envlock capture")
    return path


def doctor(path: Path, env: dict) -> tuple[int, dict]:
    result = run_envlock("doctor", str(path), "--json", env=env)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def severities(report: dict, severity: str) -> list[str]:
    return [f["path"] for f in report["findings"] if f["severity"] == severity]


def test_h200_on_driver_580_runs_a_cuda_13_lock(fake_nvml, tmp_path):
    lock = write_lock(
        tmp_path,
        packages=[CU130_TORCH],
        driver="580.65.06",
        cuda="13.0",
        gpus=[gpu(H200)],
        components=[m.CudaComponent(name="cudart", version="13.0", source="pip")],
    )
    env = fake_nvml.env(FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(H200,)))
    code, report = doctor(lock, env)
    assert code == 0 and report["blocked"] is False
    assert severities(report, "blocker") == [] and severities(report, "numeric") == []
    passed = [f["path"] for f in report["findings"] if f["status"] == "exact"]
    assert "cuda.runtime[13.0]" in passed and "python.packages[torch].cuda-sass" in passed


def test_t4_on_driver_470_blocks_a_cuda_12_1_lock(fake_nvml, tmp_path):
    lock = write_lock(tmp_path, packages=[CU121_TORCH], driver="530.30.02", cuda="12.1", gpus=[gpu(T4)])
    env = fake_nvml.env(FakeHost(driver_version="470.82.01", cuda_driver_version=11040, gpus=(T4,)))
    code, report = doctor(lock, env)
    assert code == 1 and report["blocked"] is True
    [blocker] = [f for f in report["findings"] if f["severity"] == "blocker"]
    assert blocker["path"] == "cuda.runtime[12.1]" and blocker["layer"] == "driver"
    assert "470.82.01" in blocker["actual"] and "530.30.02" in blocker["locked"]


def test_v100_cannot_run_a_cu128_torch_lock(fake_nvml, tmp_path):
    lock = write_lock(tmp_path, packages=[CU128_TORCH], driver="570.124.06", cuda="12.8", gpus=[gpu(A100_SXM4_80GB)])
    env = fake_nvml.env(FakeHost(driver_version="570.124.06", cuda_driver_version=12080, gpus=(V100_SXM2_16GB,)))
    code, report = doctor(lock, env)
    assert code == 1
    assert severities(report, "blocker") == ["python.packages[torch].cuda-sass"]
    [blocker] = [f for f in report["findings"] if f["severity"] == "blocker"]
    assert blocker["actual"] == "sm_70" and "Tesla V100-SXM2-16GB" in blocker["message"]


def test_a100_lock_on_an_h100_is_numeric(fake_nvml, tmp_path):
    lock = write_lock(tmp_path, packages=[CU128_TORCH], driver="570.124.06", cuda="12.8", gpus=[gpu(A100_SXM4_80GB)])
    env = fake_nvml.env(FakeHost(driver_version="570.124.06", cuda_driver_version=12080, gpus=(H100_SXM,)))
    code, report = doctor(lock, env)
    assert code == 0
    assert severities(report, "blocker") == []
    assert severities(report, "numeric") == ["nvidia.gpus"]


def test_avx512_lock_host_on_an_avx2_host_is_numeric(fake_nvml, tmp_path):
    lock = write_lock(tmp_path, cpu=cpu_of(SKYLAKE_AVX512))
    env = fake_nvml.env(FakeHost(gpus=()), host_root=HASWELL)
    code, report = doctor(lock, env)
    assert code == 0
    [finding] = [f for f in report["findings"] if f["severity"] == "numeric"]
    assert finding["path"] == "cpu.flags"
    assert {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"} <= set(finding["locked"].split())


def test_no_gpu_at_all_with_a_gpu_lock_blocks(fake_nvml, tmp_path):
    lock = write_lock(
        tmp_path,
        packages=[CU128_TORCH],
        driver="570.124.06",
        cuda="12.8",
        gpus=[gpu(A100_SXM4_80GB, 0), gpu(A100_SXM4_80GB, 1)],
    )
    code, report = doctor(lock, fake_nvml.env(FakeHost.driver_not_loaded()))
    assert code == 1
    assert severities(report, "blocker") == ["nvidia.gpus"]


def test_text_and_markdown_output(fake_nvml, tmp_path):
    lock = write_lock(tmp_path, packages=[CU121_TORCH], driver="530.30.02", cuda="12.1", gpus=[gpu(T4)])
    env = fake_nvml.env(FakeHost(driver_version="470.82.01", cuda_driver_version=11040, gpus=(T4,)))
    text = run_envlock("doctor", str(lock), env=env)
    assert text.returncode == 1
    # verdict first: the sentence, then one line per layer of checks whose counts add up
    lines = text.stdout.splitlines()
    assert lines[1] == f"verdict: this host cannot run {lock}"
    assert "  driver: 0/1 checks passed (1 blocker)" in lines
    assert "  GPUs: 1/1 checks passed" in lines
    assert "blocker  cuda.runtime[12.1]: driver 470.82.01 is too old for the CUDA 12.1 runtime" in text.stdout
    markdown = run_envlock("doctor", str(lock), "--markdown", env=env)
    assert markdown.returncode == 1
    assert markdown.stdout.startswith("## envlock doctor")
    assert f"**verdict: this host cannot run {lock}**" in markdown.stdout
    assert "| blocker | cuda.runtime[12.1] |" in markdown.stdout


@pytest.mark.parametrize(
    "content,needle",
    [(None, "no such file"), ("lock-version = [\n", "envlock.lock"), ('lock-version = "1.0"\nnvidia = 3\n', "nvidia")],
)
def test_bad_input_exits_2(tmp_path, content, needle):
    path = tmp_path / "envlock.lock"
    if content is not None:
        path.write_text(content)
    result = run_envlock("doctor", str(path))
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_this_machine_runs_a_cpu_only_lock(tmp_path):
    """This development machine has no GPU: a CPU-only lock must pass."""
    lock = write_lock(tmp_path, packages=[m.PythonPackage(name="torch", version="2.13.0+cpu")])
    result = run_envlock("doctor", str(lock), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["blocked"] is False


def test_diagnose_is_pure_over_two_locks():
    lock = m.Lock(python=m.PythonSection(packages=(CU128_TORCH,)))
    host = m.Lock(
        nvidia=m.NvidiaSection(
            driver_present=True, driver_version="570.124.06", cuda_driver_version="12.8", gpus=(gpu(V100_SXM2_16GB),)
        ),
        capture_warnings=("nvml: power limit unreadable",),
    )
    report = diagnose(lock, host)
    assert report.exit_code == 1
    assert [f.path for f in report.problems if f.severity == "blocker"] == ["python.packages[torch].cuda-sass"]
    assert any("power limit" in f.message for f in report.findings)


def test_capture_then_doctor_with_real_cuda_wheels(fake_nvml, tmp_path):
    """Kernels read by capture from the real cuBLAS/cuDNN wheels, then judged on two simulated hosts."""
    from tests.envs import TestEnvError, cuda_wheels_venv

    try:
        venv = cuda_wheels_venv()
    except TestEnvError as exc:
        pytest.skip(f"cannot build the CUDA wheels test env: {exc}")
    lock = tmp_path / "cuda.lock"
    cache = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    captured = run_envlock("capture", "--python", str(venv.python), "-o", str(lock), "-q", env=cache)
    assert captured.returncode == 0, captured.stderr
    loaded = io.load_lock(lock).lock
    cublas = next(p for p in loaded.python.packages if p.name == "nvidia-cublas-cu12")
    assert "sm_90" in cublas.cuda_sass and "sm_70" in cublas.cuda_sass

    runs = fake_nvml.env(FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(H200,)))
    code, report = doctor(lock, {**runs, **cache})
    assert code == 0 and severities(report, "blocker") == []
    assert "python.packages[nvidia-cublas-cu12].cuda-sass" in [
        f["path"] for f in report["findings"] if f["status"] == "exact"
    ]

    old_driver = fake_nvml.env(FakeHost(driver_version="470.82.01", cuda_driver_version=11040, gpus=(T4,)))
    code, report = doctor(lock, {**old_driver, **cache})
    assert code == 1 and "cuda.runtime[12.8]" in severities(report, "blocker")
