"""The compatibility tables, row by row against shared/facts/CUDA.md (read independently here)."""

from __future__ import annotations

import csv
import re
from importlib import resources
from pathlib import Path

import pytest

from envlock.compat import data

FACTS = Path(__file__).resolve().parents[3] / "shared" / "facts" / "CUDA.md"


def facts_table(heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table under ``heading`` in CUDA.md, as cells."""
    if not FACTS.is_file():  # collected before fixtures run: fail loudly, never skip
        return [["MISSING", str(FACTS)]]
    lines = FACTS.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("### "):
            break
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue
        rows.append(cells)
    return rows[1:]  # drop the header row


DRIVER_ROWS = facts_table("### 3.1")
GPU_ROWS = facts_table("### 3.3")


def test_facts_tables_were_found():
    assert len(DRIVER_ROWS) >= 50 and DRIVER_ROWS[0][0] != "MISSING", FACTS
    assert len(GPU_ROWS) >= 15


@pytest.mark.parametrize("row", DRIVER_ROWS, ids=[r[0] for r in DRIVER_ROWS])
def test_every_driver_minimum_row(row):
    toolkit, linux, windows = row[:3]
    found = data.driver_row(toolkit)
    assert found is not None, f"{toolkit!r} missing from driver_minimums.csv"
    assert found.linux == linux.strip("≥ ")
    assert found.windows == (None if windows == "N/A" else windows.strip("≥ "))
    # The version columns agree with the label's first number.
    major_minor = re.match(r"([0-9]+)\.([0-9]+)", toolkit)
    assert found.cuda == (int(major_minor.group(1)), int(major_minor.group(2)))


@pytest.mark.parametrize(
    "row",
    [
        r
        for r in DRIVER_ROWS
        if re.search(r"\bGA\b|^[0-9.]+$|^[0-9.]+ \([0-9.]+\)$|and updates", r[0])
        and "GA2" not in r[0]
        and "RC" not in r[0]
    ],
    ids=lambda r: r[0],
)
def test_minimum_driver_for_a_runtime_is_its_ga_row(row):
    """A runtime X.Y needs the driver of the X.Y GA (first) release."""
    toolkit, linux = row[:2]
    version = re.match(r"([0-9]+\.[0-9]+)", toolkit).group(1)
    assert data.minimum_driver(version).linux == linux


def test_driver_table_has_nothing_the_facts_lack():
    assert sorted(r.toolkit for r in data.driver_minimums()) == sorted(r[0] for r in DRIVER_ROWS)


def test_windows_13x_has_no_bundled_driver():
    # "Starting with CUDA 13.1, the Windows display driver is no longer bundled"; the table says N/A from 13.0.
    assert data.minimum_driver("13.0", "windows") is None
    assert data.minimum_driver("12.9", "windows").windows == "576.02"


def _gpu_names(label: str) -> list[str]:
    """``"A10 (also A40, A16, A2)"`` -> A10, A40, A16, A2; ``"Jetson T5000/T4000 (Thor)"`` -> both Jetsons."""
    also = re.search(r"\(also ([^)]*)\)", label)
    names = [n.strip() for n in re.sub(r"\([^)]*\)", "", label).split(" / ")]
    expanded = []
    for name in names:
        first, *rest = name.split("/")
        expanded.append(first.strip())
        prefix = first.rsplit(" ", 1)[0] + " " if " " in first else ""
        expanded += [prefix + r.strip() for r in rest]
    if also:
        expanded += [n.strip() for n in also.group(1).split(",")]
    return expanded


GPU_CASES = [(name, row[1], row[2], row[3]) for row in GPU_ROWS for name in _gpu_names(row[0])]


@pytest.mark.parametrize("name,cc,arch,first_cuda", GPU_CASES, ids=[c[0] for c in GPU_CASES])
def test_every_compute_capability_row(name, cc, arch, first_cuda):
    # Looked up the way NVML names boards ("NVIDIA H200").
    assert data.compute_capability_for(f"NVIDIA {name}") == cc
    model = data.gpu_model(name)
    assert model.gpu == name and model.architecture == arch
    first = re.match(r"([0-9]+)\.([0-9]+)", first_cuda)
    assert model.first_cuda == ((int(first.group(1)), int(first.group(2))) if first else None)


@pytest.mark.parametrize(
    "nvml_name,cc",
    [
        ("NVIDIA H200", "9.0"),
        ("Tesla V100-SXM2-16GB", "7.0"),
        ("Tesla V100-PCIE-16GB", "7.0"),
        ("NVIDIA A100-SXM4-80GB", "8.0"),
        ("A100-SXM4-40GB", "8.0"),
        ("NVIDIA A100-PCIE-40GB", "8.0"),  # A100 is not A10
        ("NVIDIA H100 80GB HBM3", "9.0"),
        ("NVIDIA GH200 480GB", "9.0"),
        ("Tesla T4", "7.5"),
        ("NVIDIA GeForce RTX 3090", "8.6"),
        ("NVIDIA GeForce RTX 4090", "8.9"),
        ("NVIDIA L40S", "8.9"),  # L40S is its own row, not L40
        ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "12.0"),
        ("NVIDIA GeForce RTX 5090", "12.0"),
        ("NVIDIA GB10", "12.1"),
        ("NVIDIA B200", "10.0"),
        ("NVIDIA A10G", None),  # not in the facts: unknown, never guessed
        ("NVIDIA GeForce RTX 2080 Ti", None),
        ("", None),
    ],
)
def test_nvml_board_names(nvml_name, cc):
    assert data.compute_capability_for(nvml_name) == cc


def test_forward_compat_only_for_datacenter_and_jetson():
    assert data.gpu_model("Tesla T4").forward_compat_possible
    assert data.gpu_model("Jetson AGX Orin").forward_compat_possible
    assert not data.gpu_model("NVIDIA GeForce RTX 4090").forward_compat_possible


@pytest.mark.parametrize(
    "cuda,cc,removed",
    [
        ((13, 0), (7, 0), True),  # Volta removed in 13.0
        ((13, 2), (6, 1), True),  # Pascal
        ((13, 0), (5, 2), True),  # Maxwell
        ((13, 0), (7, 5), False),  # Turing is the new minimum
        ((12, 9), (7, 0), False),  # deprecated, not removed
        ((12, 0), (3, 5), True),
        ((11, 8), (3, 5), False),
        ((11, 0), (3, 0), True),
        ((10, 2), (3, 0), False),
        ((9, 0), (2, 1), True),
        ((8, 0), (2, 0), False),  # 8.0 was the last with 2.x
        ((7, 0), (1, 3), True),
        ((6, 5), (1, 3), False),  # 6.5 was the last with 1.x
    ],
)
def test_dropped_architectures(cuda, cc, removed):
    assert (data.unsupported_by_cuda(cuda, cc) is not None) is removed


def test_deprecated_in_12_8():
    assert data.deprecated_in_cuda((12, 8), (7, 0)) is not None
    assert data.deprecated_in_cuda((12, 6), (7, 0)) is None


@pytest.mark.parametrize(
    "major,linux",
    [(11, "450.80.02"), (12, "525.60.13"), (13, "580")],
)
def test_minor_version_compat_floors(major, linux):
    assert data.minor_compat_floor(major).linux == linux


def test_no_minor_version_compat_before_cuda_11():
    assert data.minor_compat_floor(10) is None


def test_torch_arch_lists():
    row = data.torch_arch_list("2.7.0+cu128", (12, 8))
    assert row.sass == ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120") and row.ptx == ("compute_120",)
    assert "sm_70" in data.torch_arch_list("2.8.0+cu126", (12, 6)).sass
    assert "sm_70" not in data.torch_arch_list("2.8.1+cu128", (12, 8)).sass
    assert data.torch_arch_list("2.7.1+cu128", (12, 8)) is None  # not published in the facts: unknown


@pytest.mark.parametrize(
    "driver,minimum,ok",
    [
        ("580.65.06", "580", True),
        ("570.26", "570.124.06", False),
        ("535.104.05", "535.54.03", True),
        ("470.82.01", "525.60.13", False),
        ("garbage", "1", None),
    ],
)
def test_driver_comparison(driver, minimum, ok):
    assert data.driver_at_least(driver, minimum) is ok


DATA_FILES = [
    "driver_minimums.csv",
    "minor_version_compat.csv",
    "compute_capabilities.csv",
    "dropped_architectures.csv",
    "torch_arch_lists.csv",
]


@pytest.mark.parametrize("name", DATA_FILES)
def test_data_files_are_sorted_and_sourced(name):
    text = resources.files("envlock.compat").joinpath("data", name).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert rows and all(r["source"].strip() for r in rows)
    first = list(rows[0])[0]

    def key(row):
        nums = tuple(int(n) for n in re.findall(r"[0-9]+", row[first]))
        rest = tuple(row[k] for k in list(row)[1:3])
        if name == "driver_minimums.csv":
            return nums, int(row["update"])
        if name == "compute_capabilities.csv":
            return data.cc_tuple(row["compute_capability"]), row["gpu"]
        return nums, rest

    assert rows == sorted(rows, key=key)
