"""Field-level accuracy of `envlock import` over the whole test corpus.

Every value in tests/data/corpus/EXPECTED.toml was read by eye from the corpus file it belongs
to; this script imports each file the way a user would (`envlock import FILE`, the format
guessed), then counts the fields that came out right.  A file whose import fails counts every one
of its fields as wrong; a traceback is counted separately; a `warns` entry that no warning
matches counts as silent loss.

    .venv/bin/python benchmarks/import_accuracy.py            # the summary
    .venv/bin/python benchmarks/import_accuracy.py --misses   # and each wrong field

The same table drives tests/unit/test_import_corpus_table.py.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"
EXPECTED = CORPUS / "EXPECTED.toml"
# "-" in the table: the field must be unknown (absent from the lock).
UNKNOWN = "-"
_SEGMENT = re.compile(r"^(?P<key>[a-z][a-z0-9-]*)(?:\[(?P<item>[^\]]+)\])?$")


def expectations() -> dict[str, dict[str, Any]]:
    import tomli  # a declared dependency; tomllib is 3.11+ only

    return tomli.loads(EXPECTED.read_text(encoding="utf-8"))


def field_value(lock_dict: dict[str, Any], path: str) -> Any:
    """The value at ``path`` in a lock's dict (``codec.to_dict``), or ``UNKNOWN`` when absent."""
    node: Any = lock_dict
    segments = path.split(".")
    for position, segment in enumerate(segments):
        if segment == "count" and position == len(segments) - 1:
            return len(node) if isinstance(node, list) else UNKNOWN
        found = _SEGMENT.match(segment)
        if found is None:
            raise ValueError(f"bad path segment {segment!r} in {path!r}")
        if not isinstance(node, dict) or found.group("key") not in node:
            return UNKNOWN
        node = node[found.group("key")]
        item = found.group("item")
        if item is not None:
            if not isinstance(node, list):
                return UNKNOWN
            if item.isdigit():
                matches = [x for x in node if x.get("index") == int(item)]
            else:
                matches = [x for x in node if x.get("name") == item]
            if not matches:
                return UNKNOWN
            node = matches[0]
    return node


def check_file(relative: str, expected: dict[str, Any]) -> dict[str, Any]:
    """Import one corpus file with the format guessed; per-field results and problems."""
    from envlock.errors import EnvlockError
    from envlock.formats.importers import import_bytes
    from envlock.lockfile import codec

    fields = {k: v for k, v in expected.items() if k not in ("format", "warns")}
    result: dict[str, Any] = {"fields": {}, "error": None, "traceback": False, "silent": []}
    path = CORPUS / relative
    try:
        lock = import_bytes("auto", path.read_bytes(), path.name)
    except EnvlockError as exc:
        result["error"] = exc.message
        result["fields"] = {k: (False, v, "import refused") for k, v in fields.items()}
        return result
    except Exception as exc:  # noqa: BLE001 - counted: a traceback is what this figure guards against
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = True
        result["fields"] = {k: (False, v, "traceback") for k, v in fields.items()}
        return result
    data = codec.to_dict(lock)
    chosen = (lock.origin or "").removeprefix("import:")
    result["fields"]["(format guessed)"] = (chosen == expected["format"], expected["format"], chosen)
    for key, want in fields.items():
        got = field_value(data, key)
        result["fields"][key] = (got == want, want, got)
    for words in expected.get("warns", []):
        if not any(words in w for w in lock.capture_warnings):
            result["silent"].append(words)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list every wrong field")
    args = parser.parse_args()
    right = checked = tracebacks = refused = 0
    silent: list[str] = []
    per_format: dict[str, list[int]] = {}
    for relative, expected in expectations().items():
        result = check_file(relative, expected)
        tracebacks += result["traceback"]
        refused += result["error"] is not None
        silent += [f"{relative}: {w}" for w in result["silent"]]
        counts = per_format.setdefault(expected["format"], [0, 0, 0])
        counts[2] += 1
        for key, (ok, want, got) in result["fields"].items():
            checked += 1
            right += ok
            counts[0] += ok
            counts[1] += 1
            if not ok and args.misses:
                print(f"MISS {relative}: {key}: expected {want!r}, got {got!r}")
        if result["error"] and args.misses:
            print(f"FAIL {relative}: {result['error']}")
    files = len(expectations())
    print(f"files: {files}   fields right / checked: {right} / {checked} = {100 * right / checked:.2f}%")
    print(f"tracebacks: {tracebacks}   refused: {refused}   silent losses (expected warning missing): {len(silent)}")
    print("| format | files | fields right / checked |")
    print("| --- | --- | --- |")
    for fmt, (ok, total, count) in sorted(per_format.items()):
        print(f"| {fmt} | {count} | {ok} / {total} |")
    for line in silent:
        print(f"SILENT {line}")
    return 0 if right == checked and not tracebacks and not silent else 1


if __name__ == "__main__":
    sys.exit(main())
