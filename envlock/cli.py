"""Command-line entry point: parse arguments, call one library function, print, exit.

Each command lives in ``envlock/commands/<name>.py`` with ``add_arguments``
and ``run``; those modules import nothing heavy at module level, so
``envlock --help`` stays fast (target: 0.15 s).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys

from envlock import __version__
from envlock.errors import EnvlockError

# command name -> (module, one-line help)
COMMANDS = {
    "capture": ("envlock.commands.capture", "snapshot every layer of this environment into envlock.lock"),
    "pin": ("envlock.commands.pin", "record the exact file (URL, sha256, upload time) of every artifact in a lock"),
    "show": ("envlock.commands.show", "summarise a lockfile, layer by layer"),
    "replay": ("envlock.commands.replay", "rebuild a matching container (or virtualenv) from a lockfile and verify it"),
    "verify": ("envlock.commands.verify", "capture inside an existing image and compare it with a lockfile"),
    "doctor": ("envlock.commands.doctor", "will this lock run on this host, and what will differ?"),
    "diff": ("envlock.commands.diff", "compare two or more lockfiles, ranked by numeric impact"),
    "check": ("envlock.commands.check", "compare the live environment with a lockfile (for CI gates)"),
    "fleet": ("envlock.commands.fleet", "capture or check every node of a cluster through Slurm"),
    "import": (
        "envlock.commands.import_",
        "read another tool's file (pip freeze, conda-lock, collect_env, ...) into a lock",
    ),
    "pack": (
        "envlock.commands.pack",
        "the whole environment in one file (wheels, .debs, base image), replayable offline",
    ),
    "export": (
        "envlock.commands.export",
        "write a lock in another tool's format (pylock, requirements, conda, Dockerfile, Apptainer)",
    ),
}


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told the terminal width instead of importing shutil to ask.

    argparse builds a formatter for every option it declares, and without a
    width each one imports ``shutil`` (with bz2, lzma and zlib: ~3 ms) for
    ``get_terminal_size``; this asks the same questions in the same order.
    """

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        super().__init__(
            prog, indent_increment, max_help_position, width if width is not None else _terminal_columns() - 2
        )


def _terminal_columns() -> int:
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        stdout = sys.__stdout__
        if stdout is None:  # no standard output at all (pythonw, a closed descriptor)
            return 80
        return os.get_terminal_size(stdout.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; given ``command``, only that command's options are declared.

    Every command is still listed (and accepted) by name, so ``envlock --help``
    and the error for a mistyped command read the same; but declaring the
    options of all nine commands, and importing their modules, cost 8-15 ms of
    every run, a tenth of what capture may take in all.
    """
    parser = argparse.ArgumentParser(
        prog="envlock",
        description="Lock, replay and audit the whole stack of a machine-learning environment.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"envlock {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name, help=help_text, add_help=False, formatter_class=_HelpFormatter)
            continue
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(
            name, help=help_text, description=getattr(module, "DESCRIPTION", help_text), formatter_class=_HelpFormatter
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _command_named_in(argv: list[str]) -> str | None:
    """The command the arguments name: the first one, when it is a command (options come after it)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    as_program = argv is None
    try:
        return _run(argv)
    finally:
        if as_program:
            # What the command allocated lives until the process exits: moving
            # it out of the collector's reach skips the full collection at
            # shutdown (~13 ms of a 0.15 s capture).  Not when called with
            # arguments from Python, where the caller goes on running.
            gc.freeze()


def _run(argv: list[str] | None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    command = _command_named_in(argv)
    parser = build_parser(command)
    # A command that hands arguments on to another program (`envlock fleet ... -- SRUN_ARGS`)
    # names the attribute that receives everything after the first `--`; argparse
    # alone cannot tell them from the command's own options and positionals.
    passthrough = getattr(importlib.import_module(COMMANDS[command][0]), "PASSTHROUGH", None) if command else None
    rest: list[str] = []
    if passthrough and "--" in argv:
        at = argv.index("--")
        argv, rest = argv[:at], argv[at + 1 :]
    args = parser.parse_args(argv)
    if passthrough:
        setattr(args, passthrough, rest)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except EnvlockError as exc:
        print(f"envlock: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("envlock: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
