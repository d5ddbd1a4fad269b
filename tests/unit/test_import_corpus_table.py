"""Every value in tests/data/corpus/EXPECTED.toml, read by eye from its corpus file, comes out of
`envlock import FILE` (the format guessed) unchanged; a value marked "-" stays unknown.

benchmarks/import_accuracy.py counts the same table into the accuracy figure of
benchmarks/RESULTS.md; here each file is one test, so a miss names its file and field.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "import_accuracy.py"
_spec = importlib.util.spec_from_file_location("import_accuracy", _SCRIPT)
assert _spec is not None and _spec.loader is not None
accuracy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(accuracy)

TABLE = accuracy.expectations()


def test_the_table_covers_every_corpus_file():
    files = {
        str(p.relative_to(accuracy.CORPUS))
        for p in accuracy.CORPUS.rglob("*")
        if p.is_file() and not p.name.endswith((".source.txt", ".md", ".toml"))
    }
    # conda_env, conda_explicit, conda_lock and pylock files are table-tested in test_import_packages.py.
    others = {f for f in files if f.split("/")[0] in ("conda_env", "conda_explicit", "conda_lock", "pylock")}
    assert files - others - set(TABLE) == set()
    for relative in TABLE:
        assert (accuracy.CORPUS / (relative + ".source.txt")).is_file(), f"{relative} has no source sidecar"


@pytest.mark.parametrize("relative", sorted(TABLE))
def test_corpus_file_imports_as_read_by_eye(relative):
    result = accuracy.check_file(relative, TABLE[relative])
    assert result["error"] is None, result["error"]
    wrong = {key: (want, got) for key, (ok, want, got) in result["fields"].items() if not ok}
    assert wrong == {}
    assert result["silent"] == [], "these losses were not said in a warning"


def test_the_path_reader_can_fail():
    lock = {"nvidia": {"gpus": [{"index": 1, "name": "A"}]}, "python": {"packages": [{"name": "x", "version": "1"}]}}
    assert accuracy.field_value(lock, "nvidia.gpus[1].name") == "A"
    assert accuracy.field_value(lock, "nvidia.gpus[0].name") == accuracy.UNKNOWN
    assert accuracy.field_value(lock, "python.packages[x].version") == "1"
    assert accuracy.field_value(lock, "nvidia.gpus.count") == 1
    assert accuracy.field_value(lock, "cuda.components.count") == accuracy.UNKNOWN
