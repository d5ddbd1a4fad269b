"""Find a docker CLI that can build with BuildKit, and how it does so.

The Docker SDK speaks only the legacy ``/build`` API (docker-py #2230), so
BuildKit builds go through a CLI.  A 20.10 client (Debian's ``docker.io``)
has BuildKit built in behind ``DOCKER_BUILDKIT=1``; clients from 23.0 on need
the ``buildx`` plugin.  Every candidate is probed rather than trusting PATH:
the ``docker`` first on PATH may be a new client without buildx while
``/usr/bin/docker`` is 20.10.
"""

from __future__ import annotations

import os

from envlock.records import record
from envlock.versions import release_tuple


@record
class BuildkitCli:
    """A docker CLI that can build with BuildKit, and how."""

    path: str
    client_version: str
    mode: str  # "builtin" (20.x-22.x with DOCKER_BUILDKIT=1) or "buildx"


def parse_client_version(text: str) -> tuple[int, ...] | None:
    """'20.10.24+dfsg1' -> (20, 10, 24); None when it is not a version."""
    parts = release_tuple(text)
    return parts if parts and len(parts) >= 2 else None


def buildkit_mode(client_version: str, has_buildx: bool) -> str | None:
    """How a CLI of this version builds with BuildKit, or None when it cannot.

    buildx wins when present.  Without it, BuildKit is built into the classic
    ``docker build`` of clients before 23.0 (moby/moby#37151 landed it in
    18.09); 23.0 made buildx the only BuildKit front end.
    """
    if has_buildx:
        return "buildx"
    version = parse_client_version(client_version)
    if version is None:
        return None
    return "builtin" if (18, 9) <= version[:2] < (23, 0) else None


def candidate_clis() -> list[str]:
    """docker CLIs to consider: $ENVLOCK_DOCKER_CLI, then PATH, then the distribution's."""
    seen: set[str] = set()
    found: list[str] = []
    names = [os.environ.get("ENVLOCK_DOCKER_CLI") or ""]
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            names.append(os.path.join(directory, "docker"))
    names += ["/usr/bin/docker", "/usr/local/bin/docker"]
    for name in names:
        if not name or not os.path.isfile(name) or not os.access(name, os.X_OK):
            continue
        real = os.path.realpath(name)
        if real in seen:
            continue
        seen.add(real)
        found.append(name)
    return found


_CLI_CACHE: dict[str, BuildkitCli | None] = {}


def find_buildkit_cli() -> BuildkitCli | None:
    """The first docker CLI that can build with BuildKit (cached per process)."""
    from envlock import proc

    key = os.environ.get("ENVLOCK_DOCKER_CLI", "") + "|" + os.environ.get("PATH", "")
    if key in _CLI_CACHE:
        return _CLI_CACHE[key]
    result = None
    for path in candidate_clis():
        version = proc.run([path, "version", "--format", "{{.Client.Version}}"], timeout=20)
        if version is None or not parse_client_version(version.stdout):
            continue
        buildx = proc.run([path, "buildx", "version"], timeout=20)
        has_buildx = buildx is not None and buildx.returncode == 0
        mode = buildkit_mode(version.stdout.strip(), has_buildx)
        if mode:
            result = BuildkitCli(path=path, client_version=version.stdout.strip(), mode=mode)
            break
    _CLI_CACHE[key] = result
    return result
