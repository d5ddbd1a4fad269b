"""NVIDIA driver and GPU capture, through the real nvidia-ml-py binding.

GPU hosts are simulated at the lowest boundary: a fake ``libnvidia-ml.so.1``
compiled from tests/fakes/fake_nvml.c and loaded by the real ``pynvml`` inside
the real ``envlock capture`` subprocess.  Expected values below are written out
as literals (what nvidia-smi prints for these boards), never computed by envlock.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from envlock.capture import nvidia_procfs
from envlock.capture.nvml import format_cuda_version, parse_mig_mode
from envlock.lockfile import load_lock
from tests.conftest import DATA, REPO, run_envlock
from tests.fakes.nvml import (
    A100_SXM4_40GB,
    A100_SXM4_80GB,
    H200,
    RTX_3090,
    T4,
    FakeHost,
    replace_gpu,
)

HOSTS = DATA / "hosts"


def capture(env: dict, tmp_path: Path, *extra: str):
    """Run the real CLI; return (nvidia section, capture warnings) read back through the loader."""
    out = tmp_path / "envlock.lock"
    result = run_envlock("capture", "-q", "-o", str(out), *extra, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lock = load_lock(out).lock
    return lock.nvidia, [w for w in lock.capture_warnings if w.startswith("nvidia")]


def test_h200_on_driver_580_records_every_field(fake_nvml, tmp_path):
    env = fake_nvml.env(FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(H200,)))
    nvidia, warnings = capture(env, tmp_path)
    assert warnings == []
    assert (nvidia.driver_present, nvidia.source) == (True, "nvml")
    assert nvidia.driver_version == "580.65.06"
    assert nvidia.cuda_driver_version == "13.0"
    assert nvidia.nvml_version == "13.580.65.06"
    (gpu,) = nvidia.gpus
    assert gpu.index == 0
    assert gpu.name == "NVIDIA H200"
    assert gpu.compute_capability == "9.0"
    assert gpu.memory_total_mib == 143771
    assert (gpu.mig_mode, gpu.ecc_mode, gpu.compute_mode, gpu.persistence_mode) == (
        "disabled",
        "enabled",
        "default",
        "enabled",
    )
    assert gpu.power_limit_w == 700
    assert (gpu.max_sm_clock_mhz, gpu.max_memory_clock_mhz) == (1980, 3201)
    assert gpu.pci_device_id == "0x233510DE"
    assert gpu.multiprocessors == 132
    # Private by default: the board's UUID and serial never reach the file.
    assert gpu.uuid is None and gpu.serial is None
    assert H200.uuid not in (tmp_path / "envlock.lock").read_text()
    # nvmlInit paired with nvmlShutdown.
    assert fake_nvml.calls() == ["init", "shutdown"]


def test_include_private_records_uuid_and_serial(fake_nvml, tmp_path):
    env = fake_nvml.env(FakeHost(gpus=(H200,)))
    nvidia, _ = capture(env, tmp_path, "--include-private")
    assert nvidia.gpus[0].uuid == "GPU-5a3c1f0e-8b7d-4c2a-9e6f-0d1b2c3a4e5f"
    assert nvidia.gpus[0].serial == "1652724050001"


def test_eight_a100s_on_driver_535(fake_nvml, tmp_path):
    env = fake_nvml.env(FakeHost(driver_version="535.183.01", cuda_driver_version=12020, gpus=(A100_SXM4_80GB,) * 8))
    nvidia, warnings = capture(env, tmp_path)
    assert warnings == []
    assert (nvidia.driver_version, nvidia.cuda_driver_version) == ("535.183.01", "12.2")
    assert [gpu.index for gpu in nvidia.gpus] == list(range(8))
    assert {gpu.name for gpu in nvidia.gpus} == {"NVIDIA A100-SXM4-80GB"}
    assert {gpu.compute_capability for gpu in nvidia.gpus} == {"8.0"}
    assert {gpu.memory_total_mib for gpu in nvidia.gpus} == {81920}
    assert {gpu.pci_device_id for gpu in nvidia.gpus} == {"0x20B210DE"}
    assert fake_nvml.calls() == ["init", "shutdown"]


def test_t4(fake_nvml, tmp_path):
    env = fake_nvml.env(FakeHost(driver_version="550.90.07", cuda_driver_version=12040, gpus=(T4,)))
    nvidia, _ = capture(env, tmp_path)
    (gpu,) = nvidia.gpus
    assert (gpu.name, gpu.compute_capability, gpu.memory_total_mib) == ("Tesla T4", "7.5", 15360)
    assert (gpu.power_limit_w, gpu.persistence_mode) == (70, "disabled")
    assert nvidia.cuda_driver_version == "12.4"


def test_mixed_gpu_box_keeps_each_board_apart(fake_nvml, tmp_path):
    env = fake_nvml.env(FakeHost(gpus=(A100_SXM4_40GB, RTX_3090, T4)))
    nvidia, warnings = capture(env, tmp_path)
    assert warnings == []
    assert [(g.index, g.name, g.compute_capability, g.memory_total_mib) for g in nvidia.gpus] == [
        (0, "NVIDIA A100-SXM4-40GB", "8.0", 40960),
        (1, "NVIDIA GeForce RTX 3090", "8.6", 24576),
        (2, "Tesla T4", "7.5", 15360),
    ]
    # A GeForce board answers NOT_SUPPORTED for ECC and MIG: unknown there, known on the others.
    assert [g.ecc_mode for g in nvidia.gpus] == ["enabled", None, "enabled"]
    assert [g.mig_mode for g in nvidia.gpus] == ["disabled", None, "disabled"]


def test_mig_modes_current_and_pending(fake_nvml, tmp_path):
    gpus = (
        replace_gpu(A100_SXM4_80GB, mig_mode=(1, 1)),
        replace_gpu(A100_SXM4_80GB, mig_mode=(0, 1)),
        replace_gpu(A100_SXM4_80GB, mig_mode=(1, 0)),
        replace_gpu(H200, mig_mode=(0, 0)),
    )
    nvidia, _ = capture(fake_nvml.env(FakeHost(gpus=gpus)), tmp_path)
    assert [g.mig_mode for g in nvidia.gpus] == ["enabled", "pending-enable", "pending-disable", "disabled"]


def test_not_supported_field_costs_only_that_field(fake_nvml, tmp_path):
    gpu = replace_gpu(H200, unsupported=("ecc_mode", "power_limit_w", "multiprocessors"))
    nvidia, warnings = capture(fake_nvml.env(FakeHost(gpus=(gpu,))), tmp_path)
    (recorded,) = nvidia.gpus
    assert (recorded.ecc_mode, recorded.power_limit_w, recorded.multiprocessors) == (None, None, None)
    # Everything else still recorded.
    assert (recorded.name, recorded.compute_capability, recorded.memory_total_mib) == ("NVIDIA H200", "9.0", 143771)
    assert (recorded.mig_mode, recorded.max_sm_clock_mhz, recorded.pci_device_id) == ("disabled", 1980, "0x233510DE")
    # NOT_SUPPORTED is normal for a board that lacks the feature: no warning.
    assert warnings == []


def test_other_nvml_error_costs_the_field_and_is_reported(fake_nvml, tmp_path):
    NVML_ERROR_UNKNOWN = 999
    gpu = replace_gpu(H200, errors={"max_sm_clock_mhz": NVML_ERROR_UNKNOWN, "name": 15})  # 15 = GPU_IS_LOST
    nvidia, warnings = capture(fake_nvml.env(FakeHost(gpus=(gpu,))), tmp_path)
    (recorded,) = nvidia.gpus
    assert recorded.max_sm_clock_mhz is None and recorded.name == ""
    assert recorded.max_memory_clock_mhz == 3201 and recorded.compute_capability == "9.0"
    assert any("gpu 0 max-sm-clock" in w and "Unknown" in w for w in warnings), warnings
    assert any("gpu 0 name" in w for w in warnings), warnings
    assert fake_nvml.calls() == ["init", "shutdown"]


def test_nvml_strings_that_a_lock_cannot_hold_are_dropped_with_a_warning(fake_nvml, tmp_path):
    """NVML's answers are untrusted input too: an escape sequence in a board name must not reach the file."""
    gpu = replace_gpu(T4, name="Tesla T4\x1b[31m")
    nvidia, warnings = capture(fake_nvml.env(FakeHost(driver_version="535.54.03 $(id)", gpus=(gpu,))), tmp_path)
    assert nvidia.gpus[0].name == "" and nvidia.gpus[0].compute_capability == "7.5"
    assert nvidia.driver_version is None
    assert any("gpu 0 name" in w and "cannot hold" in w for w in warnings), warnings
    assert any("driver-version" in w for w in warnings), warnings
    assert "\x1b" not in (tmp_path / "envlock.lock").read_text()


def test_driver_missing_system_fields_do_not_lose_gpus(fake_nvml, tmp_path):
    host = FakeHost(driver_version=None, cuda_driver_version=None, gpus=(T4,))
    nvidia, _ = capture(fake_nvml.env(host), tmp_path)
    assert (nvidia.driver_present, nvidia.driver_version, nvidia.cuda_driver_version) == (True, None, None)
    assert nvidia.gpus[0].name == "Tesla T4"


def test_driver_without_gpus(fake_nvml, tmp_path):
    nvidia, warnings = capture(
        fake_nvml.env(FakeHost(driver_version="570.172.08", cuda_driver_version=12080)), tmp_path
    )
    assert (nvidia.driver_present, nvidia.driver_version, nvidia.cuda_driver_version, nvidia.gpus) == (
        True,
        "570.172.08",
        "12.8",
        (),
    )
    assert warnings == []


def test_driver_not_loaded_is_recorded_absent(fake_nvml, tmp_path):
    nvidia, warnings = capture(fake_nvml.env(FakeHost.driver_not_loaded()), tmp_path)
    assert nvidia.driver_present is False
    assert (nvidia.driver_version, nvidia.gpus) == (None, ())
    assert warnings == []
    assert fake_nvml.calls() == []  # init failed, so nothing to shut down


def test_nvml_init_refused_falls_back_to_proc_with_a_warning(fake_nvml, tmp_path):
    NVML_ERROR_NO_PERMISSION = 4
    root = tmp_path / "host"
    (root / "proc/driver/nvidia").mkdir(parents=True)
    (root / "proc/driver/nvidia/version").write_bytes(
        (HOSTS / "linux-rtx4090-open570" / "proc_driver_nvidia_version").read_bytes()
    )
    nvidia, warnings = capture(
        fake_nvml.env(FakeHost(init_error=NVML_ERROR_NO_PERMISSION, gpus=(T4,)), host_root=root), tmp_path
    )
    assert (nvidia.driver_present, nvidia.driver_version, nvidia.source, nvidia.gpus) == (
        True,
        "570.172.08",
        "procfs",
        (),
    )
    assert any("nvmlInit failed" in w and "NoPermission" in w for w in warnings), warnings


def test_no_nvml_library_is_recorded_absent(fake_nvml, tmp_path):
    probe = subprocess.run(
        [sys.executable, "-c", "import ctypes; ctypes.CDLL('libnvidia-ml.so.1')"], capture_output=True
    )
    if probe.returncode == 0:
        pytest.skip("this machine has a real libnvidia-ml.so.1; the driver_not_loaded scenario covers absence")
    nvidia, warnings = capture(fake_nvml.no_library_env(), tmp_path)
    assert nvidia.driver_present is False and nvidia.source is None
    assert warnings == []


def test_without_nvml_the_proc_file_gives_the_driver(fake_nvml, tmp_path):
    root = tmp_path / "host"
    (root / "proc/driver/nvidia").mkdir(parents=True)
    (root / "proc/driver/nvidia/version").write_bytes(
        (HOSTS / "linux-rtx3060ti-driver535" / "proc_driver_nvidia_version").read_bytes()
    )
    nvidia, _ = capture(fake_nvml.env(FakeHost.driver_not_loaded(), host_root=root), tmp_path)
    assert (nvidia.driver_present, nvidia.driver_version, nvidia.source) == (True, "535.161.07", "procfs")
    assert nvidia.gpus == ()


def test_without_nvml_or_proc_the_sys_module_gives_the_driver(fake_nvml, tmp_path):
    root = tmp_path / "host"
    (root / "sys/module/nvidia").mkdir(parents=True)
    (root / "sys/module/nvidia/version").write_bytes(
        (HOSTS / "linux-proart-open570-twopart" / "sys_module_nvidia_version").read_bytes()
    )
    nvidia, _ = capture(fake_nvml.env(FakeHost.driver_not_loaded(), host_root=root), tmp_path)
    assert (nvidia.driver_present, nvidia.driver_version, nvidia.source) == (True, "570.169", "sysfs")


def test_no_driver_does_not_import_pynvml_and_is_fast(tmp_path):
    """On a host without libnvidia-ml.so.1 the probe must not pay for importing pynvml (~30 ms)."""
    script = (
        "import sys, time\n"
        "from envlock.capture.nvml import nvml_library_loadable, probe_nvml\n"
        "if nvml_library_loadable(): print('has-driver'); raise SystemExit\n"
        "t = time.perf_counter(); section = probe_nvml(); took = time.perf_counter() - t\n"
        "print(section, 'pynvml' in sys.modules, took)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "ENVLOCK_HOST_ROOT": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    if result.stdout.strip() == "has-driver":
        pytest.skip("this machine has a real NVML library")
    section, imported, took = result.stdout.split()
    assert (section, imported) == ("None", "False")
    assert float(took) < 0.02


# --- pure parsers over recorded host files ---------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("linux-rtx3060ti-driver535", "535.161.07"),
        ("linux-ubuntu2004-driver535", "535.161.08"),
        ("linux-rtx4090-open570", "570.172.08"),  # open kernel module layout
        ("linux-proart-open570-twopart", "570.169"),  # two-part version
    ],
)
def test_parse_recorded_proc_driver_version(host, expected):
    text = (HOSTS / host / "proc_driver_nvidia_version").read_text()
    assert nvidia_procfs.parse_proc_driver_version(text) == expected


def test_read_proc_driver_version_below_a_root(tmp_path):
    assert nvidia_procfs.read_proc_driver_version(tmp_path) is None
    (tmp_path / "proc/driver/nvidia").mkdir(parents=True)
    (tmp_path / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.82.01  Fri Oct 22\n"
    )
    assert nvidia_procfs.read_proc_driver_version(tmp_path).startswith("NVRM version")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "GCC version:  gcc version 12.3.0\n",
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  \n",
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535  Sat Feb 17\n",  # no dot: not a driver version
        "some text NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.1.2\n",  # not at a line start
    ],
)
def test_parse_proc_driver_version_rejects_other_text(text):
    assert nvidia_procfs.parse_proc_driver_version(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("570.169\n", "570.169"), ("580.65.06", "580.65.06"), ("", None), ("580.65.06 extra\n", None), ("latest\n", None)],
)
def test_parse_sys_module_version(text, expected):
    assert nvidia_procfs.parse_sys_module_version(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(13000, "13.0"), (12020, "12.2"), (12080, "12.8"), (11040, "11.4"), (10010, "10.1"), (0, None)],
)
def test_format_cuda_version(raw, expected):
    assert format_cuda_version(raw) == expected


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ([1, 1], "enabled"),
        ([0, 0], "disabled"),
        ([0, 1], "pending-enable"),
        ([1, 0], "pending-disable"),
        ([2, 2], None),
        (None, None),
        ([1], None),
    ],
)
def test_parse_mig_mode(pair, expected):
    assert parse_mig_mode(pair) == expected


def test_fake_host_config_marks_unsupported_fields():
    """The fake's own contract: an unsupported field is written as NVML error 3, absent values not at all."""
    lines = FakeHost(gpus=(replace_gpu(RTX_3090, unsupported=("power_limit_w",)),)).config_text().splitlines()
    assert "gpu.0.power_limit_mw=!3" in lines
    assert not any(line.startswith("gpu.0.ecc_mode=") for line in lines)
