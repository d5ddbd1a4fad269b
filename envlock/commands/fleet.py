"""`envlock fleet capture|check --slurm`: every node of a cluster, through the cluster's own launcher."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Capture or check every node of a cluster through Slurm: one `srun` step with one task per node "
    "(your srun options after `--`: -N 8, --nodelist=..., -p gpu; none inside an salloc/sbatch allocation). "
    "`fleet capture` writes DIR/<node>.lock and DIR/fleet.json (compare them with `envlock diff DIR`); "
    "`fleet check LOCK` compares every node with a reference lock.  Exit status: 0 every node answered "
    "(and, for check, matches), 1 a node failed or drifted (each one named), 2 bad input or Slurm ran nothing."
)

# Everything after the first `--` goes to srun (envlock.cli splits it off).
PASSTHROUGH = "srun_args"
MAX_NAMES = 8
MAX_FINDINGS = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fleet_command", metavar="ACTION")
    capture = sub.add_parser(
        "capture",
        help="write one lock per node into a directory",
        description="Run `envlock capture` once on every node of a Slurm allocation and write DIR/<node>.lock.",
    )
    _launcher_options(capture)
    capture.add_argument("-o", "--output", metavar="DIR", required=True, help="directory for the node locks")
    capture.epilog = "Options for srun go after `--`, e.g. `envlock fleet capture --slurm -o fleet -- -N 8 -p gpu`."
    check = sub.add_parser(
        "check",
        help="compare every node with a reference lock (a cluster CI gate)",
        description="Capture every node through Slurm and compare it with LOCK; exit 1 when any node drifted or failed.",
    )
    _launcher_options(check)
    check.add_argument("lock", metavar="LOCK", help="the reference lockfile")
    check.add_argument(
        "-o", "--output", metavar="DIR", help="also keep the node locks in DIR (default: a temporary directory)"
    )
    fmt = check.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable result")
    fmt.add_argument("--markdown", action="store_true", help="Markdown (for an issue or a CI summary)")
    check.add_argument("-v", "--verbose", action="store_true", help="every node name and every difference")
    check.epilog = (
        "Options for srun go after `--`, e.g. `envlock fleet check --slurm ref.lock -- --nodelist=gpu[01-16]`."
    )


def _launcher_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slurm", action="store_true", help="launch through Slurm's srun (the launcher supported today)"
    )
    parser.add_argument(
        "--python", metavar="PATH", help="capture this interpreter's environment on each node instead of envlock's own"
    )
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="stop srun after this long (default: wait as srun does)"
    )


def run(args: argparse.Namespace) -> int:
    from envlock.errors import UsageError

    if args.fleet_command is None:
        raise UsageError(
            "envlock fleet needs an action: capture or check", hint="envlock fleet capture --slurm -o DIR -- -N 8"
        )
    if not args.slurm:
        raise UsageError(
            "name the cluster launcher: --slurm",
            hint="Kubernetes and Ray have recipes in docs/fleet.md; Slurm is the launcher envlock drives itself",
        )
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if args.fleet_command == "capture":
        return _capture(args)
    return _check(args)


def _capture(args: argparse.Namespace) -> int:
    from envlock.fleet.collect import capture_fleet

    result = capture_fleet(args.output, args.srun_args, python=args.python, timeout=args.timeout)
    captured, failed = result.captured, result.failed
    print(
        f"wrote {len(captured)} node lock{'s' if len(captured) != 1 else ''} to {args.output} "
        f"({len(result.nodes)} node{'s' if len(result.nodes) != 1 else ''}, {result.seconds:.1f} s); "
        f"compare them with: envlock diff {args.output}",
        file=sys.stderr,
    )
    for node in failed:
        print(f"envlock: error: {node.node}: {node.error}", file=sys.stderr)
    return 1 if failed else 0


def _check(args: argparse.Namespace) -> int:
    import tempfile

    from envlock.commands._common import emit, load_lock_reporting
    from envlock.fleet.check import check_nodes
    from envlock.fleet.collect import capture_fleet
    from envlock.lockfile.io import load_lock

    reference = load_lock_reporting(args.lock).lock
    with tempfile.TemporaryDirectory(prefix="envlock-fleet-") as scratch:
        directory = args.output or scratch
        result = capture_fleet(directory, args.srun_args, python=args.python, timeout=args.timeout)
        import os

        nodes = [(n.node, load_lock(os.path.join(directory, n.lock_file)).lock) for n in result.captured if n.lock_file]
    outcome = check_nodes(reference, nodes, {n.node: n.error or "" for n in result.failed})
    if args.json:
        emit(check_json(outcome, args.lock))
    elif args.markdown:
        emit(check_markdown(outcome, args.lock))
    else:
        emit(check_text(outcome, args.lock, verbose=args.verbose))
    return 0 if outcome.ok else 1


def _names(names: tuple[str, ...], verbose: bool) -> str:
    from envlock.report import safe

    if verbose or len(names) <= MAX_NAMES:
        return ", ".join(safe(n) for n in names)
    return ", ".join(safe(n) for n in names[:MAX_NAMES]) + f", ... and {len(names) - MAX_NAMES} more"


def _verdict(outcome, reference: str) -> str:
    drifted = sum(len(g.nodes) for g in outcome.drifted)
    total = len(outcome.matching) + drifted + len(outcome.failed)
    head = "every node matches" if outcome.ok else "the fleet has drifted" if drifted else "nodes failed"
    return (
        f"{head}: {total} node{'s' if total != 1 else ''} checked against {reference}: "
        f"{len(outcome.matching)} match, {drifted} drifted, {len(outcome.failed)} failed"
    )


def check_text(outcome, reference: str, verbose: bool = False) -> str:
    from envlock.report import safe

    lines = [_verdict(outcome, safe(reference))]
    for group in outcome.drifted:
        lines.append("")
        count = len(group.nodes)
        lines.append(f"{count} node{'s' if count != 1 else ''} drifted the same way: {_names(group.nodes, verbose)}")
        shown = group.findings if verbose else group.findings[:MAX_FINDINGS]
        for f in shown:
            lines.append(f"  {f.severity:8} {safe(f.path)}: lock {safe(f.locked or '-')}, node {safe(f.actual or '-')}")
        if len(group.findings) > len(shown):
            lines.append(f"  ... and {len(group.findings) - len(shown)} more differences (--verbose shows them)")
    if outcome.failed:
        lines.append("")
        lines.append(f"{len(outcome.failed)} node{'s' if len(outcome.failed) != 1 else ''} failed:")
        for node, why in outcome.failed.items():
            lines.append(f"  {safe(node)}: {safe(why)}")
    if outcome.matching and verbose:
        lines.append("")
        lines.append(f"matching: {_names(outcome.matching, True)}")
    return "\n".join(lines)


def check_markdown(outcome, reference: str) -> str:
    from envlock.report import markdown_table, md_escape

    lines = ["## envlock fleet check", "", md_escape(_verdict(outcome, reference))]
    if outcome.drifted:
        rows = []
        for group in outcome.drifted:
            what = "; ".join(f"{f.path}: {f.locked or '-'} → {f.actual or '-'}" for f in group.findings)
            rows.append((", ".join(group.nodes), what))
        lines.extend(["", markdown_table(("nodes", "differences from the lock"), rows)])
    if outcome.failed:
        lines.extend(["", markdown_table(("failed node", "why"), list(outcome.failed.items()))])
    return "\n".join(lines)


def check_json(outcome, reference: str) -> str:
    import json

    payload = {
        "reference": reference,
        "ok": outcome.ok,
        "matching": list(outcome.matching),
        "drifted": [{"nodes": list(g.nodes), "findings": [f.to_dict() for f in g.findings]} for g in outcome.drifted],
        "failed": [{"node": node, "error": why} for node, why in outcome.failed.items()],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)
