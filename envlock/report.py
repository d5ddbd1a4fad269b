"""Render findings for people (terminal tables, Markdown) and for programs (JSON).

Every value that came from a lockfile or another machine is escaped before it
reaches a terminal: a lock may carry ANSI/OSC sequences or bidi overrides
(THREATS.md H3); the loader rejects them, and this is the second fence.
"""

from __future__ import annotations

import json
import re
from itertools import chain, zip_longest

from envlock.findings import Finding, sort_findings

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Iterable, Sequence

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def safe(value: object) -> str:
    """One printable line for any value: control, bidi and zero-width characters escaped."""
    text = "" if value is None else str(value)
    return _UNSAFE.sub(_escape, text)


def _safe_cells(rows: Iterable[Sequence[object]]) -> list[list[str]]:
    """``safe`` of every cell, with one search over all of them instead of one ``sub`` per cell.

    Lockfile values reaching a report are nearly always clean already (the
    loader rejects control characters): a diff of 5,000 changed packages has
    25,000 cells, and one search over their joined text takes 3 ms where
    25,000 ``sub`` calls take 9 ms.  The characters escaped are single code
    points, so joining cannot make or hide a match.
    """
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    if _UNSAFE.search("".join(["".join(row) for row in cells])) is not None:
        cells = [[_UNSAFE.sub(_escape, text) for text in row] for row in cells]
    return cells


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], max_width: int = 60) -> str:
    """A plain, aligned text table (no box drawing, so it survives copy-paste)."""
    cells = [
        [text if len(text) <= max_width else text[: max_width - 1] + "…" for text in row] for row in _safe_cells(rows)
    ]
    widths = [len(h) for h in headers]
    # Column by column (rows are short, columns long); a row with more cells
    # than there are headers fails here, a shorter one leaves its tail empty.
    for i, column in enumerate(zip_longest(*cells, fillvalue="")):
        widths[i] = max(widths[i], max(map(len, column)))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(["  ".join(map(str.ljust, row, widths)).rstrip() for row in cells])
    return "\n".join(lines)


def md_escape(value: object) -> str:
    return safe(value).replace("|", "\\|").replace("`", "\\`")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    # md_escape per cell, a row at a time: after _safe_cells no cell holds a
    # control character, so "\x00" marks the column bars while the row's text
    # is escaped in one pass (5,000 rows of 8 cells: 25 ms -> 11 ms).
    for row in _safe_cells(rows):
        lines.append("| " + "\x00".join(row).replace("|", "\\|").replace("`", "\\`").replace("\x00", " | ") + " |")
    return "\n".join(lines)


def findings_text(findings: list[Finding], title: str | None = None) -> str:
    ordered = sort_findings(findings)
    out = []
    if title:
        out.append(title)
    if not ordered:
        out.append("no findings")
        return "\n".join(out)
    rows = [(f.severity, f.layer, f.path, f.locked or "", f.actual or "", f.message) for f in ordered]
    out.append(table(("severity", "layer", "where", "locked", "here", "what"), rows))
    details = [f for f in ordered if f.why or f.fix]
    if details:
        out.append("")
        for f in details:
            out.append(f"- {safe(f.path)}: {safe(f.message)}")
            if f.why:
                out.append(f"    why: {safe(f.why)}")
            if f.fix:
                out.append(f"    fix: {safe(f.fix)}")
    return "\n".join(out)


def findings_markdown(findings: list[Finding], title: str | None = None) -> str:
    ordered = sort_findings(findings)
    out = []
    if title:
        out.append(f"## {md_escape(title)}\n")
    if not ordered:
        out.append("No findings.")
        return "\n".join(out)
    rows = [
        (f.severity, f.layer, f.path, f.locked or "", f.actual or "", f.message, f.why or "", f.fix or "")
        for f in ordered
    ]
    out.append(markdown_table(("severity", "layer", "where", "locked", "here", "what", "why", "fix"), rows))
    return "\n".join(out)


def findings_json(findings: list[Finding], **extra: object) -> str:
    payload = dict(extra)
    payload["findings"] = [f.to_dict() for f in sort_findings(findings)]
    return json_report(payload, "findings")


# Values that json writes the same way wherever they are and that hold no
# brackets of their own; bool is a subclass of int but has its own type.
_JSON_SCALARS = frozenset({str, int, bool, float, type(None)})


def json_report(payload: dict, records_key: str) -> str:
    """``json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)``, faster for long record lists.

    ``payload[records_key]`` is a list of flat dicts (findings as
    ``to_dict``), which is nearly all of a large report.  ``json`` writes
    indented output with its pure-Python encoder; a diff of 5,000 changed
    packages (1.8 MB of JSON) took 45 ms that way and takes 26 ms when the
    list goes through the C encoder, whose separator carries the newline and
    indentation between keys.  Strings come out escaped (no raw newline), so
    ``"},\n      {"`` occurs only between two records and is re-indented
    there.  Any other shape goes through ``json.dumps`` itself.
    """
    records = payload[records_key]
    if not _flat_records(records):
        return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)
    items = json.dumps(records, sort_keys=True, ensure_ascii=False, separators=(",\n      ", ": "))
    # items is '[{"k": v,\n      "k": v},\n      {...}]': open and close each record on lines of their own.
    listed = "[\n    {\n      " + items[2:-2].replace("},\n      {", "\n    },\n    {\n      ") + "\n    }\n  ]"
    # The payload with an empty list, then the list put in its place: the
    # placeholder begins a line, so it cannot be part of an escaped string.
    empty = json.dumps({**payload, records_key: []}, indent=2, sort_keys=True, ensure_ascii=False)
    placeholder = f"\n  {json.dumps(records_key, ensure_ascii=False)}: []"
    return empty.replace(placeholder, placeholder[:-2] + listed, 1)


def _flat_records(records: object) -> bool:
    """A non-empty list of non-empty dicts whose values are all scalars (one pass of C-level iteration)."""
    if type(records) is not list or not records or set(map(type, records)) != {dict} or not all(records):
        return False
    return set(map(type, chain.from_iterable(map(dict.values, records)))) <= _JSON_SCALARS
