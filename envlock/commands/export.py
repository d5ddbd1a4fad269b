"""`envlock export`: not built yet (see the open issue)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("args", nargs="*")


def run(args: argparse.Namespace) -> int:
    from envlock.errors import UsageError

    raise UsageError("`envlock export` is not available in this build yet")
