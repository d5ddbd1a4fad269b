"""`envlock diff` and `envlock show` on [accelerators] (AMD GPUs, Ascend NPUs), from real imported reports.

The inputs are the corpus files of tests/data/corpus (collect_env of ROCm and Ascend
builds, rocm-smi output); every expected value was read from those files by eye.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envlock import records
from envlock.diff import diff_section, section_digest
from envlock.lockfile import model as m
from tests.conftest import run_envlock

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"


@pytest.fixture(scope="module")
def locks(tmp_path_factory):
    out = tmp_path_factory.mktemp("accelerators")
    made = {}
    for key, fmt, rel in (
        ("rx7900", "collect-env", "collect_env/17.txt"),  # RX 7900 XTX, gfx1100, ROCm 6.2.41133
        ("strix", "collect-env", "collect_env/27.txt"),  # Radeon 8060S, gfx1151, ROCm 7.2.26024
        ("ascend", "collect-env", "collect_env/22.txt"),  # 8x Ascend 910B2, CANN 8.2.RC1
        ("mi100x2", "rocm-smi", "rocm_smi/02.csv.mi100x2.txt"),  # two MI100
        ("mi100", "rocm-smi", "rocm_smi/04.showproductname.mi100-rocm4.txt"),  # one, named by its id 0x738c
    ):
        path = out / f"{key}.lock"
        done = run_envlock("import", fmt, str(CORPUS / rel), "-o", str(path), "-q")
        assert done.returncode == 0, done.stderr
        made[key] = str(path)
    return made


def findings(a: str, b: str) -> tuple[int, dict[str, dict]]:
    done = run_envlock("diff", a, b, "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, {f["path"]: f for f in json.loads(done.stdout)["findings"]}


def test_two_amd_gpus_differ_in_architecture_model_and_rocm(locks):
    rc, found = findings(locks["rx7900"], locks["strix"])
    assert rc == 1
    arch = found["accelerators.devices.architecture"]
    assert (arch["locked"], arch["actual"]) == ("gfx1100", "gfx1151")
    assert arch["rank"] == 10 and arch["severity"] == "numeric" and arch["layer"] == "gpu"
    model = found["accelerators.devices.name"]
    assert (model["locked"], model["actual"]) == ("AMD Radeon RX 7900 XTX", "AMD Radeon(TM) 8060S Graphics")
    assert model["rank"] == 11
    stack = found["accelerators.runtime-version"]
    assert (stack["locked"], stack["actual"]) == ("6.2.41133", "7.2.26024")
    assert stack["rank"] == 23


def test_accelerator_count_and_model_from_rocm_smi(locks):
    rc, found = findings(locks["mi100x2"], locks["mi100"])
    assert rc == 1
    count = found["accelerators.devices"]
    assert (count["locked"], count["actual"]) == ("2", "1")
    assert count["rank"] == 12
    assert found["accelerators.devices.name"]["actual"] == "0x738c"


def test_amd_against_ascend_names_vendor_and_stack(locks):
    _rc, found = findings(locks["rx7900"], locks["ascend"])
    assert (found["accelerators.devices.vendor"]["locked"], found["accelerators.devices.vendor"]["actual"]) == (
        "amd",
        "huawei ×8",
    )
    assert (found["accelerators.runtime"]["locked"], found["accelerators.runtime"]["actual"]) == ("rocm", "cann")


def test_a_lock_against_itself_has_no_accelerator_finding(locks):
    rc, found = findings(locks["rx7900"], locks["rx7900"])
    assert rc == 0 and found == {}


def test_show_and_summary_name_the_accelerators_not_unknown_gpus(locks):
    shown = run_envlock("show", locks["rx7900"])
    assert shown.returncode == 0, shown.stderr
    assert "1× AMD Radeon RX 7900 XTX (gfx1100); ROCm 6.2.41133" in shown.stdout
    only_smi = run_envlock("show", locks["mi100x2"], "--markdown")
    assert only_smi.returncode == 0, only_smi.stderr
    assert "2× Arcturus GL-XL \\[AMD Instinct MI100\\]" in only_smi.stdout or "2× Arcturus GL-XL" in only_smi.stdout
    assert "GPUs unknown" not in only_smi.stdout
    assert "accelerators 2× Arcturus GL-XL" in only_smi.stdout


devices = st.lists(
    st.builds(
        m.Accelerator,
        vendor=st.sampled_from(["amd", "huawei"]),
        name=st.sampled_from(["AMD Instinct MI100", "Ascend 910B2"]),
        architecture=st.sampled_from([None, "gfx908", "gfx90a"]),
        memory_total_mib=st.sampled_from([None, 32768, 65536]),
    ),
    max_size=3,
)
sections = st.builds(
    m.AcceleratorSection,
    runtime=st.sampled_from([None, "rocm", "cann"]),
    runtime_version=st.sampled_from([None, "6.2.41133", "8.2.RC1"]),
    driver_version=st.sampled_from([None, "6.8.5"]),
    devices=devices.map(lambda ds: tuple(records.replace(d, index=i) for i, d in enumerate(ds))),
)


@settings(max_examples=200, deadline=None)
@given(sections, sections)
def test_equal_accelerator_digests_mean_no_findings(a, b):
    # N-way grouping (envlock.diff_nway) relies on it.
    if section_digest("accelerators", a) == section_digest("accelerators", b):
        assert diff_section("accelerators", a, b) == []
    assert bool(diff_section("accelerators", a, a)) is False


@settings(max_examples=200, deadline=None)
@given(sections, sections)
def test_accelerator_diff_b_a_mirrors_diff_a_b(a, b):
    # THREATS.md H2: swapping the locks swaps the sides of every finding and nothing else.
    def sides(found, swap):
        return sorted(
            ((f.path, f.rank, f.status, *((f.actual, f.locked) if swap else (f.locked, f.actual))) for f in found),
            key=repr,
        )

    assert sides(diff_section("accelerators", b, a), swap=True) == sides(diff_section("accelerators", a, b), swap=False)
