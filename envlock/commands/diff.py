"""`envlock diff A B [C ...]`: what differs between locks, ranked by how likely it is to change numbers."""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from envlock.verdict import Verdict

DESCRIPTION = (
    "Compare two lockfiles layer by layer, most likely to change numbers first (GPU, CUDA libraries, "
    "driver, BLAS, CPU, numerics variables, frameworks, packages, OS, project), with one sentence on why "
    "each difference can matter.  With three or more locks, group the machines by identical layers and show "
    "the outliers.  Exit status: 0 identical, 1 different, 2 bad input.  A layer that one lock does not "
    "record is reported as unknown, not as a difference."
)

MAX_MEMBERS_SHOWN = 8
MAX_FINDINGS_PER_GROUP = 6
MAX_GROUPS_SHOWN = 10
UNKNOWN_STATUS = "unknown"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "locks",
        nargs="+",
        metavar="LOCK",
        help="two or more lockfiles, or a directory of them (a fleet: `envlock fleet capture -o DIR`)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="every item of every grouped difference; with many locks, every group of outliers and every difference",
    )
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable findings")
    fmt.add_argument("--markdown", action="store_true", help="Markdown tables (for an issue or a paper's appendix)")


def run(args: argparse.Namespace) -> int:
    from envlock.commands._common import without_cyclic_gc

    return without_cyclic_gc(lambda: _diff(args))


def _diff(args: argparse.Namespace) -> int:
    from envlock.commands._common import emit
    from envlock.errors import UsageError

    named = _expand_directories(args.locks)
    if len(named) < 2:
        raise UsageError(
            "diff needs at least two lockfiles", hint="envlock diff a.lock b.lock, or envlock diff DIR for a fleet"
        )
    locks = _load_all(named)
    if len(locks) == 2:
        from envlock.diff import diff, differs

        (label_a, lock_a), (label_b, lock_b) = locks
        findings = diff(lock_a, lock_b, labels=("A", "B"))
        emit(render_two_way(findings, {"A": label_a, "B": label_b}, args, locks=(lock_a, lock_b)))
        return 1 if differs(findings) else 0
    from envlock.diff_nway import group_locks

    report = group_locks(locks)
    if args.json:
        text = nway_json(report)
    elif args.markdown:
        text = nway_markdown(report)
    else:
        text = nway_text(report, verbose=args.verbose)
    emit(text)
    return 0 if report.identical else 1


def _expand_directories(arguments: list[str]) -> list[tuple[str, str]]:
    """(label, path) per lock: a file is labelled by its path, a fleet directory's locks by their node names."""
    import os

    from envlock.errors import UsageError

    out = []
    for argument in arguments:
        if not os.path.isdir(argument):
            out.append((argument, argument))
            continue
        from envlock.fleet.collect import fleet_lock_paths

        found = fleet_lock_paths(argument)
        if not found:
            raise UsageError(
                f"{argument}: a directory with no *.lock files", hint="envlock fleet capture --slurm -o DIR"
            )
        # Node names label the locks when one directory is compared; with several, the path keeps them apart.
        out.extend(found if len(arguments) == 1 else [(path, path) for _node, path in found])
    return out


def _load_all(named: list[tuple[str, str]]) -> list:
    from envlock.lockfile.io import load_locks

    seen: dict[str, int] = {}
    out = []
    for (label, _path), loaded in zip(named, load_locks([path for _label, path in named]), strict=True):
        for warning in loaded.warnings:
            print(f"envlock: warning: {warning}", file=sys.stderr)
        count = seen.get(label, 0) + 1
        seen[label] = count
        out.append((label if count == 1 else f"{label}#{count}", loaded.lock))
    return out


# --- two locks ----------------------------------------------------------------------


def _by_layer(findings: list) -> list[tuple[str, list]]:
    """Consecutive blocks per layer, layers in the order of their first (best-ranked) finding."""
    blocks: dict[str, list] = {}
    for finding in findings:
        blocks.setdefault(finding.layer, []).append(finding)
    return list(blocks.items())


def _cell(finding, value: str | None) -> str:
    """A table cell for one side: an absent environment variable is "unset", anything else absent is "-"."""
    if value is not None:
        return value
    return "unset" if finding.path.startswith("runtime.env.") else "-"


def _summary(findings: list) -> str:
    from envlock.findings import NUMERIC, UNKNOWN

    real = [f for f in findings if f.status != UNKNOWN]
    numeric = sum(1 for f in real if f.severity in (NUMERIC, "blocker"))
    unknown = len(findings) - len(real)
    if not real:
        head = "identical"
    else:
        head = f"{len(real)} difference{'s' if len(real) != 1 else ''} ({numeric} likely to change numbers)"
    if unknown:
        head += f"; {unknown} layer{'s' if unknown != 1 else ''} not compared (unknown on one side)"
    return head


def render_two_way(
    findings: list, legend: dict[str, str], args: argparse.Namespace, locks: tuple | None = None, with_host: bool = True
) -> str:
    """Two-sided findings in the format the command line asked for (--json, --markdown or text).

    With ``locks`` (the two sides), the report leads with the verdict: one
    line per layer, counting items on both sides (envlock.verdict).
    """
    verdict = two_way_verdict(findings, legend, locks, with_host) if locks is not None else None
    if args.json:
        return two_way_json(findings, legend, verdict)
    if args.markdown:
        return two_way_markdown(findings, legend, verdict)
    return two_way_text(findings, legend, verdict, verbose=getattr(args, "verbose", False))


def two_way_verdict(findings: list, legend: dict[str, str], locks: tuple, with_host: bool = True) -> Verdict:
    """Layer lines for lock A against lock B; hardware differences on the host line."""
    from envlock.verdict import HOST_LAYERS, HostVerdict, compute_verdict, is_mismatch

    a, b = locks
    side_a, side_b = legend
    host_known = any(x is not None for lock in locks for x in (lock.nvidia, lock.accelerators, lock.cpu))
    problems = tuple(f for f in findings if f.layer in HOST_LAYERS and is_mismatch(f))
    # envlock check compares software only: no host line there.
    host = HostVerdict(checked=True, problems=problems, locked=host_known) if with_host else None
    return compute_verdict(
        a,
        findings,
        other=b,
        os_scope="all",
        host=host,
        words=("differ", f"only in {side_a}", f"only in {side_b}", "identical"),
        sides=(side_a, side_b),
    )


def _verdict_lines(verdict: Verdict | None) -> list[str]:
    from envlock.report import verdict_lines

    return verdict_lines(verdict, symmetric=True) if verdict is not None else []


def _sides(legend: dict[str, str]) -> tuple[str, str]:
    first, second = legend
    return first, second


def _family(path: str) -> str:
    """``os.packages`` for ``os.packages[curl]``, ``runtime.env`` for ``runtime.env.OMP_NUM_THREADS``."""
    if "[" in path:
        return path.split("[", 1)[0]
    return path.rsplit(".", 1)[0] if path.count(".") > 1 else path


def _rows(
    block: list, verbose: bool, markdown: bool = False, sides: tuple[str, str] | None = None
) -> tuple[list[tuple], list[str]]:
    """Table rows for one layer, and the item lists of its groups.

    Findings with one cause are one row (``os.packages (95)``) whose items are
    listed under the table on a terminal (the first few; all with --verbose)
    and in the row itself in Markdown.
    """
    from envlock.report import GROUP_ITEMS_SHOWN
    from envlock.verdict import group_findings, item_label

    rows, listings = [], []
    for group in group_findings(block, sides=sides, ordered=True):
        f = group.head
        if group.count == 1:
            rows.append((f.severity, f.path, _cell(f, f.locked), _cell(f, f.actual), f.message))
            continue
        labels = [item_label(i, n) for i, n in zip(group.items, group.names, strict=True)]
        where = f"{_family(f.path)} ({group.count})"
        if markdown:
            rows.append((f.severity, where, "", "", f"{group.title}: {', '.join(labels)}"))
            continue
        rows.append((f.severity, where, "", "", group.title))
        if not verbose and len(labels) > GROUP_ITEMS_SHOWN:
            labels = labels[:GROUP_ITEMS_SHOWN] + [
                f"… and {len(labels) - GROUP_ITEMS_SHOWN} more (--verbose lists them)"
            ]
        listings.append(f"  {where}: {', '.join(labels)}")
    return rows, listings


def two_way_text(findings: list, legend: dict[str, str], verdict: Verdict | None = None, verbose: bool = False) -> str:
    """Terminal text: the verdict, then one table per layer, best-ranked layer first."""
    from envlock.findings import UNKNOWN
    from envlock.report import safe, table

    lines = [f"{side} = {safe(path)}" for side, path in legend.items()]
    lines.append(_summary(findings))
    if verdict is not None:
        lines += [""] + [f"  {safe(line)}" for line in _verdict_lines(verdict)]
    real = [f for f in findings if f.status != UNKNOWN]
    for layer, block in _by_layer(real):
        lines.append("")
        lines.append(f"[{layer}]")
        rows, listings = _rows(block, verbose, sides=_sides(legend))
        lines.append(table(("severity", "where", *legend, "what"), rows))
        lines.extend(safe(line) for line in listings)
        whys = []
        for f in block:
            if f.why and f.why not in whys:
                whys.append(f.why)
        for why in whys:
            lines.append(f"  why it can matter: {safe(why)}")
        fixes: dict[str, list[str]] = {}
        for f in block:
            if f.fix:
                fixes.setdefault(f.fix, []).append(f.path)
        for fix, paths in fixes.items():
            shown = paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more"
            lines.append(f"  {safe(shown)}: {safe(fix)}")
    unknown = [f for f in findings if f.status == UNKNOWN]
    if unknown:
        lines.append("")
        lines.append("not compared (unknown is not different):")
        for f in unknown:
            lines.append(f"  {safe(f.path)}: {safe(f.message)}")
    return "\n".join(lines)


def two_way_markdown(findings: list, legend: dict[str, str], verdict: Verdict | None = None) -> str:
    from envlock.findings import UNKNOWN
    from envlock.report import markdown_table, md_escape

    lines = ["## envlock diff", ""]
    lines.extend(f"- **{side}**: `{md_escape(path)}`" for side, path in legend.items())
    lines.extend(["", f"**{md_escape(_summary(findings))}**"])
    if verdict is not None:
        lines += [""] + [f"- {md_escape(line)}" for line in _verdict_lines(verdict)]
    real = [f for f in findings if f.status != UNKNOWN]
    by_path = {f.path: f for f in real}
    for layer, block in _by_layer(real):
        lines.extend(["", f"### {md_escape(layer)}", ""])
        rows = [
            (*row, (by_path[row[1]].why or "") if row[1] in by_path else (block[0].why or ""))
            for row in _rows(block, False, markdown=True, sides=_sides(legend))[0]
        ]
        lines.append(markdown_table(("severity", "where", *legend, "what", "why it can matter"), rows))
    unknown = [f for f in findings if f.status == UNKNOWN]
    if unknown:
        lines.extend(["", "### not compared", ""])
        lines.extend(f"- `{md_escape(f.path)}`: {md_escape(f.message)}" for f in unknown)
    return "\n".join(lines)


def two_way_json(findings: list, legend: dict[str, str], verdict: Verdict | None = None) -> str:
    from envlock.diff import differs
    from envlock.report import json_report, verdict_payload

    payload = {
        "locks": legend,
        "identical": not differs(findings),
        # Already in ranking order (envlock.diff.ranking_key), so not re-sorted here.
        "findings": [f.to_dict() for f in findings],
    }
    if verdict is not None:
        payload["verdict"] = verdict_payload(verdict, findings, symmetric=True)
    return json_report(payload, "findings")


# --- many locks ---------------------------------------------------------------------


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def nway_summary(report) -> str:
    """The first line: how many locks, how many groups of identical ones, how many outliers."""
    n = len(report.labels)
    if report.identical:
        return f"{n} locks compared: identical in every layer they record"
    reference = next((g for g in report.lock_groups if not g.outside), None)
    outlier_groups = [g for g in report.lock_groups if g.outside]
    outliers = sum(len(g.members) for g in outlier_groups)
    matching = len(reference.members) if reference else 0
    return (
        f"{n} locks compared: {_plural(len(report.lock_groups), 'group')} of identical locks; "
        f"{matching} match the majority in every layer, "
        f"{_plural(outliers, 'outlier')} in {_plural(len(outlier_groups), 'group')}"
    )


def nway_text(report, verbose: bool = False) -> str:
    """Summary first, then the layer table, then each group of outliers with what differs, worst first."""
    from envlock.report import safe, table

    n = len(report.labels)
    lines = [nway_summary(report)]
    rows = []
    for layer in report.layers:
        known = n - len(layer.unknown)
        if not layer.groups:
            rows.append((layer.section, "-", "unknown in all locks", ""))
            continue
        reference = layer.groups[0]
        outliers = sum(len(g.members) for g in layer.groups[1:])
        note = (
            "identical"
            if layer.uniform
            else f"{_plural(outliers, 'outlier')} in {_plural(len(layer.groups) - 1, 'group')}"
        )
        if layer.unknown:
            note += f"; unknown in {len(layer.unknown)}"
        rows.append((layer.section, str(len(layer.groups)), f"{len(reference.members)}/{known}", note))
    lines.append(table(("layer", "groups", "majority", "outliers"), rows))
    outlier_groups = [g for g in report.lock_groups if g.outside]
    if outlier_groups:
        lines.append("")
        lines.append("outliers, most likely to change numbers first:")
    shown_groups = outlier_groups if verbose else outlier_groups[:MAX_GROUPS_SHOWN]
    for group in shown_groups:
        count = len(group.members)
        names = group.members if verbose else group.members[:MAX_MEMBERS_SHOWN]
        listed = ", ".join(safe(name) for name in names)
        if len(group.members) > len(names):
            listed += f", ... and {len(group.members) - len(names)} more"
        verb = "differs" if count == 1 else "differ the same way"
        lines.append(f"  {_plural(count, 'lock')} {verb}: {listed}")
        found = [f for f in group.findings if f.status != UNKNOWN_STATUS]
        for f in found if verbose else found[:MAX_FINDINGS_PER_GROUP]:
            lines.append(
                f"    {f.severity:8} {safe(f.path)}: majority {safe(_cell(f, f.locked))}, here {safe(_cell(f, f.actual))}"
            )
        if not verbose and len(found) > MAX_FINDINGS_PER_GROUP:
            lines.append(f"    ... and {len(found) - MAX_FINDINGS_PER_GROUP} more differences")
        if not found:
            lines.append("    (differs only in fields the majority does not record)")
    if len(outlier_groups) > len(shown_groups):
        hidden = outlier_groups[len(shown_groups) :]
        lines.append(
            f"... and {_plural(len(hidden), 'more group')} of outliers ({sum(len(g.members) for g in hidden)} locks); "
            "--verbose shows every group, --json every finding"
        )
    return "\n".join(lines)


def nway_markdown(report) -> str:
    from envlock.report import markdown_table, md_escape

    n = len(report.labels)
    lines = ["## envlock diff", "", md_escape(nway_summary(report)) + ".", ""]
    rows = []
    for layer in report.layers:
        if not layer.groups:
            rows.append((layer.section, "-", "-", "unknown in all locks"))
            continue
        outliers = sum(len(g.members) for g in layer.groups[1:])
        rows.append(
            (
                layer.section,
                str(len(layer.groups)),
                f"{len(layer.groups[0].members)}/{n - len(layer.unknown)}",
                str(outliers),
            )
        )
    lines.append(markdown_table(("layer", "groups", "majority", "outliers"), rows))
    outlier_groups = [g for g in report.lock_groups if g.outside]
    if outlier_groups:
        lines.extend(["", "### outliers, most likely to change numbers first", ""])
        group_rows: list[tuple[str, str]] = []
        for group in outlier_groups:
            found = [f for f in group.findings if f.status != UNKNOWN_STATUS]
            what = (
                "; ".join(f"{f.path}: {_cell(f, f.locked)} → {_cell(f, f.actual)}" for f in found)
                or "only unknown fields"
            )
            group_rows.append((", ".join(group.members), what))
        lines.append(markdown_table(("locks", "differences from the majority"), group_rows))
    return "\n".join(lines)


def nway_json(report) -> str:
    import json

    payload = {
        "locks": list(report.labels),
        "identical": report.identical,
        "layers": {
            layer.section: {
                "unknown": list(layer.unknown),
                "groups": [
                    {"digest": g.digest, "members": list(g.members), "findings": [f.to_dict() for f in g.findings]}
                    for g in layer.groups
                ],
            }
            for layer in report.layers
        },
        "outliers": {label: list(layers) for label, layers in report.outlier_layers.items()},
        "groups": [
            {"members": list(g.members), "outside": list(g.outside), "findings": [f.to_dict() for f in g.findings]}
            for g in report.lock_groups
        ],
    }
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)
