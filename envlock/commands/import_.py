"""`envlock import FORMAT FILE -o OUT`: read another tool's file into a partial lock.

Layers the format does not carry stay unknown (an imported ``pip freeze``
says nothing about GPUs), and ``origin`` records ``import:<format>``.
"""

from __future__ import annotations

import argparse
import sys

# Kept here (not imported from envlock.formats) so that `envlock --help` stays light.
FORMAT_NAMES = (
    "pip-freeze",
    "pylock",
    "conda-explicit",
    "conda-env",
    "conda-lock",
    "collect-env",
    "nvidia-smi",
    "nvidia-smi-csv",
    "rocm-smi",
    "nvcc",
    "uv-lock",
    "poetry-lock",
    "pipfile-lock",
    "pixi-lock",
    "pip-list-json",
    "pip-inspect",
    "conda-list",
)
AUTO = "auto"

DESCRIPTION = (
    "Read a report or lockfile written by another tool into an envlock lock, so that it can be "
    "diffed and checked like a captured one. Formats: pip-freeze (also pinned requirements.txt and "
    "pip-compile output), pylock (PEP 751 pylock.toml), uv-lock, poetry-lock, pipfile-lock, pixi-lock, "
    "pip-list-json (pip list --format=json), pip-inspect, conda-explicit (conda list --explicit --md5), "
    "conda-list (the conda list table), conda-env (conda env export), conda-lock (conda-lock.yml), "
    "collect-env (python -m torch.utils.collect_env), nvidia-smi (the table or -q output), nvidia-smi-csv "
    "(--query-gpu=... --format=csv), rocm-smi, nvcc (nvcc --version). Without FORMAT (or with 'auto') the "
    "format is guessed from the content and the choice is printed. Pastes may keep their quote marks, "
    "fences, <details> blocks and prompt lines: they are removed, and a warning says so. "
    "Use '-' as FILE to read standard input."
)

# At most this many warnings are printed; all of them are in the lock's capture-warnings.
SHOWN_WARNINGS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "format",
        metavar="[FORMAT]",
        help="one of: " + ", ".join(FORMAT_NAMES) + "; 'auto' or left out: guessed from the content",
    )
    parser.add_argument("file", metavar="FILE", nargs="?", help="the file to read ('-' for standard input)")
    parser.add_argument("-o", "--output", metavar="OUT", help="where to write the lock ('-' for standard output)")
    parser.add_argument(
        "--json", action="store_true", help="print the lock as JSON on standard output instead of writing TOML"
    )
    parser.add_argument(
        "--platform",
        metavar="SUBDIR",
        help="conda-lock, pixi-lock: which platform's packages to import (default: the only one, else linux-64)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def command_text(args: argparse.Namespace) -> str:
    """The command for the lock's header: quoted, home as ``~``, and one line whatever the file names hold."""
    import re
    import shlex

    from envlock.formats.importers import scrub

    parts = ["envlock", "import", args.format, args.file, "-o", args.output or "-"]
    if args.platform:
        parts += ["--platform", args.platform]
    text = " ".join(shlex.quote(scrub(part)) for part in parts)
    # The header is a TOML comment: a newline in a file name would end it and
    # let the rest of the name become TOML.  Control characters are replaced.
    return re.sub("[\x00-\x1f\x7f-\x9f\u2028\u2029]", "?", text)


def run(args: argparse.Namespace) -> int:
    import json

    from envlock.errors import UsageError
    from envlock.formats.importers import import_file
    from envlock.lockfile import codec, write

    if args.file is None:  # `envlock import FILE`: the one argument is the file
        args.format, args.file = AUTO, args.format
    if args.format not in FORMAT_NAMES and args.format != AUTO:
        raise UsageError(
            f"unknown import format {args.format!r}",
            hint="one of: " + ", ".join(FORMAT_NAMES) + " (or leave it out to have it guessed)",
        )
    if args.output is None and not args.json:
        raise UsageError(
            "say where the lock goes: -o OUT (or -o - for standard output), or --json",
            hint=f"envlock import {args.format} {args.file} -o imported.lock",
        )
    if args.platform and args.format not in ("conda-lock", "pixi-lock", AUTO):
        raise UsageError("--platform applies only to the conda-lock and pixi-lock formats")
    lock = import_file(args.format, args.file, platform=args.platform)
    if args.format == AUTO and lock.origin:
        args.format = lock.origin.removeprefix("import:")  # the lock's header names the format used
        if not args.quiet:
            from envlock.report import safe

            print(f"envlock: {safe(lock.capture_warnings[0])}", file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(codec.to_dict(lock), indent=2, ensure_ascii=False) + "\n")
        return 0
    if args.output == "-":
        sys.stdout.write(write.dumps_lock(lock, command_text(args)))
    else:
        try:
            write.write_lock(lock, args.output, command_text(args))
        except OSError as exc:
            raise UsageError(
                f"cannot write {args.output}: {exc.strerror or exc}",
                hint="check that the directory exists and is writable",
            ) from None
    if not args.quiet:
        from envlock.report import safe
        from envlock.summary import summary_line

        if args.output != "-":
            print(f"wrote {safe(args.output)}: {summary_line(lock)}", file=sys.stderr)
        shown_warnings = [w for w in lock.capture_warnings if not w.startswith("read as ")]
        for warning in shown_warnings[:SHOWN_WARNINGS]:
            print(f"envlock: warning: {safe(warning)}", file=sys.stderr)
        hidden = len(shown_warnings) - SHOWN_WARNINGS
        if hidden > 0:
            print(f"envlock: {hidden} more warnings are in the lock's capture-warnings", file=sys.stderr)
    return 0
