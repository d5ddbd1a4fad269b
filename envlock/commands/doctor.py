"""`envlock doctor`: will this lock run on this host, and what will differ?"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Check this host against a lockfile: NVIDIA driver new enough for every locked CUDA runtime, "
    "kernels in the locked packages for each GPU, GPU model/count, CPU ISA features and glibc. "
    "Each result is a blocker (will not run), numeric (runs, numbers may differ) or info. "
    "Exit 0 when nothing blocks, 1 when something does, 2 on bad input."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lock", nargs="?", default="envlock.lock", help="the lockfile (default: envlock.lock)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="findings as JSON")
    fmt.add_argument("--markdown", action="store_true", help="findings as a Markdown table")


def run(args: argparse.Namespace) -> int:
    from envlock import report
    from envlock.commands._common import load_lock_reporting
    from envlock.doctor import run_doctor

    lock = load_lock_reporting(args.lock).lock
    result = run_doctor(lock)
    verdict = (
        f"this host cannot run {args.lock}"
        if result.blocked
        else f"this host can run {args.lock}"
        + (" (numbers may differ)" if any(f.severity == "numeric" for f in result.findings) else "")
    )
    if args.json:
        sys.stdout.write(
            report.findings_json(
                list(result.findings),
                lock=args.lock,
                verdict=verdict,
                blocked=result.blocked,
            )
            + "\n"
        )
    elif args.markdown:
        sys.stdout.write(report.findings_markdown(list(result.problems), title=f"envlock doctor: {args.lock}") + "\n\n")
        if result.passed:
            sys.stdout.write(
                "Checks passed:\n\n"
                + "\n".join(f"- {report.md_escape(f.path)}: {report.md_escape(f.message)}" for f in result.passed)
                + "\n\n"
            )
        sys.stdout.write(f"**{report.md_escape(verdict)}**\n")
    else:
        sys.stdout.write(
            report.findings_text(list(result.problems), title=f"envlock doctor: {report.safe(args.lock)}") + "\n"
        )
        if result.passed:
            sys.stdout.write(
                "\npassed:\n"
                + "\n".join(f"  ok  {report.safe(f.path)}: {report.safe(f.message)}" for f in result.passed)
                + "\n"
            )
        sys.stdout.write(f"\n{report.safe(verdict)}\n")
    return result.exit_code
