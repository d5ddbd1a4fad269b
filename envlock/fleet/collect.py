"""``envlock fleet capture``: one lock per node, written as ``DIR/<node>.lock``, with ``DIR/fleet.json``.

Every lock that arrives is checked twice before it is written: the frame's
size and sha256 (:mod:`envlock.fleet.protocol`), then the full lockfile
validation every envlock command applies.  A node that fails is named with
what Slurm or the node said; the other nodes' locks are written all the same.
"""

from __future__ import annotations

import json
import os
import sys
import time

from envlock.errors import EngineError, UsageError
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

FLEET_INDEX = "fleet.json"
FLEET_FORMAT = 1


@record
class NodeOutcome:
    node: str
    lock_file: str | None = None  # the file name inside DIR, when the node's lock was written
    error: str | None = None
    seconds: float | None = None


@record
class FleetCapture:
    directory: str
    nodes: tuple[NodeOutcome, ...]
    command: tuple[str, ...]
    started_at: str
    finished_at: str
    seconds: float

    @property
    def failed(self) -> tuple[NodeOutcome, ...]:
        return tuple(n for n in self.nodes if n.error is not None)

    @property
    def captured(self) -> tuple[NodeOutcome, ...]:
        return tuple(n for n in self.nodes if n.lock_file is not None)


def node_task(python: str | None) -> list[str]:
    """The command each node runs: this envlock's interpreter (same path on every node, as on a shared install)."""
    task = [sys.executable, "-m", "envlock.fleet.node"]
    if python:
        task += ["--python", python]
    return task


def capture_fleet(
    directory: str, srun_args: Sequence[str], python: str | None = None, timeout: float | None = None
) -> FleetCapture:
    from envlock.fleet.protocol import read_frames, valid_node_name
    from envlock.fleet.slurm import check_user_args, run_srun, srun_argv
    from envlock.lockfile.io import parse_lock
    from envlock.lockfile.write import atomic_write_text

    check_user_args(srun_args)
    _prepare_directory(directory)
    argv = srun_argv(list(srun_args), node_task(python))
    started_at, started = _utc_now(), time.monotonic()
    outcome = run_srun(argv, timeout)
    seconds = time.monotonic() - started
    received = read_frames(outcome.stdout)

    # Every node srun launched on, answered or named in an error, in natural
    # name order (node2 before node10): srun launches in no fixed order.
    order = sorted({*outcome.nodes, *received, *outcome.node_errors}, key=natural_key)
    if not order:
        said = "; ".join(outcome.errors) or f"srun exited with status {outcome.returncode} and launched nothing"
        raise EngineError(
            f"Slurm ran no capture: {said}",
            hint="check the srun options after `--` (try them with `srun ... hostname`)",
        )

    results = []
    for node in order:
        got = received.get(node)
        error = outcome.node_errors.get(node)
        if got is not None and got.lock is not None and valid_node_name(node):
            try:
                loaded = parse_lock(got.lock, source=f"the lock from {node}")
            except Exception as exc:  # LockfileError: the node's lock failed validation
                results.append(
                    NodeOutcome(node, error=f"sent a lock that does not validate: {getattr(exc, 'message', exc)}")
                )
                continue
            del loaded
            name = f"{node}.lock"
            atomic_write_text(os.path.join(directory, name), got.lock.decode("utf-8"))
            results.append(NodeOutcome(node, lock_file=name, seconds=got.seconds))
            continue
        if got is not None and got.error:
            error = f"{got.error}" + (f" (srun: {error})" if error else "")
        results.append(NodeOutcome(node, error=error or _silence(outcome)))
    capture = FleetCapture(
        directory=directory,
        nodes=tuple(results),
        command=tuple(_private_argv(argv)),
        started_at=started_at,
        finished_at=_utc_now(),
        seconds=seconds,
    )
    atomic_write_text(os.path.join(directory, FLEET_INDEX), fleet_index_json(capture))
    return capture


def natural_key(name: str) -> tuple:
    """Sort key that reads digit runs as numbers: node2 < node10, gpu-a01 < gpu-b01."""
    import re

    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"([0-9]+)", name) if part)


def _silence(outcome) -> str:
    if outcome.errors:
        return "no lock arrived; srun said: " + "; ".join(outcome.errors)
    return f"no lock arrived (srun exited with status {outcome.returncode})"


def _prepare_directory(directory: str) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UsageError(f"-o {directory}: exists and is not a directory", hint="name a directory for the node locks")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"-o {directory}: cannot create the directory: {exc.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise UsageError(f"-o {directory}: the directory is not writable")


def _private_argv(argv: list[str]) -> list[str]:
    from envlock.capture.privacy import scrub_text

    return [scrub_text(a) for a in argv]


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def fleet_index_json(capture: FleetCapture) -> str:
    """DIR/fleet.json: which node wrote which lock, when, and with which command (node names live here only)."""
    from envlock import __version__

    nodes = []
    for n in capture.nodes:
        entry: dict[str, object] = {"name": n.node, "status": "captured" if n.lock_file else "failed"}
        if n.lock_file:
            entry["lock"] = n.lock_file
        if n.seconds is not None:
            entry["capture-seconds"] = round(n.seconds, 3)
        if n.error:
            entry["error"] = n.error
        nodes.append(entry)
    payload = {
        "fleet-format": FLEET_FORMAT,
        "created-by": f"envlock {__version__}",
        "launcher": "slurm",
        "command": list(capture.command),
        "started-at": capture.started_at,
        "finished-at": capture.finished_at,
        "seconds": round(capture.seconds, 3),
        "nodes": nodes,
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def fleet_lock_paths(directory: str) -> list[tuple[str, str]]:
    """(node label, lock path) for a fleet directory: the captured nodes of its fleet.json, else every *.lock.

    fleet.json is read as untrusted input: a lock name must be a plain file
    name inside the directory.
    """
    index = os.path.join(directory, FLEET_INDEX)
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as handle:
                payload = json.load(handle)
            entries = payload["nodes"]
            if not isinstance(entries, list):
                raise TypeError("nodes is not a list")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{index}: not a fleet index envlock can read ({exc})",
                hint="re-run `envlock fleet capture`, or remove fleet.json to compare every *.lock in the directory",
            ) from None
        out = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or entry.get("status") != "captured":
                continue
            name, node = entry.get("lock"), entry.get("name")
            if (
                not isinstance(name, str)
                or not isinstance(node, str)
                or os.path.basename(name) != name
                or name in (".", "..")
            ):
                raise UsageError(f"{index}: nodes[{i}]: the lock file name {name!r} is not a plain file name")
            out.append((node, os.path.join(directory, name)))
        return out
    names = sorted(n for n in os.listdir(directory) if n.endswith(".lock") and not n.startswith("."))
    return [(n[: -len(".lock")], os.path.join(directory, n)) for n in names]
