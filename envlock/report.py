"""Render findings for people (terminal tables, Markdown) and for programs (JSON).

Every value that came from a lockfile or another machine is escaped before it
reaches a terminal: a lock may carry ANSI/OSC sequences or bidi overrides
(THREATS.md H3); the loader rejects them, and this is the second fence.
"""

from __future__ import annotations

import json
import re
from itertools import chain, zip_longest

from envlock.findings import EXACT, Finding, sort_findings

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Iterable, Sequence

    from envlock.lockfile.model import Lock
    from envlock.verdict import FindingGroup, Verdict

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


# --- verdict-first reports -------------------------------------------------------------
#
# replay, verify, check, doctor and diff all print the same shape: the title,
# one verdict sentence, one line per layer with counts that add up
# (envlock.verdict), then the findings that may change numbers, then the other
# differences, then notes.  Findings with one cause are one group; a terminal
# shows a group's first few items, --verbose, JSON and Markdown all of them.

GROUP_ITEMS_SHOWN = 4


def verdict_lines(verdict: Verdict, *, symmetric: bool = False) -> list[str]:
    """The layer lines of a verdict (envlock.verdict.Verdict), unescaped."""
    from envlock.verdict import host_line, layer_line

    lines = [layer_line(lv, verdict.words, symmetric=symmetric) for lv in verdict.layers if lv.locked]
    absent = [lv.title for lv in verdict.layers if not lv.locked]
    if absent:
        lines.append(f"{verdict.absent}: {', '.join(absent)}")
    if verdict.host is not None:
        lines.append(host_line(verdict.host))
    return lines


def _values_note(item: Finding) -> str:
    """``(locked X, here Y)`` unless the message already says them."""
    shown = [v for v in (item.locked, item.actual) if v and v not in item.message]
    if not shown:
        return ""
    parts = []
    if item.locked and item.locked not in item.message:
        parts.append(f"locked {item.locked}")
    if item.actual and item.actual not in item.message:
        parts.append(f"here {item.actual}")
    return f" ({', '.join(parts)})"


def _group_items(group: FindingGroup, verbose: bool, limit: int = GROUP_ITEMS_SHOWN) -> list[str]:
    from envlock.verdict import item_label

    labels = [item_label(item, name) for item, name in zip(group.items, group.names, strict=True)]
    if verbose:
        return [f"      {safe(label)}" for label in labels]
    shown = ", ".join(safe(label) for label in labels[:limit])
    if len(labels) > limit:
        shown += f", … and {len(labels) - limit} more (--verbose lists them all)"
    return [f"      {shown}"]


def groups_text(groups: Iterable[FindingGroup], *, verbose: bool = False, details: bool = True) -> list[str]:
    lines = []
    for group in groups:
        head = group.head
        if group.count == 1:
            lines.append(f"  {head.severity:8} {safe(head.path)}: {safe(head.message)}{safe(_values_note(head))}")
        else:
            lines.append(f"  {head.severity:8} {safe(group.title)}")
            lines.extend(_group_items(group, verbose))
        if details and head.why:
            lines.append(f"      why: {safe(head.why)}")
        if details and head.fix:
            lines.append(f"      fix: {safe(head.fix)}")
    return lines


def verdict_report_text(
    *,
    title: str,
    headline: str,
    verdict: Verdict,
    findings: Iterable[Finding],
    notes: Sequence[str] = (),
    preamble: Sequence[str] = (),
    verbose: bool = False,
    symmetric: bool = False,
) -> str:
    """Terminal text: title, verdict, layer lines, then findings by impact, then notes."""
    from envlock.verdict import group_findings, split_by_impact

    numbers, rest, info = split_by_impact(group_findings(findings))
    out = [safe(title), *[safe(p) for p in preamble], safe(headline), ""]
    out += [f"  {safe(line)}" for line in verdict_lines(verdict, symmetric=symmetric)]
    if numbers:
        out += ["", "may change numbers (or stop the run):", *groups_text(numbers, verbose=verbose)]
    if rest:
        out += ["", "other differences:", *groups_text(rest, verbose=verbose)]
    if verbose and info:
        out += ["", "notes from the checks:", *groups_text(info, verbose=True, details=False)]
    if notes:
        out += [""] + [f"note: {safe(n)}" for n in notes]
    return "\n".join(out)


def _group_row(group: FindingGroup) -> tuple[str, ...]:
    from envlock.verdict import item_label

    head = group.head
    if group.count == 1:
        return (
            head.severity,
            head.path,
            head.locked or "",
            head.actual or "",
            head.message,
            head.why or "",
            head.fix or "",
        )
    family = head.path.split("[", 1)[0]
    items = ", ".join(item_label(item, name) for item, name in zip(group.items, group.names, strict=True))
    return (
        head.severity,
        f"{family} ({group.count})",
        "",
        "",
        f"{group.title}: {items}",
        head.why or "",
        head.fix or "",
    )


def _markdown_impact_sections(
    headers: tuple[str, ...], numbers: list, rest: list, info: list, info_title: str
) -> list[str]:
    """The grouped findings as Markdown, one table per impact (numbers, the rest, notes), empty ones left out."""
    out: list[str] = []
    for name, part in (
        ("May change numbers (or stop the run)", numbers),
        ("Other differences", rest),
        (info_title, info),
    ):
        if part:
            out += ["", f"### {name}", "", markdown_table(headers, [_group_row(g) for g in part])]
    return out


def verdict_report_markdown(
    *,
    title: str,
    headline: str,
    verdict: Verdict,
    findings: Iterable[Finding],
    notes: Sequence[str] = (),
    preamble: Sequence[str] = (),
    symmetric: bool = False,
    sides: tuple[str, str] = ("locked", "here"),
) -> str:
    """Markdown (an issue, a paper's appendix): the same verdict, every item of every group."""
    from envlock.verdict import group_findings, split_by_impact

    numbers, rest, info = split_by_impact(group_findings(findings))
    out = [f"## {md_escape(title)}", ""]
    out += [md_escape(p) for p in preamble]
    out += [f"**{md_escape(headline)}**", ""]
    out += [f"- {md_escape(line)}" for line in verdict_lines(verdict, symmetric=symmetric)]
    headers = ("severity", "where", *sides, "what", "why", "fix")
    out += _markdown_impact_sections(headers, numbers, rest, info, "Notes from the checks")
    if notes:
        out += ["", "### Notes", ""] + [f"- {md_escape(n)}" for n in notes]
    return "\n".join(out)


def verdict_payload(verdict: Verdict, findings: Iterable[Finding], *, symmetric: bool = False) -> dict:
    """The verdict for JSON: layer lines with every item of every bucket, and the groups with their paths."""
    from envlock.verdict import group_findings, host_line, layer_line

    layers = [
        {
            "layer": lv.layer,
            "status": lv.status,
            "detail": layer_line(lv, verdict.words, symmetric=symmetric),
            "total": lv.total + (len(lv.added) if symmetric else 0),
            "identical": list(lv.identical),
            "differ": list(lv.changed),
            "missing": list(lv.missing),
            "added": list(lv.added),
            "remarks": list(lv.remarks),
        }
        for lv in verdict.layers
    ]
    if verdict.host is not None:
        host = verdict.host
        status = (
            "not-locked"
            if not host.locked
            else "unknown"
            if not host.checked
            else "differs"
            if host.problems
            else EXACT
        )
        layers.append({"layer": "host", "status": status, "detail": host_line(host), "problems": len(host.problems)})
    groups = [
        {
            "title": g.title,
            "severity": g.head.severity,
            "status": g.head.status,
            "count": g.count,
            "paths": [f.path for f in g.items],
        }
        for g in group_findings(findings)
    ]
    return {"exact": verdict.exact, "layers": layers, "groups": groups}


def image_report(
    *,
    title: str,
    lock: Lock,
    findings: Sequence[Finding],
    host_findings: Sequence[Finding] = (),
    host_checked: bool | None = True,
    notes: Sequence[str] = (),
    fmt: str = "text",
    verbose: bool = False,
    planned: bool = False,
    extra: dict | None = None,
    subject: str = "the image",
) -> str:
    """The report of a replay or a verify: the image (or the plan for it) against the lock.

    ``host_checked`` None: the hardware is not this report's business (a
    replay into a venv), so there is no host line.
    """
    from envlock.verdict import HostVerdict, compute_verdict, headline, is_mismatch

    host = None
    if host_checked is not None:
        host = HostVerdict(
            checked=host_checked,
            problems=tuple(f for f in host_findings if is_mismatch(f)),
            locked=lock.nvidia is not None or lock.cpu is not None,
        )
    if planned:
        words = ("will differ", "not reproducible", "not in the lock", "planned exactly")
    else:
        words = ("differ", "not reproduced", "not in the lock", "identical")
    verdict = compute_verdict(lock, findings, host=host, words=words)
    everything = sort_findings([*findings, *host_findings])
    if planned:
        head = headline(verdict, subject, exact_text="the plan reproduces every locked layer", planned=True)
    else:
        head = headline(verdict, f"{subject} and the lock", exact_text=f"{subject} reproduces the lock exactly")
    if fmt == "json":
        payload = dict(extra or {})
        payload.update(verdict_payload(verdict, everything))
        payload["verdict"] = head
        payload["notes"] = list(notes)
        return findings_json(everything, **payload)
    if fmt == "markdown":
        return verdict_report_markdown(title=title, headline=head, verdict=verdict, findings=everything, notes=notes)
    return verdict_report_text(
        title=title, headline=head, verdict=verdict, findings=everything, notes=notes, verbose=verbose
    )


def checks_report(
    *,
    title: str,
    headline: str,
    findings: Sequence[Finding],
    fmt: str = "text",
    verbose: bool = False,
    extra: dict | None = None,
) -> str:
    """A report of rule checks (doctor): the verdict, a line per layer of checks, then what failed."""
    from envlock.verdict import check_lines, group_findings, split_by_impact

    lines = check_lines(findings)
    if fmt == "json":
        payload = dict(extra or {})
        payload["verdict"] = headline
        payload["layers"] = lines
        return findings_json(list(findings), **payload)
    problems = [f for f in findings if f.status != EXACT]
    passed = [f for f in findings if f.status == EXACT]
    numbers, rest, info = split_by_impact(group_findings(problems))
    if fmt == "markdown":
        headers = ("severity", "where", "locked", "here", "what", "why", "fix")
        out = [f"## {md_escape(title)}", "", f"**{md_escape(headline)}**", ""]
        out += [f"- {md_escape(line)}" for line in lines]
        out += _markdown_impact_sections(headers, numbers, rest, info, "Notes")
        if passed:
            out += ["", "### Checks passed", ""]
            out += [f"- {md_escape(f.path)}: {md_escape(f.message)}" for f in passed]
        return "\n".join(out)
    out = [safe(title), safe(headline), ""]
    out += [f"  {safe(line)}" for line in lines]
    if numbers:
        out += ["", "may change numbers (or stop the run):", *groups_text(numbers, verbose=verbose)]
    if rest:
        out += ["", "other differences:", *groups_text(rest, verbose=verbose)]
    if info:
        out += ["", "notes:", *groups_text(info, verbose=verbose, details=False)]
    if verbose and passed:
        out += ["", "passed:"] + [f"  ok  {safe(f.path)}: {safe(f.message)}" for f in passed]
    return "\n".join(out)
