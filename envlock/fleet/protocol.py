"""How a node's lock travels home through the launcher's output: framed lines, checked on arrival.

Each node writes, on its standard output::

    envlock-fleet-1 NODE begin SIZE SHA256
    envlock-fleet-1 NODE chunk SEQ BASE64      (one per 540 bytes of the lock)
    envlock-fleet-1 NODE end SECONDS

or a single ``envlock-fleet-1 NODE error BASE64(MESSAGE)`` line.  Each line
carries its node and stays under 1,000 bytes: ``srun --label`` passes whole
lines of up to 1,024 bytes and cuts longer ones, and without ``--label`` it
splices the tasks' output at arbitrary bytes (both measured with Slurm 22.05:
3 tasks writing 4 KiB lines).  Whatever else a
node prints (a site's login banner, a module system's chatter) is ignored.
Pure: :func:`read_frames` takes the text and returns what each node sent,
with every inconsistency (bad node name, missing or repeated chunk, size or
sha256 mismatch) turned into that node's error, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from envlock.records import record

MAGIC = "envlock-fleet-1"
# 540 bytes encode to 720 base64 characters: with the frame words and srun's
# "N: " label a line stays well under srun's 1,024-byte line limit.
CHUNK_BYTES = 540
# A node name becomes a file name (DIR/<node>.lock): Slurm's node names are
# host-name-like; anything else (a path separator, "..", a space) is refused.
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A lock is at most 8 MiB (the loader's limit); a node announcing more is refused.
MAX_LOCK_BYTES = 8 * 1024 * 1024


@record
class NodeResult:
    node: str
    lock: bytes | None = None  # the lock's bytes, checked against the announced size and sha256
    error: str | None = None
    seconds: float | None = None  # how long the capture took on the node


def valid_node_name(name: str) -> bool:
    return bool(NODE_NAME.fullmatch(name)) and name not in (".", "..")


def lock_frames(node: str, data: bytes, seconds: float) -> list[str]:
    digest = hashlib.sha256(data).hexdigest()
    lines = [f"{MAGIC} {node} begin {len(data)} {digest}\n"]
    for seq, start in enumerate(range(0, len(data), CHUNK_BYTES)):
        chunk = base64.b64encode(data[start : start + CHUNK_BYTES]).decode("ascii")
        lines.append(f"{MAGIC} {node} chunk {seq} {chunk}\n")
    lines.append(f"{MAGIC} {node} end {seconds:.3f}\n")
    return lines


def error_frame(node: str, message: str) -> str:
    encoded = base64.b64encode(message.encode("utf-8", "replace")).decode("ascii")
    return f"{MAGIC} {node} error {encoded}\n"


class _Partial:
    __slots__ = ("size", "digest", "chunks", "problem", "seconds", "done", "error")

    def __init__(self) -> None:
        self.size = -1
        self.digest = ""
        self.chunks: list[bytes] = []
        self.problem: str | None = None
        self.seconds: float | None = None
        self.done = False
        self.error: str | None = None


def read_frames(text: str) -> dict[str, NodeResult]:
    """What each node sent, by node name, in the order the nodes first spoke."""
    partial: dict[str, _Partial] = {}
    for line in text.splitlines():
        # srun --label would prefix "0: "; tolerate any prefix before the magic word.
        at = line.find(MAGIC + " ")
        if at < 0:
            continue
        fields = line[at:].split()
        if len(fields) < 3:
            continue
        node, kind, rest = fields[1], fields[2], fields[3:]
        if not valid_node_name(node):
            # Not a name we can file a lock under; say so under a safe stand-in.
            state = partial.setdefault("(invalid node name)", _Partial())
            state.problem = state.problem or f"a node sent the name {node[:40]!r}, which is not a valid node name"
            continue
        state = partial.setdefault(node, _Partial())
        if state.problem:
            continue
        state.problem = _apply(state, kind, rest)
    return {node: _result(node, state) for node, state in partial.items()}


def _apply(state: _Partial, kind: str, rest: list[str]) -> str | None:
    """Fold one frame into a node's state; the problem it reveals, if any."""
    if kind == "error":
        try:
            state.error = base64.b64decode(rest[0] if rest else "", validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            state.error = "the node reported an error that could not be decoded"
        return None
    if kind == "begin":
        if state.size >= 0:
            return "the node started sending its lock twice"
        if len(rest) != 2 or not rest[0].isdigit() or not re.fullmatch(r"[0-9a-f]{64}", rest[1]):
            return "the node's lock header is malformed"
        size = int(rest[0])
        if size > MAX_LOCK_BYTES:
            return f"the node announced a lock of {size} bytes, over the {MAX_LOCK_BYTES}-byte limit"
        state.size, state.digest = size, rest[1]
        return None
    if kind == "chunk":
        if state.size < 0 or state.done:
            return "the node sent part of a lock outside its header and end"
        if len(rest) != 2 or rest[0] != str(len(state.chunks)):
            return f"a part of the node's lock is missing or out of order (expected part {len(state.chunks)})"
        try:
            chunk = base64.b64decode(rest[1], validate=True)
        except (binascii.Error, ValueError):
            return f"part {rest[0]} of the node's lock is not valid base64"
        if sum(map(len, state.chunks)) + len(chunk) > state.size:
            return "the node sent more bytes than its header announced"
        state.chunks.append(chunk)
        return None
    if kind == "end":
        if state.size < 0 or state.done:
            return "the node ended a lock it never began"
        try:
            state.seconds = float(rest[0]) if rest else None
        except ValueError:
            state.seconds = None
        state.done = True
        return None
    return None  # a frame kind from a newer envlock: ignored


def _result(node: str, state: _Partial) -> NodeResult:
    if state.problem:
        return NodeResult(node, error=state.problem)
    if state.error is not None:
        return NodeResult(node, error=state.error)
    if state.size < 0:
        return NodeResult(node, error="the node sent no lock")
    if not state.done:
        return NodeResult(node, error="the node's output ended before its lock was complete")
    data = b"".join(state.chunks)
    if len(data) != state.size:
        return NodeResult(node, error=f"the node's lock is {len(data)} bytes, its header announced {state.size}")
    if hashlib.sha256(data).hexdigest() != state.digest:
        return NodeResult(node, error="the node's lock does not match the sha256 in its header")
    return NodeResult(node, lock=data, seconds=state.seconds)
