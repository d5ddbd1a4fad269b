"""`envlock verify`: capture inside an existing image and compare it with a lockfile."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Run envlock's capture inside IMAGE (without installing anything into it) and compare it with "
    "LOCK, or with the lock stored in an image that `envlock replay` built; also check this host's "
    "driver, GPUs and CPU against the lock. Exit 0: all exact; 1: mismatches; 2: bad input or engine error."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="the image (name:tag or id)")
    parser.add_argument("lock", nargs="?", help="the lockfile (default: the one stored in the image by envlock replay)")
    parser.add_argument(
        "--python",
        default="python",
        help="the interpreter inside the image whose environment is compared (default: python on the image's PATH)",
    )
    parser.add_argument(
        "--runner",
        metavar="PATH",
        help="the Python 3.10+ inside the image that runs envlock's capture, when --python is older "
        "(default: --python itself)",
    )
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the report as JSON")
    fmt.add_argument("--markdown", action="store_true", help="the report as Markdown")


def run(args: argparse.Namespace) -> int:
    from envlock.commands._common import load_lock_reporting
    from envlock.findings import EXACT, INFO, sort_findings
    from envlock.replay.orchestrate import verify_existing
    from envlock.replay.verify import format_report, layer_statuses

    lock = load_lock_reporting(args.lock).lock if args.lock else None
    report, lock, notes, extra = verify_existing(args.image, lock, python=args.python, runner=args.runner)
    findings = sort_findings([*extra, *report.findings, *report.host_findings])
    layers = layer_statuses(lock, [*extra, *report.findings], report.host_findings)
    fmt = "json" if args.json else "markdown" if args.markdown else "text"
    mismatches = [f for f in findings if f.status != EXACT and f.severity != INFO]
    code = 1 if mismatches else 0
    sys.stdout.write(
        format_report(
            title=f"envlock verify: {args.image}",
            layers=layers,
            findings=findings,
            host_rows=report.host_rows,
            notes=[*notes, *report.notes],
            fmt=fmt,
            extra={"image": args.image, "exit_code": code},
        )
        + "\n"
    )
    return code
