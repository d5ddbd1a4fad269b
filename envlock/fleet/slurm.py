"""Slurm as the fleet's launcher: one ``srun`` step, one task per node, and what srun says about each node.

envlock starts no daemon and opens no connection of its own: the site's Slurm
allocates the nodes (``-N 8``, ``--nodelist``, ``-p gpu``, or the allocation a
``salloc``/``sbatch`` already holds), launches the task, carries its output
back and reports failures per node.  ``-v`` makes srun name every node it
launches on, so a node that never answered is still named.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading

from envlock.errors import UsageError
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# srun options that would take the tasks' output away from envlock (the locks
# travel in it) or change the one-task-per-node shape of the step.
_REFUSED = {
    "-o": "the locks travel in srun's standard output",
    "--output": "the locks travel in srun's standard output",
    "-e": "srun's standard error names the nodes that fail",
    "--error": "srun's standard error names the nodes that fail",
    "--pty": "the tasks' output must not be a terminal",
    "--ntasks-per-node": "envlock runs exactly one task per node",
    "--multi-prog": "every node runs the same capture",
}

_LAUNCHING = re.compile(r"^srun: launching \S+ on host (\S+?),")
_TASK_FAILED = re.compile(r"^srun: error: (\S+?): tasks? [0-9,\-]+: (.+)$")
_LAUNCH_FAILED = re.compile(r"^srun: error: .*? failed on node (\S+?): (.+)$")
_ERROR = re.compile(r"^srun: error: (.+)$")
# srun's own progress lines worth showing while a person waits (printed without -v too).
_PROGRESS = re.compile(r"^srun: job [0-9]+ (queued and waiting for resources|has been allocated resources)")


@record
class SrunOutcome:
    returncode: int
    stdout: str
    nodes: tuple[str, ...]  # every node srun launched on, in launch order
    node_errors: dict[str, str]  # node -> what srun said went wrong there
    errors: tuple[str, ...]  # srun errors about no single node (allocation, options, ...)


def check_user_args(args: Sequence[str]) -> None:
    """Refuse srun options that would break the capture step; every other option is the user's business."""
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in _REFUSED:
            raise UsageError(
                f"the srun option {name} cannot be used with envlock fleet: {_REFUSED[name]}",
                hint="leave it out; envlock adds --ntasks-per-node=1 itself",
            )
        if len(arg) > 2 and arg[0] == "-" and arg[1] in "oe" and arg[1] != "-":
            raise UsageError(
                f"the srun option -{arg[1]} cannot be used with envlock fleet: {_REFUSED['-' + arg[1]]}",
                hint="leave it out",
            )


def srun_argv(user_args: Sequence[str], task: Sequence[str], srun: str = "srun") -> list[str]:
    """The one srun step: one task per node, the user's options, then envlock's node task."""
    # --kill-on-bad-exit=0: a node whose capture fails must not cancel the others.
    # --label: srun then passes each task's lines whole (see envlock.fleet.protocol).
    return [srun, "-v", "--label", "--ntasks-per-node=1", "--kill-on-bad-exit=0", *user_args, *task]


def parse_srun_stderr(text: str) -> tuple[tuple[str, ...], dict[str, str], tuple[str, ...]]:
    """(nodes launched on, errors by node, other errors) from srun's standard error. Pure."""
    nodes: list[str] = []
    node_errors: dict[str, str] = {}
    errors: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        match = _LAUNCHING.match(line)
        if match:
            if match.group(1) not in nodes:
                nodes.append(match.group(1))
            continue
        match = _LAUNCH_FAILED.match(line) or _TASK_FAILED.match(line)
        if match:
            node, message = match.group(1), match.group(2)
            node_errors.setdefault(node, message)
            continue
        match = _ERROR.match(line)
        if match:
            errors.append(match.group(1))
    # "Application launch failed: X" restates a node's launch failure; keep it
    # only when no node was named.
    if node_errors:
        errors = [e for e in errors if not e.startswith("Application launch failed")]
    return tuple(nodes), node_errors, tuple(errors)


def run_srun(argv: list[str], timeout: float | None) -> SrunOutcome:
    """Run the step; srun's progress lines reach the terminal as they come, its output is collected."""
    from envlock.errors import EngineError

    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    except FileNotFoundError:
        raise UsageError(
            f"{argv[0]} was not found: envlock fleet capture --slurm runs on a Slurm login or compute node",
            hint="run it where `srun` works (module load slurm?), or see docs/fleet.md for Kubernetes and Ray",
        ) from None
    except OSError as exc:
        raise EngineError(f"could not start {argv[0]}: {exc}") from None
    err_lines: list[str] = []
    out_parts: list[str] = []

    # Both streams are read by threads of their own (communicate() would read
    # stderr too, racing the thread that shows srun's progress lines).
    def pump_stdout() -> None:
        assert process.stdout is not None
        out_parts.append(process.stdout.read())

    def pump_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            err_lines.append(line)
            if _PROGRESS.match(line):
                sys.stderr.write(line)
                sys.stderr.flush()

    readers = [threading.Thread(target=pump, daemon=True) for pump in (pump_stdout, pump_stderr)]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        err_lines.append(f"srun: error: envlock stopped srun after {timeout:g} s (--timeout)\n")
    for reader in readers:
        reader.join()
    stdout = "".join(out_parts)
    nodes, node_errors, errors = parse_srun_stderr("".join(err_lines))
    return SrunOutcome(process.returncode, stdout or "", nodes, node_errors, errors)
