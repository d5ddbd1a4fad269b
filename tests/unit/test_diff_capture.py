"""Diff of two locks captured on this machine from environments that differ in known ways.

Lock A and lock B are written by the real ``envlock capture --python`` from two
real virtualenvs, each on a simulated NVIDIA host (the fake
``libnvidia-ml.so.1`` loaded by the real nvidia-ml-py binding):

==================  ===================================  ====================================
what                A                                    B
==================  ===================================  ====================================
a package version   six 1.16.0                           six 1.17.0
a cuDNN wheel       (none)                               nvidia-cudnn-cu12 9.10.2.21 (real wheel)
a thread variable   (unset)                              OMP_NUM_THREADS=4
a GPU               A100-SXM4-80GB (sm_80)               H100 80GB HBM3 (sm_90)
==================  ===================================  ====================================

The diff must find exactly those differences, in the documented ranking:
GPU first, then cuDNN, then the thread variable, then the package.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envlock.lockfile import load_lock
from tests.conftest import run_envlock
from tests.fakes.nvml import A100_SXM4_80GB, H100_SXM, FakeHost
from tests.unit._capture_envs import add_dist, make_venv

CUDNN_DIST = "nvidia_cudnn_cu12-9.10.2.21.dist-info"


def _cudnn_wheel_files() -> tuple[Path, Path]:
    """The real cuDNN wheel's files from the cached test env (tests/envs.py), without building it here."""
    from tests.envs import CACHE_ROOT

    site = sorted((CACHE_ROOT / "cuda-wheels" / "lib").glob("python3*/site-packages"))
    if not site or not (site[0] / CUDNN_DIST).is_dir():
        pytest.skip("the cached cuda-wheels test env is not built (run `.venv/bin/python -m tests.envs cuda-wheels`)")
    return site[0] / CUDNN_DIST, site[0] / "nvidia" / "cudnn"


def _capture(venv, out: Path, env: dict, cwd: Path) -> None:
    result = run_envlock("capture", "-q", "--python", str(venv.python), "-o", str(out), env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def two_locks(tmp_path, fake_nvml, monkeypatch):
    # The CLI subprocess inherits this environment: A must see the variable unset.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    dist_info, cudnn_dir = _cudnn_wheel_files()
    a = make_venv(tmp_path / "venv-a")
    add_dist(a.site, "six", "1.16.0")
    b = make_venv(tmp_path / "venv-b")
    add_dist(b.site, "six", "1.17.0")
    # The wheel's own files (dist-info, libcudnn*.so), linked in rather than copied: 800 MB.
    (b.site / "nvidia").mkdir()
    (b.site / "nvidia" / "cudnn").symlink_to(cudnn_dir, target_is_directory=True)
    (b.site / CUDNN_DIST).symlink_to(dist_info, target_is_directory=True)

    env_a = dict(fake_nvml.env(FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(A100_SXM4_80GB,))))
    lock_a = tmp_path / "a.lock"
    _capture(a, lock_a, env_a, tmp_path)
    env_b = dict(fake_nvml.env(FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(H100_SXM,))))
    env_b["OMP_NUM_THREADS"] = "4"
    lock_b = tmp_path / "b.lock"
    _capture(b, lock_b, env_b, tmp_path)
    return lock_a, lock_b


def test_diff_finds_exactly_the_known_differences_in_ranking_order(two_locks):
    lock_a, lock_b = two_locks
    result = run_envlock("diff", "--json", str(lock_a), str(lock_b))
    assert result.returncode == 1, result.stderr
    findings = [f for f in json.loads(result.stdout)["findings"] if f["status"] != "unknown"]
    paths = [f["path"] for f in findings]

    # A100-SXM4-80GB vs H100 80GB HBM3 (tests/fakes/nvml.py presets): the GPU
    # facts that differ between the two boards, and only those.
    gpu = [p for p in paths if p.startswith("nvidia.")]
    assert gpu == [
        "nvidia.gpus.compute-capability",
        "nvidia.gpus.name",
        "nvidia.gpus.multiprocessors",
        "nvidia.gpus.memory-total-mib",
        "nvidia.gpus.max-memory-clock-mhz",
        "nvidia.gpus.max-sm-clock-mhz",
        "nvidia.gpus.power-limit-w",
    ]
    by_path = {f["path"]: f for f in findings}
    assert (
        by_path["nvidia.gpus.compute-capability"]["locked"],
        by_path["nvidia.gpus.compute-capability"]["actual"],
    ) == ("8.0", "9.0")

    # cuDNN: the wheel itself, and the library the CUDA probe finds in it when that probe is present.
    cuda = [p for p in paths if p.startswith("cuda.") or p == "python.packages[nvidia-cudnn-cu12]"]
    lock_b_cuda = load_lock(lock_b).lock.cuda
    expected_cuda = ["python.packages[nvidia-cudnn-cu12]"]
    if lock_b_cuda is not None and any(c.name == "cudnn" for c in lock_b_cuda.components):
        expected_cuda.insert(0, "cuda.components[cudnn]")
    assert sorted(cuda) == sorted(expected_cuda)
    assert by_path["python.packages[nvidia-cudnn-cu12]"]["actual"].startswith("9.10.2.21")

    rest = [p for p in paths if p not in gpu and p not in cuda]
    assert rest == ["runtime.env.OMP_NUM_THREADS", "python.packages[six]"]
    assert (by_path["python.packages[six]"]["locked"], by_path["python.packages[six]"]["actual"]) == (
        "1.16.0",
        "1.17.0",
    )
    assert by_path["runtime.env.OMP_NUM_THREADS"]["actual"] == "4"

    # The documented ranking: GPU, then cuDNN, then threads, then packages.
    first = {
        group: min(paths.index(p) for p in members) for group, members in (("gpu", gpu), ("cuda", cuda), ("rest", rest))
    }
    assert first["gpu"] < first["cuda"] < first["rest"]
    assert max(paths.index(p) for p in gpu) < min(paths.index(p) for p in cuda)
    assert (
        max(paths.index(p) for p in cuda)
        < paths.index("runtime.env.OMP_NUM_THREADS")
        < paths.index("python.packages[six]")
    )
