"""`envlock show`: a readable summary of every layer of a lockfile."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = "Summarise a lockfile layer by layer; --json prints the lock as data, --markdown a paper appendix."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lock", nargs="?", default="envlock.lock", help="the lockfile (default: envlock.lock)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the lock as JSON")
    fmt.add_argument("--markdown", action="store_true", help="a 'Computational environment' table for a paper")


def run(args: argparse.Namespace) -> int:
    import json

    from envlock import summary
    from envlock.commands._common import load_lock_reporting
    from envlock.lockfile import codec

    lock = load_lock_reporting(args.lock).lock
    if args.json:
        sys.stdout.write(json.dumps(codec.to_dict(lock), indent=2, ensure_ascii=False) + "\n")
    elif args.markdown:
        sys.stdout.write(summary.markdown_appendix(lock) + "\n")
    else:
        sys.stdout.write(summary.summary_text(lock) + "\n")
    return 0
