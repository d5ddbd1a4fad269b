"""`envlock import nvidia-smi` on the 13 real outputs of tests/data/corpus/nvidia_smi (9 tables, 4 `-q`).

Expected values were read by eye from each file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envlock.formats.importers import import_bytes
from envlock.formats.nvidia_smi import compute_capability
from envlock.lockfile import dumps_lock

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus" / "nvidia_smi"

# file prefix: (driver, CUDA, GPU count, first GPU name, its total MiB, compute capability, persistence, ECC, MIG)
CASES = {
    "01": ("450.57", "11.0", 1, "TITAN Xp", 12196, "6.1", "enabled", None, None),
    "02": ("590.48.01", "13.1", 4, "NVIDIA GH200 120GB", 97871, "9.0", "enabled", "enabled", "disabled"),
    "03": ("550.144.03", "12.4", 1, "NVIDIA A100-SXM4-40GB", 40960, "8.0", "disabled", "enabled", "disabled"),
    "04": ("535.171.04", "12.2", 8, "Tesla V100S-PCIE-32GB", 32768, "7.0", "disabled", "enabled", None),
    "05": ("535.161.07", "12.2", 1, "NVIDIA GeForce RTX 3090", 24576, "8.6", "enabled", None, None),
    "06": ("470.82.01", "11.4", 1, "Tesla P100-PCIE...", 12198, "6.0", "enabled", "enabled", None),
    "07": ("560.94", "12.6", 1, "NVIDIA GeForce RTX 3060", 12288, "8.6", None, None, None),  # WDDM: no persistence mode
    "08": ("550.90.07", "12.4", 8, "NVIDIA H100 80GB HBM3", 81559, "9.0", "enabled", "enabled", "disabled"),
    "09": ("525.125.06", "12.0", 1, "NVIDIA GeForce ...", 23028, None, "disabled", "enabled", None),
    "10": ("537.13", "12.2", 1, "NVIDIA GeForce RTX 4090", 24564, "8.9", "enabled", "disabled", None),
    "11": ("535.129.03", "12.2", 1, "NVIDIA A10", 23028, "8.6", "enabled", "enabled", None),
    "12": ("560.35.03", "12.6", 1, "NVIDIA TITAN V", 12288, "7.0", "disabled", None, None),
    "13": ("535.161.08", "12.2", 8, "NVIDIA H100 80GB HBM3", 81559, "9.0", "enabled", "enabled", "disabled"),
    # Pastes that stop early (the memory section never comes), an -i view, and a 2014 table; see EXPECTED.toml.
    "14": ("442.92", "10.2", 1, "GeForce GTX 1080 Ti", None, "6.1", None, None, None),
    "15": ("331.62", None, 3, "GeForce GTX 680", 4095, None, "disabled", None, None),
    "16": ("396.54", None, 1, "GeForce GTX 1080", None, "6.1", "disabled", None, None),
    "17": ("410.72", "10.0", 1, "GeForce GTX 960M", None, None, "disabled", None, None),
}


def corpus_file(prefix: str) -> Path:
    (path,) = [p for p in CORPUS.glob(f"{prefix}.*.txt") if not p.name.endswith(".source.txt")]
    return path


def load(prefix: str):
    path = corpus_file(prefix)
    return import_bytes("nvidia-smi", path.read_bytes(), path.name)


def test_every_corpus_file_has_a_row():
    files = sorted(p.name.split(".")[0] for p in CORPUS.glob("*.txt") if not p.name.endswith(".source.txt"))
    assert files == sorted(CASES)


@pytest.mark.parametrize("prefix", sorted(CASES))
def test_driver_and_gpus(prefix):
    driver, cuda, count, name, mib, cc, persistence, ecc, mig = CASES[prefix]
    lock = load(prefix)
    nvidia = lock.nvidia
    assert (nvidia.driver_present, nvidia.driver_version, nvidia.cuda_driver_version, nvidia.source) == (
        True,
        driver,
        cuda,
        "import",
    )
    assert len(nvidia.gpus) == count
    assert [g.index for g in nvidia.gpus] == list(range(count))
    first = nvidia.gpus[0]
    assert (first.name, first.memory_total_mib, first.compute_capability) == (name, mib, cc)
    assert (first.persistence_mode, first.ecc_mode, first.mig_mode) == (persistence, ecc, mig)
    assert lock.origin == "import:nvidia-smi"
    assert lock.python is None and lock.cpu is None  # not in nvidia-smi output: unknown


def test_modes_and_limits():
    assert load("09").nvidia.gpus[0].compute_mode == "exclusive-process"  # "E. Process"
    assert load("03").nvidia.gpus[0].power_limit_w == 400
    gpu = load("11").nvidia.gpus[0]  # -q: "Current Power Limit : 150.00 W", Max Clocks SM 1695 / Memory 6251
    assert (gpu.power_limit_w, gpu.max_sm_clock_mhz, gpu.max_memory_clock_mhz, gpu.pci_device_id) == (
        150,
        1695,
        6251,
        "0x223610DE",
    )


@pytest.mark.parametrize("prefix", ["10", "11", "12", "13"])
def test_no_uuid_serial_or_bus_id_is_copied(prefix):
    raw = corpus_file(prefix).read_text(encoding="utf-8")
    text = dumps_lock(load(prefix))
    uuid = next(line.split(":", 1)[1].strip() for line in raw.splitlines() if "GPU UUID" in line)
    serial = next(line.split(":", 1)[1].strip() for line in raw.splitlines() if "Serial Number" in line)
    bus = next(line.split(":", 1)[1].strip() for line in raw.splitlines() if line.strip().startswith("Bus Id"))
    assert uuid.startswith("GPU-") and uuid not in text and "GPU-" not in text
    assert serial == "N/A" or serial not in text
    assert bus not in text


def test_table_bus_ids_and_processes_are_not_copied():
    text = dumps_lock(load("07"))  # Windows: 19 processes with paths
    assert "00000000:07:00.0" not in text and "chrome.exe" not in text and "explorer" not in text


def test_compute_capability_table_only_names_it_is_sure_of():
    assert compute_capability("NVIDIA H200") == "9.0"
    assert compute_capability("Tesla T4") == "7.5"
    assert compute_capability("NVIDIA L4") == "8.9"
    assert compute_capability("NVIDIA B200") == "10.0"
    assert compute_capability("NVIDIA GeForce ...") is None
    assert compute_capability("AMD Radeon RX 7900 XTX") is None
    assert compute_capability("Some Future GPU 9000") is None


def test_no_driver_and_no_devices_messages():
    # What nvidia-smi prints on a host without a loaded driver, and on one without GPUs.
    no_driver = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running.\n"
    )
    lock = import_bytes("nvidia-smi", no_driver.encode(), "smi.txt")
    assert (lock.nvidia.driver_present, lock.nvidia.gpus) == (False, ())
    lock = import_bytes("nvidia-smi", b"No devices were found\n", "smi.txt")
    assert (lock.nvidia.driver_present, lock.nvidia.driver_version, lock.nvidia.gpus) == (True, None, ())
