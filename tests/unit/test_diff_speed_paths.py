"""The shortcuts that keep a diff of thousands of findings fast give what the plain paths give.

One combined pattern classifies libraries as the per-class patterns do; the
tables escape exactly the cells that need it, however many cells there are;
``json_report`` writes what ``json.dumps(..., indent=2)`` writes; the diff
command switches the cyclic collector back on whatever happens.
"""

from __future__ import annotations

import gc
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envlock import records
from envlock.cli import main
from envlock.diff import _ANY_LIBRARY, _LIBRARY_CLASSES, rank_library
from envlock.findings import Finding
from envlock.lockfile import model as m
from envlock.lockfile.write import write_lock
from envlock.report import json_report, markdown_table, table

# Pieces of the library names the classes are written for, so that generated
# names land in every class, between classes and in none.
NAME_PIECES = [
    "nvidia-",
    "lib",
    "cudnn",
    "cublas",
    "lt",
    "nccl",
    "cudart",
    "cuda-",
    "runtime",
    "toolkit",
    "nvcc",
    "nvrtc",
    "cufft",
    "curand",
    "cusparse",
    "cusparselt",
    "openblas",
    "mkl",
    "intel-openmp",
    "blas",
    "lapack",
    "blis",
    "atlas",
    "scipy-",
    "numpy-base",
    "accelerate",
    "-cu12",
    "-dev",
    "8",
    "64",
    "-",
    ".",
    "torch",
    "X",
]


def first_matching_class(name: str) -> tuple[int, str, str] | None:
    """The reference: the classes tried one at a time, in order."""
    for pattern, rank, layer, what in _LIBRARY_CLASSES:
        if re.fullmatch(pattern, name.lower()):
            return rank, layer, what
    return None


def test_each_class_is_one_group_of_the_combined_pattern():
    # A capturing group inside a class's pattern would shift the group numbers that name the classes.
    assert _ANY_LIBRARY.groups == len(_LIBRARY_CLASSES)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(NAME_PIECES), min_size=1, max_size=5).map("".join))
def test_one_pattern_classifies_as_the_classes_one_at_a_time(name):
    assert rank_library(name) == first_matching_class(name)


@pytest.mark.parametrize(
    "name,rank",
    [
        ("nvidia-cudnn-cu12", 20),
        ("libcublasLt12", 21),
        ("nvidia-nccl-cu12", 22),
        ("cuda-cudart-dev", 23),
        # Matches the CUDA-library class and the cuDNN one would not: the first class that matches the whole name wins.
        ("nvidia-cusparselt-cu12", 24),
        ("libopenblas0-pthread", 40),
        ("numpy", None),
        ("cudnn-extra", None),
    ],
)
def test_library_classes(name, rank):
    found = rank_library(name)
    assert (found[0] if found else None) == rank == (first_matching_class(name) or (None,))[0]


def test_a_table_escapes_the_cells_that_need_it_among_thousands_that_do_not():
    rows = [("numpy", f"1.{i}", None) for i in range(3000)]
    rows[1700] = ("\x1b[31mred", "a\u202eb", 7)
    lines = table(("name", "version", "note"), rows).split("\n")
    assert lines[2 + 1700] == "\\u001b[31mred  a\\u202eb  7"
    assert lines[2] == "numpy          1.0"
    assert all("\x1b" not in line and "\u202e" not in line for line in lines)


def test_a_table_keeps_short_rows_short_and_clips_long_cells():
    text = table(("a", "b", "c"), [("x",), ("y", "z" * 70, "w")])
    assert text.split("\n") == ["a  b" + " " * 61 + "c", "-  " + "-" * 60 + "  -", "x", "y  " + "z" * 59 + "…  w"]


def test_a_table_row_longer_than_its_headers_is_an_error_as_before():
    with pytest.raises(IndexError):
        table(("a",), [("x", "y")])


def test_markdown_cells_keep_their_bars_backticks_and_nul_apart():
    text = markdown_table(("a", "b"), [("x|y", "`z`"), ("nul\x00here", None), ("ok", 3)])
    assert text.split("\n") == [
        "| a | b |",
        "|---|---|",
        "| x\\|y | \\`z\\` |",
        # A NUL in a value is escaped, never mistaken for the mark between two cells.
        "| nul\\u0000here |  |",
        "| ok | 3 |",
    ]


json_scalars = st.one_of(
    st.text(),
    st.sampled_from(["},\n      {", '"},\n      {"', '\n  "findings": []', "\\", "\u2028"]),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
json_keys = st.one_of(st.sampled_from(["layer", "path", "why", "findings"]), st.text(max_size=8))
flat_records = st.lists(st.dictionaries(json_keys, json_scalars, max_size=6), max_size=6)


@settings(max_examples=500, deadline=None)
@given(
    flat_records,
    st.dictionaries(
        json_keys,
        st.one_of(json_scalars, st.dictionaries(json_keys, st.one_of(json_scalars, flat_records), max_size=3)),
        max_size=3,
    ),
)
def test_json_report_is_json_dumps_indented(found, extra):
    payload = {**extra, "findings": found}
    assert json_report(payload, "findings") == json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)


@pytest.mark.parametrize(
    "found",
    [[], [{}], [{"a": 1}, {}], [{"a": [1, 2]}], [{"a": {"b": "c"}}], [["a"]], ({"a": 1},), [{"a": 1}, "b"]],
)
def test_json_report_of_other_shapes_is_json_dumps(found):
    payload = {"findings": found, "locks": {"A": "a"}}
    assert json_report(payload, "findings") == json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)


def test_finding_to_dict_is_its_fields_without_none():
    finding = Finding(layer="python", path="python.packages[x]", severity="differs", message="m", locked="", rank=80)
    assert finding.to_dict() == {k: v for k, v in records.values(finding).items() if v is not None}
    assert list(finding.to_dict()) == ["layer", "path", "severity", "message", "locked", "status", "rank"]


def _lock(version: str) -> m.Lock:
    return m.Lock(python=m.PythonSection(version="3.11.7", packages=(m.PythonPackage(name="six", version=version),)))


def test_diff_switches_the_collector_back_on(tmp_path, capsys):
    write_lock(_lock("1.16.0"), tmp_path / "a.lock")
    write_lock(_lock("1.17.0"), tmp_path / "b.lock")
    (tmp_path / "bad.lock").write_text("lock-version = [")
    assert gc.isenabled()
    assert main(["diff", str(tmp_path / "a.lock"), str(tmp_path / "b.lock")]) == 1
    assert gc.isenabled()
    assert main(["diff", str(tmp_path / "a.lock"), str(tmp_path / "bad.lock")]) == 2
    assert gc.isenabled()
    gc.disable()
    try:
        main(["diff", str(tmp_path / "a.lock"), str(tmp_path / "b.lock")])
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
    assert "six" in capsys.readouterr().out
