"""``python -m envlock.commands.base_image [PYTHON_VERSION]``: build or reuse envlock's own Debian base image.

Run once by provisioning (``scripts/provision.d/docker-base.sh``, as root:
debootstrap needs it), so that replay finds its base without a registry.
"""

from __future__ import annotations

import sys

from envlock.commands.progress import TerminalDisplay
from envlock.errors import EngineError
from envlock.replay.debootstrap_base import choose_spec, ensure_base_image
from envlock.replay.engine import DockerEngine
from envlock.replay.progress import Progress


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    spec = choose_spec(args[0] if args else None, "debian", "12")
    try:
        base = ensure_base_image(DockerEngine(), spec, Progress(TerminalDisplay()))
    except EngineError as exc:
        print(f"envlock: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    print(base.describe())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
