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
    parser.add_argument("-v", "--verbose", action="store_true", help="also list the checks that passed")


def run(args: argparse.Namespace) -> int:
    from envlock.commands._common import load_lock_reporting
    from envlock.doctor import run_doctor
    from envlock.report import checks_report

    lock = load_lock_reporting(args.lock).lock
    result = run_doctor(lock)
    verdict = (
        f"verdict: this host cannot run {args.lock}"
        if result.blocked
        else f"verdict: this host can run {args.lock}"
        + (" (numbers may differ)" if any(f.severity == "numeric" for f in result.problems) else "")
    )
    fmt = "json" if args.json else "markdown" if args.markdown else "text"
    extra = {"lock": args.lock, "blocked": result.blocked}
    text = checks_report(
        title=f"envlock doctor: {args.lock}",
        headline=verdict,
        findings=list(result.findings),
        fmt=fmt,
        verbose=args.verbose,
        extra=extra,
    )
    sys.stdout.write(text + "\n")
    return result.exit_code
