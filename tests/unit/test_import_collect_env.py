"""`envlock import collect-env` on the 27 real collect_env reports of tests/data/corpus/collect_env.

Every expected value below was read by eye from the report text (see each
file and its .source.txt); none is computed by the code under test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from envlock.formats.importers import import_bytes
from envlock.lockfile import dumps_lock

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus" / "collect_env"

R = "NVIDIA GeForce RTX"
# file: (torch version, CUDA used to build, driver, GPU names, system cuDNN versions,
#        Python version, (os id, os version), nvcc ("CUDA runtime version"), [pip] rows, conda rows kept)
CASES = {
    "01": ("2.0.0.dev20230228+cpu-cxx11-abi", None, None, [], [], "3.9.16", ("centos", "8"), None, 4, 0),
    "02": (
        "1.14.0a0+410ce96",
        "11.8",
        "515.65.01",
        ["NVIDIA RTX A5000"],
        ["8.7.0"],
        "3.8.10",
        ("ubuntu", "20.04"),
        "11.8.89",
        9,
        0,
    ),
    "03": ("1.14.0.dev20221104", None, None, [], [], "3.10.8", ("macos", "13.0"), None, 7, 7),
    "04": ("1.12.1+cu116", "11.6", "515.65.01", [f"{R} 3090"] * 3, [], "3.9.13", ("ubuntu", "22.04"), "11.6.124", 4, 0),
    "05": ("1.12.1+cu113", "11.3", None, [], ["7.6.5", "8.0.5"], "3.7.13", ("ubuntu", "18.04"), "11.1.105", 6, 0),
    "06": (
        "1.11.0+cu115",
        "11.5",
        "510.73.08",
        ["NVIDIA RTX A5000"] * 8,
        ["8.4.0"],
        "3.7.13",
        ("ubuntu", "18.04"),
        "11.1.105",
        10,
        1,
    ),
    "07": (
        "1.9.0a0+gitd69c22d",
        "11.0",
        "450.51.06",
        ["Tesla V100-SXM2-32GB"] * 4,
        [],
        "3.8.11",
        ("debian", "10"),
        "11.0.221",
        2,
        10,
    ),
    "08": ("1.9.0+cu111", "11.1", None, [], [], "3.6", ("centos", "7"), "11.1.105", 3, 0),
    "09": ("1.7.1", None, None, [], [], "3.7", ("macos", "11.1"), None, 7, 12),
    "10": ("1.4.0+cpu", None, None, [], [], "3.7", ("windows", "10"), None, 3, 0),
    "11": (
        "1.3.0a0+de394b6",
        "10.0",
        "411.31",
        ["GeForce GTX 1080 Ti"],
        ["7"],
        "3.6",
        ("windows", "10"),
        "10.0.130",
        6,
        6,
    ),
    "12": (
        "1.2.0.dev20190605",
        "9.0.176",
        "396.26",
        ["Tesla P100-PCIE-16GB"] * 2,
        [],
        "3.7",
        ("centos", "7"),
        "9.2.88",
        2,
        5,
    ),
    "13": ("1.10.1", "11.5", "495.46", ["NVIDIA GeForce MX250"], ["8.3.0"], "3.10.1", ("arch", None), "11.5.119", 4, 0),
    "14": ("1.11.0", None, None, [], [], "3.8.12", ("fedora", "34"), None, 2, 10),
    "15": (
        "1.12.0a0+gitec8d677",
        "11.6",
        "510.54",
        [f"{R} 3090", f"{R} 2080 Ti"],
        ["8.3.1"],
        "3.10.2",
        ("arch", None),
        "11.6.55",
        5,
        0,
    ),
    "16": ("1.6.0", "10.2", "418.67", ["Tesla V100-PCIE-16GB"] * 2, [], "3.7", ("rhel", "7.6"), None, 2, 0),
    "17": ("2.5.1+rocm6.2", None, None, [], [], "3.12.8", ("ubuntu", "22.04"), None, 6, 0),
    "18": ("2.2.2", "12.1", "550.67", [f"{R} 3060 Ti"], ["8.9.7"], "3.12.2", ("arch", None), "12.4.99", 5, 14),
    "19": ("2.3.0+cu121", "12.1", "550.90.07", [f"{R} 4090"] * 8, ["8"], "3.10.14", ("ubuntu", "22.04"), None, 11, 0),
    "20": (
        "1.12.1+cu113",
        "11.3",
        "470.129.06",
        ["NVIDIA A100-SXM4-40GB"],
        [],
        "3.10.6",
        ("ubuntu", "20.04"),
        None,
        6,
        1,
    ),
    "21": (
        "2.0.0+cu118",
        "11.8",
        "525.85.12",
        ["Tesla V100-SXM2-32GB"],
        ["8.7.0"],
        "3.10.9",
        ("ubuntu", "22.04"),
        "11.8.89",
        5,
        0,
    ),
    "22": ("2.7.1+cpu", None, None, [], [], "3.11.13", ("ubuntu", "22.04"), None, 6, 0),
    "23": ("2.2.2", None, None, [], [], "3.10.13", ("macos", "14.5"), None, 4, 0),
    "24": ("1.8.0a0+c068180", None, None, [], [], "3.9", ("macos", "11.1"), None, 3, 1),
    "25": (
        "1.1.0a0+4335aac",
        "10.0",
        "1.1.0",
        ["GeForce GTX 1060 with Max-Q Design"],
        [],
        "3.7",
        ("macos", "10.13.6"),
        "10.0.130",
        2,
        5,
    ),
    # Added beyond ../shared/corpus (see their .source.txt): a Colab T4, and Windows 11 + ROCm on torch 2.9.
    "26": (
        "2.0.1+cu118",
        "11.8",
        "525.85.12",
        ["Tesla T4"],
        ["8.9.0"],
        "3.10.12",
        ("ubuntu", "20.04"),
        "11.8.89",
        8,
        0,
    ),
    "27": ("2.9.1+rocmsdk20260116", None, None, [], [], "3.12.0", ("windows", "11"), None, 5, 0),
    # Intel XPU builds (torch 2.7-2.13); 28 and 30 stop before the library list, 29 inside it.
    "28": ("2.8.0.dev20250516+xpu", None, None, [], [], "3.10.17", ("ubuntu", "22.04"), None, 0, 0),
    "29": ("2.7.1+xpu", None, None, [], ["8"], "3.10.13", ("windows", "11"), "11.8.89", 4, 0),
    "30": ("2.13.0+xpu", None, None, [], [], "3.14.4", ("ubuntu", "26.04"), None, 0, 0),
}


def load(name: str):
    path = CORPUS / f"{name}.txt"
    return import_bytes("collect-env", path.read_bytes(), path.name)


def test_every_corpus_report_has_a_row():
    files = sorted(p.stem for p in CORPUS.glob("*.txt") if not p.name.endswith(".source.txt"))
    assert files == sorted(CASES)
    assert all((CORPUS / f"{name}.txt.source.txt").is_file() for name in files)


@pytest.mark.parametrize("name", sorted(CASES))
def test_key_fields(name):
    torch, cuda_build, driver, gpus, cudnn, python, (os_id, os_version), nvcc, n_pip, n_conda = CASES[name]
    lock = load(name)
    assert lock.origin == "import:collect-env"
    frameworks = {f.name: f for f in lock.cuda.frameworks}
    assert frameworks["torch"].version == torch
    assert frameworks["torch"].cuda == cuda_build
    if driver is None:
        assert lock.nvidia is None or lock.nvidia.driver_version is None
    else:
        assert lock.nvidia.driver_version == driver
    found = list(lock.nvidia.gpus) if lock.nvidia else []
    assert [g.name for g in found] == gpus
    assert [g.index for g in found] == list(range(len(gpus)))
    components = lock.cuda.components
    assert [c.version for c in components if c.name == "cudnn"] == cudnn
    assert [c.version for c in components if c.name == "nvcc"] == ([nvcc] if nvcc else [])
    assert lock.python.version == python
    assert (lock.os.id, lock.os.version_id) == (os_id, os_version)
    assert len(lock.python.packages) == n_pip
    assert (len(lock.conda.packages) if lock.conda else 0) == n_conda
    # The lists are partial, and the lock says so (or that the report stops before them).
    assert any(
        "only the libraries it considers relevant" in w or "stops before its 'Versions" in w
        for w in lock.capture_warnings
    )
    # Layers the report does not carry stay unknown.
    assert lock.project is None


def test_gpu_compute_capability_only_for_known_names():
    assert [g.compute_capability for g in load("15").nvidia.gpus] == ["8.6", "7.5"]  # RTX 3090, RTX 2080 Ti
    assert {g.compute_capability for g in load("20").nvidia.gpus} == {"8.0"}  # A100
    assert {g.compute_capability for g in load("12").nvidia.gpus} == {"6.0"}  # P100


def test_os_kernel_glibc_and_architecture_from_the_platform_line():
    os_ = load("02").os
    assert (os_.name, os_.kernel, os_.architecture, os_.glibc) == (
        "Ubuntu 20.04.5 LTS",
        "5.15.0-46-generic",
        "x86_64",
        "2.31",
    )
    os_ = load("08").os  # "Linux-3.10.0-1160.25.1.el7.x86_64-x86_64-with-centos-7.9.2009-Core", glibc-2.3.4
    assert (os_.kernel, os_.glibc) == ("3.10.0-1160.25.1.el7.x86_64", "2.3.4")
    assert load("22").os.architecture == "aarch64"
    assert load("03").os.architecture == "arm64"


def test_lscpu_block_becomes_the_cpu_section():
    cpu = load("01").cpu  # 224-thread Sapphire Rapids
    assert (cpu.vendor, cpu.model_name, cpu.family, cpu.model, cpu.stepping) == (
        "GenuineIntel",
        "Genuine Intel(R) CPU 0000%@",
        6,
        143,
        3,
    )
    assert (cpu.logical_cores, cpu.physical_cores, cpu.sockets, cpu.numa_nodes) == (224, 112, 2, 2)
    assert {"avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "avx_vnni", "fma"} <= set(cpu.flags)
    assert "vmx" not in cpu.flags and "pse" not in cpu.flags  # not numerics flags
    cpu = load("21").cpu
    assert (cpu.model_name, cpu.family, cpu.model, cpu.stepping) == (
        "Intel(R) Xeon(R) Platinum 8255C CPU @ 2.50GHz",
        6,
        85,
        5,
    )
    assert "avx512_vnni" in cpu.flags and "amx_tile" not in cpu.flags
    cpu = load("22").cpu  # Kunpeng-920, "Stepping: 0x1", "Socket(s): -"
    assert (cpu.architecture, cpu.vendor, cpu.model_name, cpu.stepping, cpu.sockets) == (
        "aarch64",
        "HiSilicon",
        "Kunpeng-920",
        1,
        None,
    )
    assert {"asimd", "asimddp", "asimdhp"} <= set(cpu.flags)
    assert load("23").cpu.model_name == "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz"  # macOS short block
    assert load("02").cpu is None  # 1.x reports have no CPU block


def test_t4_and_windows_2x_shapes():
    lock = load("26")  # Colab: "Flags:" comes after the Vulnerability lines
    assert lock.nvidia.gpus[0].compute_capability == "7.5"
    assert lock.cpu.microarchitecture == "skylake_avx512" and "avx512f" in lock.cpu.flags
    lock = load("27")  # Windows CPU block is wmic Name/Manufacturer; "Family: 107" is not a CPUID family
    assert (lock.cpu.vendor, lock.cpu.model_name, lock.cpu.family) == (
        "AuthenticAMD",
        "AMD RYZEN AI MAX+ PRO 395 w/ Radeon 8060S",
        None,
    )
    assert lock.runtime is None  # "CUDA_MODULE_LOADING set to: " (empty)
    assert any("XPU available: no" in w for w in lock.capture_warnings)


def test_rocm_report_records_hip_and_miopen_and_no_nvidia_gpu():
    lock = load("17")
    assert lock.cuda.frameworks[0].rocm == "6.2.41133-dd7f95766"
    assert {(c.name, c.version) for c in lock.cuda.components} == {("hip", "6.2.41133"), ("miopen", "3.2.0")}
    assert lock.nvidia is None
    # The AMD GPU is recorded as what it is, not dropped and not as an NVIDIA GPU.
    acc = lock.accelerators
    assert (acc.runtime, acc.runtime_version) == ("rocm", "6.2.41133")
    assert [(d.index, d.vendor, d.name, d.architecture) for d in acc.devices] == [
        (0, "amd", "AMD Radeon RX 7900 XTX", "gfx1100")
    ]


def test_rocm_report_with_a_bare_board_name_is_still_amd():
    text = (CORPUS / "17.txt").read_text().replace("AMD Radeon RX 7900 XTX (gfx1100)", "Device 744c")
    lock = import_bytes("collect-env", text.encode(), "x")
    assert lock.nvidia is None
    assert [(d.vendor, d.name) for d in lock.accelerators.devices] == [("amd", "Device 744c")]


def test_ascend_report_records_npus_and_cann():
    lock = load("22")
    acc = lock.accelerators
    assert (acc.runtime, acc.runtime_version) == ("cann", "8.2.RC1")
    assert len(acc.devices) == 8
    assert {(d.vendor, d.name, d.memory_total_mib) for d in acc.devices} == {("huawei", "Ascend 910B2", 65536)}
    assert lock.nvidia is None


def test_cuda_module_loading_goes_to_runtime_env():
    assert load("18").runtime.env == {"CUDA_MODULE_LOADING": "LAZY"}
    assert load("03").runtime is None  # "N/A"


def test_conda_pytorch_build_string_names_the_cudnn_torch_was_built_with():
    assert load("18").cuda.frameworks[0].cudnn == "8.9.2"  # pytorch 2.2.2 py3.12_cuda12.1_cudnn8.9.2_0
    assert load("12").cuda.frameworks[0].cudnn == "7.5.1"  # pytorch-nightly py3.7_cuda9.0.176_cudnn7.5.1_0


def test_pip_and_conda_rows():
    lock = load("07")
    # The report contradicts itself: "PyTorch version: 1.9.0a0+gitd69c22d" but "[pip3] torch==1.10.0a0+gitf69cf3c".
    assert {p.name: p.version for p in lock.python.packages}["torch"] == "1.10.0a0+gitf69cf3c"
    conda = {p.name: p for p in lock.conda.packages}
    assert (conda["magma-cuda110"].version, conda["magma-cuda110"].build, conda["magma-cuda110"].channel) == (
        "2.5.2",
        "1",
        "pytorch",
    )
    assert conda["cudatoolkit"].channel is None and "torch" not in conda  # "torch ... pypi_0 pypi" is a pip package
    names = {p.name for p in load("22").python.packages}
    assert "torch-npu" in names  # "[pip3] torch_npu==..." normalised
    conda11 = {p.name: p.build for p in load("11").conda.packages}
    assert conda11["mkl"] == "118"  # the "<pip>" duplicate row is not a conda package


def test_mojibake_os_name_is_repaired():
    lock = load("11")
    assert lock.os.name == "Майкрософт Windows 10 Pro"
    assert lock.os.id == "windows"


def test_email_wrapped_and_backtick_wrapped_pastes():
    lock = load("23")  # "Python version: 3.10.13 (main, ...) [Clang 15.0.0" folded onto the next line
    assert lock.python.version == "3.10.13"
    assert any("Python 64-bit" in w for w in lock.capture_warnings)
    lock = load("24")  # whole block in single backticks
    assert lock.cuda.frameworks[0].version == "1.8.0a0+c068180"
    assert {p.name: p.version for p in lock.python.packages}["torchvision"] == "0.9.0a0+83171d6"


def test_fields_without_a_lock_home_are_noted_not_lost():
    notes = " ".join(load("15").capture_warnings)
    assert "debug build: yes" in notes  # "Is debug build: True"
    assert "CMake: version 3.22.2" in notes
    notes = " ".join(load("19").capture_warnings)
    assert "'OneFlow version'" in notes


def test_no_home_paths_or_user_names_reach_the_lock():
    text = dumps_lock(load("25"))  # cuDNN: /Users/hameerabbasi/cuda/lib/libcudnn.dylib
    assert "hameerabbasi" not in text and "/Users/" not in text
    text = dumps_lock(load("19"))  # OneFlow line holds /home/wangyi/miniconda3/...
    assert "wangyi" not in text and "/home/" not in text


def test_flags_line_folded_by_a_mail_client_is_joined():
    text = (CORPUS / "21.txt").read_text(encoding="utf-8")
    flags_line = next(line for line in text.splitlines() if line.startswith("Flags:"))
    folded = textwrap.fill(flags_line, width=76, break_on_hyphens=False)  # what a mail client does
    assert folded.count("\n") >= 5 and folded.splitlines()[-1].endswith("avx512_vnni")
    lock = import_bytes("collect-env", text.replace(flags_line, folded).encode(), "21-folded.txt")
    # "avx512_vnni" is the last flag of 21.txt, on the last folded line; "sse4_2" sits on an inner one.
    assert {"avx512_vnni", "sse4_2", "avx2", "fma"} <= set(lock.cpu.flags)
    assert lock.cpu.flags == load("21").cpu.flags


def test_shell_prompt_and_runtime_warning_before_the_report_are_ignored():
    lock = load("18")  # starts with "$ python -m torch.utils.collect_env" and a RuntimeWarning
    assert lock.cuda.frameworks[0].version == "2.2.2"


def test_utf16_report_from_powershell_is_read():
    data = (CORPUS / "10.txt").read_text(encoding="utf-8").encode("utf-16")  # BOM + UTF-16LE, as PowerShell 5 writes
    lock = import_bytes("collect-env", data, "env.txt")
    assert lock.cuda.frameworks[0].version == "1.4.0+cpu"


def test_a_value_the_lock_refuses_costs_only_its_row():
    text = (CORPUS / "04.txt").read_text(encoding="utf-8").replace("[pip3] numpy==1.23.3", "[pip3] numpy==1.23.3;curl")
    lock = import_bytes("collect-env", text.encode(), "x.txt")
    names = {p.name for p in lock.python.packages}
    assert "numpy" not in names and "torch" in names
    assert any("numpy" in w and "skipped" in w for w in lock.capture_warnings)


def test_a_bare_major_version_symlink_is_not_a_second_cudnn():
    # 02.txt lists libcudnn.so.8.7.0; reports from other machines also list its libcudnn.so.8 symlink.
    text = (CORPUS / "02.txt").read_text()
    line = "/usr/lib/x86_64-linux-gnu/libcudnn.so.8.7.0\n"
    assert line in text
    lock = import_bytes(
        "collect-env", text.replace(line, "/usr/lib/x86_64-linux-gnu/libcudnn.so.8\n" + line).encode(), "x"
    )
    assert [c.version for c in lock.cuda.components if c.name == "cudnn"] == ["8.7.0"]
