"""`envlock capture`: snapshot every layer of this environment into envlock.lock."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Snapshot every layer that decides a result (Python packages, interpreter, OS packages, "
    "CUDA stack, NVIDIA driver and GPUs, CPU, numerics variables, git state) into one lockfile. "
    "Never imports your frameworks and never uses the network."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", default="envlock.lock", help="where to write the lock (default: envlock.lock; '-' for stdout)"
    )
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="capture this interpreter's environment (a venv or conda env) instead of envlock's own",
    )
    parser.add_argument("--json", action="store_true", help="print the lock as JSON instead of writing TOML")
    parser.add_argument(
        "--include-private", action="store_true", help="also record GPU UUIDs and serial numbers (off by default)"
    )
    parser.add_argument(
        "--project", metavar="DIR", default=".", help="the project whose git state is recorded (default: .)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="then pin every artifact to its exact file, as `envlock pin` does (uses the network)",
    )
    from envlock.commands.pin import add_index_arguments

    add_index_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from envlock.commands._common import without_cyclic_gc

    return without_cyclic_gc(lambda: _capture(args))


def _capture(args: argparse.Namespace) -> int:
    from envlock.capture.interpreter import inspect_interpreter_in_background

    # Asking another interpreter about itself is a child process (20-30 ms);
    # start it first so it runs while the capture modules are imported.
    if args.pin and (args.json or args.output == "-"):
        from envlock.errors import UsageError

        raise UsageError("--pin rewrites a lock file; it cannot be combined with --json or -o -", hint="use -o PATH")
    interpreter = inspect_interpreter_in_background(args.python)
    from envlock.capture.collect import capture_lock_data
    from envlock.lockfile import write
    from envlock.summary import summary_line

    lock, data = capture_lock_data(
        args.python, include_private=args.include_private, project_dir=args.project, interpreter=interpreter
    )
    command = "envlock capture" + ("" if args.output == "envlock.lock" else f" -o {args.output}")
    if args.python:
        command += f" --python {args.python}"
    # The header is part of the file: no home path, user or host name, and no
    # newline that would end the comment (privacy.scrub_text escapes it).
    from envlock.capture.privacy import scrub_text

    command = scrub_text(command)
    if args.json:
        import json

        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return 0
    if args.output == "-":
        sys.stdout.write(write.dumps_lock_data(data, command))
        return 0
    if args.pin:
        from envlock.commands.pin import pin_and_report

        return pin_and_report(lock, args, args.output, command + " --pin")
    write.atomic_write_text(args.output, write.dumps_lock_data(data, command))
    if not args.quiet:
        print(f"wrote {args.output}: {summary_line(lock)}", file=sys.stderr)
        for warning in lock.capture_warnings:
            print(f"envlock: warning: {warning}", file=sys.stderr)
    return 0
