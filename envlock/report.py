"""Render findings for people (terminal tables, Markdown) and for programs (JSON).

Every value that came from a lockfile or another machine is escaped before it
reaches a terminal: a lock may carry ANSI/OSC sequences or bidi overrides
(THREATS.md H3); the loader rejects them, and this is the second fence.
"""

from __future__ import annotations

import json
import re

from envlock.findings import Finding, sort_findings

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import Iterable, Sequence

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def safe(value: object) -> str:
    """One printable line for any value: control, bidi and zero-width characters escaped."""
    text = "" if value is None else str(value)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], max_width: int = 60) -> str:
    """A plain, aligned text table (no box drawing, so it survives copy-paste)."""
    cells = [[_clip(safe(c), max_width) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def md_escape(value: object) -> str:
    return safe(value).replace("|", "\\|").replace("`", "\\`")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(md_escape(c) for c in row) + " |")
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
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)
