"""The task that runs on each node of a fleet capture: capture, then send the lock home on stdout.

``envlock fleet capture`` starts ``python -m envlock.fleet.node`` once per node
through the cluster's launcher (``srun``).  Nothing assumes a filesystem shared
with the login node: the lock travels back in srun's own output stream, which
every Slurm site has, as a few framed lines (:mod:`envlock.fleet.protocol`)
that interleave safely with other nodes' lines.  The node name comes from the
launcher (``SLURMD_NODENAME``) and is only ever written in the frame, never
into the lock, which stays private by default.
"""

from __future__ import annotations

import os
import sys
import time


def node_name() -> str:
    """The name the cluster gives this node (``SLURMD_NODENAME``), else the short host name."""
    name = os.environ.get("SLURMD_NODENAME")
    if name:
        return name
    import socket

    return socket.gethostname().split(".", 1)[0]


def capture_text(python: str | None) -> str:
    """This node's lock as the TOML text ``envlock capture`` would write."""
    from envlock.capture.collect import capture_lock_data
    from envlock.capture.interpreter import inspect_interpreter_in_background
    from envlock.capture.privacy import scrub_text
    from envlock.lockfile import write

    interpreter = inspect_interpreter_in_background(python)
    _lock, data = capture_lock_data(python, include_private=False, project_dir=".", interpreter=interpreter)
    command = "envlock fleet capture" + (f" --python {python}" if python else "")
    return write.dumps_lock_data(data, scrub_text(command))


def main(argv: list[str] | None = None) -> int:
    from envlock.fleet.protocol import error_frame, lock_frames

    args = list(sys.argv[1:] if argv is None else argv)
    python = None
    if args[:1] == ["--python"] and len(args) == 2:
        python = args[1]
    elif args:
        print(f"envlock.fleet.node: unexpected arguments {args!r}", file=sys.stderr)
        return 2
    node = node_name()
    started = time.monotonic()
    try:
        text = capture_text(python)
    except Exception as exc:  # any failure is reported home by name, never as a bare traceback
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        sys.stdout.write(error_frame(node, message))
        sys.stdout.flush()
        return 1
    sys.stdout.write("".join(lock_frames(node, text.encode("utf-8"), time.monotonic() - started)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
