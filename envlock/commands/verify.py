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
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="list every item of every finding, and the checks that passed"
    )


def run(args: argparse.Namespace) -> int:
    from envlock.commands._common import load_lock_reporting
    from envlock.commands.replay import host_note
    from envlock.replay.orchestrate import verify_existing
    from envlock.report import image_report
    from envlock.verdict import is_mismatch

    lock = load_lock_reporting(args.lock).lock if args.lock else None
    report, lock, notes, extra = verify_existing(args.image, lock, python=args.python, runner=args.runner)
    findings = [*extra, *report.findings]
    code = 1 if any(is_mismatch(f) for f in (*findings, *report.host_findings)) else 0
    fmt = "json" if args.json else "markdown" if args.markdown else "text"
    title = f"envlock verify: {args.image}"
    if report.byte_summary:
        # The byte-level count belongs on the first line a reader sees.
        title += f" — {report.byte_summary}"
    text = image_report(
        title=title,
        lock=lock,
        findings=findings,
        host_findings=report.host_findings,
        notes=[*notes, *report.notes, host_note(report.host_rows)],
        fmt=fmt,
        verbose=args.verbose,
        extra={"image": args.image, "exit_code": code, "host": dict(report.host_rows), "bytes": report.byte_summary},
    )
    sys.stdout.write(text + "\n")
    return code
