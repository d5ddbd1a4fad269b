"""`envlock check [LOCK]`: is this environment still what the lock says?"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from envlock.lockfile.model import Lock

DESCRIPTION = (
    "Capture this environment's software layers (Python packages and interpreter, conda, CUDA libraries, "
    "OS packages, numerics variables) and compare them with a lockfile.  Exit status: 0 match, 1 drift "
    "(each difference listed), 2 bad input.  Hardware and git state are not compared: use `envlock doctor` "
    "for the host and `envlock diff` for two locks."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lock", nargs="?", default="envlock.lock", help="the lockfile (default: envlock.lock)")
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="check this interpreter's environment (a venv or conda env) instead of envlock's own",
    )
    parser.add_argument(
        "--layers",
        metavar="LIST",
        help="comma-separated layers to compare (default: every software layer the lock records: python,conda,cuda,os,runtime)",
    )
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable findings")
    fmt.add_argument("--markdown", action="store_true", help="Markdown tables")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every item of every grouped difference")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing; the exit status says it all")


def run(args: argparse.Namespace) -> int:
    from envlock.check import SOFTWARE_SECTIONS, check_live
    from envlock.commands._common import load_lock_reporting
    from envlock.commands.diff import render_two_way
    from envlock.diff import differs
    from envlock.errors import UsageError

    sections = SOFTWARE_SECTIONS
    if args.layers:
        sections = tuple(part.strip() for part in args.layers.split(",") if part.strip())
        unknown = [s for s in sections if s not in SOFTWARE_SECTIONS]
        if unknown or not sections:
            raise UsageError(
                f"--layers: {', '.join(unknown) or '(empty)'} is not a software layer",
                hint=f"choose from {','.join(SOFTWARE_SECTIONS)}",
            )
    lock = load_lock_reporting(args.lock).lock
    from envlock.byte_files import files_that_differ_here

    findings, live = check_live(lock, args.python, sections, files_that_differ_here)
    drift = differs(findings)
    if args.quiet:
        return 1 if drift else 0
    legend = {"the lock": args.lock, "this environment": args.python or sys.executable}
    text = render_two_way(findings, legend, args, locks=(lock, _scoped(live, lock, sections)), with_host=False)
    if not (args.json or args.markdown):
        text = text.replace("\nidentical", "\nno drift: this environment matches the lock", 1)
        if "python" in sections:
            from envlock.check import byte_summary

            summary = byte_summary(lock, live)
            text = f"{summary}\n{text}" if summary else text
    sys.stdout.write(text + "\n")
    return 1 if drift else 0


def _scoped(live: Lock, lock: Lock, sections: tuple[str, ...]) -> Lock:
    """The live capture with only the layers that were compared (the others are not drift)."""
    from envlock import records
    from envlock.check import sections_to_capture

    compared = set(sections_to_capture(lock, sections))
    others = ("python", "conda", "cuda", "os", "runtime")
    return records.replace(live, **{name: None for name in others if name not in compared})
