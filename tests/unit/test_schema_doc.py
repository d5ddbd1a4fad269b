"""docs/lockfile.md documents every field the model accepts (conda-lock keeps its schema current the same way)."""

from pathlib import Path

from envlock.lockfile import schema_doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "lockfile.md"


def test_committed_field_reference_is_current():
    text = DOC.read_text(encoding="utf-8")
    start = text.index(schema_doc.BEGIN)
    end = text.index(schema_doc.END) + len(schema_doc.END)
    assert text[start:end] == schema_doc.generate(), "run: python -m envlock.lockfile.schema_doc --update"


def test_every_model_table_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for key in ("`[[python.packages]]`", "`[[nvidia.gpus]]`", "`cuda-sass`", "`driver-present`", "`archive-hash`"):
        assert key in text
