"""An Apptainer (Singularity) definition file for HPC clusters where Docker is not allowed.

The definition installs the same hash-pinned files as replay: the Python
packages from a requirements file with ``--hash`` (``pip install
--require-hashes --no-deps --only-binary :all:``), a conda layer from an
explicit file, and the lock's numerics variables in ``%environment``.

Nothing from the lock is pasted into a shell line: package names, versions
and URLs go into the requirements / explicit files (copied by ``%files``);
``%environment`` is sourced by ``/bin/sh``, so each value is quoted with
:func:`shlex.quote` after its name is checked; labels and the base image are
checked against strict patterns.  The text comes from
``templates/apptainer.def.tmpl`` through the replay's strict template filler
(a placeholder without a value is an error, never empty text).
"""

from __future__ import annotations

import re
import shlex

from envlock.errors import FormatError, UsageError
from envlock.lockfile import model as m
from envlock.records import record

TEMPLATE = "apptainer.def.tmpl"
PREFIX = "/opt/envlock"
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,200}")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/-]*(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEBIAN_CODENAMES = ("bookworm", "bullseye", "trixie")


@record
class ApptainerFiles:
    """What the definition expects beside it (file names relative to its directory)."""

    requirements: str | None = None
    conda_explicit: str | None = None
    wheelhouse: str | None = None


def default_base_image(lock: m.Lock) -> str:
    """A Docker Hub image with the lock's Python (micromamba for a conda lock)."""
    if lock.conda is not None and lock.conda.packages:
        return "mambaorg/micromamba:latest"
    version = lock.python.version if lock.python is not None else None
    if not version or not re.fullmatch(r"[0-9]+\.[0-9]+(?:\.[0-9]+)?", version):
        return "python:3-slim"
    codename = lock.os.codename if lock.os is not None else None
    suffix = f"-slim-{codename}" if codename in _DEBIAN_CODENAMES else "-slim"
    return f"python:{version}{suffix}"


def _check_image(image: str) -> str:
    if not _IMAGE.fullmatch(image) or len(image) > 255:
        raise UsageError(
            f"--base-image {image[:80]!r}: not an image reference like python:3.11.7-slim or name@sha256:<digest>"
        )
    return image


def _check_file(name: str | None, what: str) -> str | None:
    if name is not None and not _FILE_NAME.fullmatch(name):
        raise FormatError(f"{what} {name!r}: a plain file name is needed (no directories or spaces)")
    return name


def render_apptainer(
    lock: m.Lock,
    files: ApptainerFiles,
    *,
    base_image: str | None = None,
    def_name: str = "envlock.def",
    command: str | None = None,
) -> str:
    from envlock.replay.templates import fill, read_template

    image = _check_image(base_image or default_base_image(lock))
    _check_file(def_name, "definition file")
    requirements = _check_file(files.requirements, "requirements file")
    explicit = _check_file(files.conda_explicit, "conda explicit file")
    wheels = _check_file(files.wheelhouse, "wheelhouse directory")

    notes = []
    if image.endswith(":latest") or "@sha256:" not in image:
        notes.append(
            "# The base image is named by tag; pin it by digest (--base-image name@sha256:...) for a bit-exact rebuild."
        )

    labels = []
    if lock.fingerprint and re.fullmatch(r"sha256:[0-9a-f]{64}", lock.fingerprint):
        labels.append(f"    org.envlock.fingerprint {lock.fingerprint}")
    labels.append(f"    org.envlock.lock-version {lock.lock_version}")

    file_lines = []
    post = []
    python = "python3"
    if explicit:
        file_lines.append(f"    {explicit} {PREFIX}/{explicit}")
        post.append(f"    micromamba install --yes --name base --file {PREFIX}/{explicit}")
        post.append("    micromamba clean --all --yes")
        python = "/opt/conda/bin/python"
    if requirements:
        file_lines.append(f"    {requirements} {PREFIX}/{requirements}")
        if wheels:
            file_lines.append(f"    {wheels} {PREFIX}/{wheels}")
        post.append(
            f"    {python} -m venv --system-site-packages {PREFIX}/venv"
            if explicit
            else f"    {python} -m venv {PREFIX}/venv"
        )
        post.append(
            f"    {PREFIX}/venv/bin/python -m pip install --no-cache-dir --require-hashes --no-deps --only-binary :all: -r {PREFIX}/{requirements}"
        )
    if not post:
        post.append("    true  # the lock has no packages to install")

    environment = []
    if requirements:
        environment.append(f'    export PATH="{PREFIX}/venv/bin:$PATH"')
    elif explicit:
        environment.append('    export PATH="/opt/conda/bin:$PATH"')
    if lock.runtime is not None:
        for name in sorted(lock.runtime.env):
            if not _ENV_NAME.fullmatch(name):
                raise FormatError(f"runtime.env.{name[:40]!r}: not an environment variable name")
            environment.append(f"    export {name}={shlex.quote(lock.runtime.env[name])}")
    if not environment:
        environment.append("    :")

    return fill(
        read_template(TEMPLATE),
        {
            "command": command or "envlock export apptainer",
            "def_name": def_name,
            "notes": "\n".join(notes),
            "base_image": image,
            "labels": "\n".join(labels),
            "files": "\n".join(file_lines) or "    # nothing to copy",
            "post": "\n".join(post),
            "environment": "\n".join(environment),
        },
    )
