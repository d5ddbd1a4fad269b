"""Run every benchmark of this directory, one after the other: ``make bench``.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only capture,diff,...] [--skip replay]

Each ``bench_*.py`` runs envlock side by side with what a user would otherwise
run and prints its own figures and ratios; this script only runs them in
turn, with the same interpreter, and says at the end which ones finished and
which failed (exit status 1 when any failed).  ``--quick`` passes ``--runs``
small enough for a smoke run; the figures in RESULTS.md come from the full
default runs.  The replay benchmark needs a Docker engine and builds images
(minutes): skip it with ``--skip replay`` where there is none.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Cheapest first, so a broken setup shows early; replay builds images and comes last.
ORDER = ("capture", "diff", "doctor", "fatbin", "replay")
QUICK_RUNS = {"capture": 3, "diff": 3, "doctor": 3, "fatbin": 2, "replay": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run every envlock benchmark in turn")
    parser.add_argument("--quick", action="store_true", help="few runs each: a smoke run, not figures to report")
    parser.add_argument("--only", default="", help="comma-separated names among: " + ", ".join(ORDER))
    parser.add_argument("--skip", default="", help="comma-separated names to leave out")
    args = parser.parse_args(argv)
    found = {path.stem.removeprefix("bench_"): path for path in HERE.glob("bench_*.py")}
    unknown = (set(filter(None, args.only.split(","))) | set(filter(None, args.skip.split(",")))) - found.keys()
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}; there are: {', '.join(sorted(found))}")
    names = [name for name in ORDER if name in found] + sorted(found.keys() - set(ORDER))
    if args.only:
        names = [name for name in names if name in args.only.split(",")]
    names = [name for name in names if name not in args.skip.split(",")]
    outcomes: list[tuple[str, int, float]] = []
    for name in names:
        command = [sys.executable, str(found[name])]
        if args.quick:
            command += ["--runs", str(QUICK_RUNS.get(name, 1))]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        status = subprocess.run(command, cwd=ROOT).returncode
        outcomes.append((name, status, time.monotonic() - started))
    print("\n=== summary")
    for name, status, seconds in outcomes:
        print(f"  {name:<8} {'ok' if status == 0 else f'FAILED (exit {status})':<16} {seconds:7.1f} s")
    return 0 if all(status == 0 for _, status, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
