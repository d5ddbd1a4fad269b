"""`envlock export FORMAT [LOCK] -o FILE`: a lock in another tool's format."""

from __future__ import annotations

import argparse
import os
import sys

FORMATS = {
    "pylock": "pylock.toml",
    "requirements": "requirements.txt",
    "conda-explicit": "conda-explicit.txt",
    "conda-env": "environment.yml",
    "conda-lock": "conda-lock.yml",
    "apptainer": "envlock.def",
    "dockerfile": "Dockerfile",
}

DESCRIPTION = (
    "Write a lock in another tool's format: pylock (PEP 751 pylock.toml, installed with `pip install -r "
    "pylock.toml`), requirements (a requirements file with --hash on every line), conda-explicit, conda-env and "
    "conda-lock (for locks with a conda layer), apptainer (a definition file for HPC clusters) and dockerfile (the replay's "
    "build context).  pylock, requirements, apptainer and dockerfile resolve each Python package to its exact file "
    "and sha256 on the index (network).  Exit status: 0 everything exported, 1 written but some packages could not "
    "be pinned (each listed), 2 bad input."
)

WHEELS_DIR = "wheels"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "format", choices=sorted(FORMATS), metavar="FORMAT", help="one of: " + ", ".join(sorted(FORMATS))
    )
    parser.add_argument("lock", nargs="?", default="envlock.lock", help="the lockfile (default: envlock.lock)")
    parser.add_argument("-o", "--output", help="the file to write ('-' for stdout; default: the format's usual name)")
    parser.add_argument(
        "--index-url",
        default=None,
        help="the index the Python packages are pinned from (default https://pypi.org/simple)",
    )
    parser.add_argument(
        "--extra-index-url",
        action="append",
        default=[],
        metavar="URL",
        help="another index to search (its pins are written as direct URLs)",
    )
    parser.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of wheels for packages no index serves (copied next to the output)",
    )
    parser.add_argument("--base-image", help="apptainer/dockerfile: the base image (default: chosen from the lock)")
    parser.add_argument("--name", default="envlock", help="conda-env: the environment name (default: envlock)")


def run(args: argparse.Namespace) -> int:
    from envlock.commands._common import load_lock_reporting

    output = args.output or FORMATS[args.format]
    lock = load_lock_reporting(args.lock).lock
    command = _command_text(f"envlock export {args.format} {args.lock} -o {output}")
    handler = {
        "pylock": _export_pylock,
        "requirements": _export_requirements,
        "conda-explicit": _export_conda_explicit,
        "conda-env": _export_conda_env,
        "conda-lock": _export_conda_lock,
        "apptainer": _export_apptainer,
        "dockerfile": _export_dockerfile,
    }[args.format]
    left_out = handler(lock, args, output, command)
    for line in left_out:
        print(f"envlock: not exported: {line}", file=sys.stderr)
    if left_out:
        print(
            f"envlock: {len(left_out)} item(s) could not be pinned exactly; {output} was written without them",
            file=sys.stderr,
        )
        return 1
    return 0


# --- helpers --------------------------------------------------------------------------


def _command_text(command: str) -> str:
    """The re-create command for a file header: one line, home written as ~, no host or user name."""
    from envlock.capture.privacy import scrub_text

    return scrub_text(command)


def _write(output: str, text: str) -> None:
    from envlock.lockfile.write import atomic_write_text

    if output == "-":
        sys.stdout.write(text)
        return
    try:
        atomic_write_text(output, text)
    except OSError as exc:
        from envlock.errors import UsageError

        raise UsageError(f"-o {output}: cannot be written ({exc.strerror})") from None


def _out_dir(output: str) -> str:
    return os.path.dirname(os.path.abspath(output)) if output != "-" else os.getcwd()


def _resolve(lock, args):
    from envlock import resolve

    if lock.python is None or not lock.python.packages:
        return None
    kwargs = {"index_url": args.index_url} if args.index_url else {}
    return resolve.resolve_lock(lock, extra_index_urls=args.extra_index_url, find_links=args.find_links, **kwargs)


def _problems(pins) -> list[str]:
    if pins is None:
        return []
    lines = [f"{p.name} {p.version}: {p.reason}" + (f" (fix: {p.fix})" if p.fix else "") for p in pins.problems]
    lines += [
        f"{v.name} {v.version}: from {v.vcs} commit {v.commit}; pip cannot hash-check a VCS checkout" for v in pins.vcs
    ]
    for note in pins.notes:
        print(f"envlock: note: {note}", file=sys.stderr)
    for pin in pins.pins:
        if pin.yanked:
            print(f"envlock: warning: {pin.name} {pin.version} is yanked on its index; pinned anyway", file=sys.stderr)
    return lines


def _copy_wheels(pins, output: str) -> None:
    """Wheelhouse files go into wheels/ beside the output (pip refuses paths outside the lock's directory)."""
    if pins is None or not any(p.wheelhouse_file for p in pins.pins):
        return
    from envlock.errors import UsageError
    from envlock.resolve import copy_wheelhouse_files

    destination = os.path.join(_out_dir(output), WHEELS_DIR)
    try:
        copy_wheelhouse_files(pins, destination)
    except OSError as exc:
        raise UsageError(f"cannot copy the wheelhouse files into {destination} ({exc.strerror})") from None


def _need_pins(lock, pins):
    from envlock.errors import UsageError

    if pins is None:
        raise UsageError(
            "this lock has no Python packages to export",
            hint="for a conda-only lock use: envlock export conda-explicit",
        )
    return pins


# --- formats ------------------------------------------------------------------------


def _export_pylock(lock, args, output: str, command: str) -> list[str]:
    import re

    from envlock.errors import UsageError
    from envlock.formats.export_pylock import render_pylock

    if output != "-" and not re.fullmatch(r"pylock(?:\.[A-Za-z0-9_-]+)?\.toml", os.path.basename(output)):
        raise UsageError(
            f"-o {output}: PEP 751 requires the file to be named pylock.toml or pylock.<name>.toml (pip refuses other names)",
            hint="for example -o pylock.toml",
        )
    pins = _need_pins(lock, _resolve(lock, args))
    _copy_wheels(pins, output)
    _write(output, render_pylock(pins, wheelhouse_dir=WHEELS_DIR, command=command))
    return _problems(pins)


def _export_requirements(lock, args, output: str, command: str) -> list[str]:
    from envlock.formats.export_requirements import render_requirements

    pins = _need_pins(lock, _resolve(lock, args))
    _copy_wheels(pins, output)
    _write(output, render_requirements(pins, wheelhouse_dir=WHEELS_DIR, command=command))
    return _problems(pins)


def _export_conda_explicit(lock, args, output: str, command: str) -> list[str]:
    from envlock.formats.export_conda import render_conda_explicit

    result = render_conda_explicit(lock, command=command)
    _write(output, result.text)
    return list(result.left_out)


def _export_conda_env(lock, args, output: str, command: str) -> list[str]:
    from envlock.formats.export_conda import render_conda_env

    result = render_conda_env(lock, name=args.name, command=command)
    _write(output, result.text)
    return list(result.left_out)


def _export_conda_lock(lock, args, output: str, command: str) -> list[str]:
    from envlock.formats.export_conda import render_conda_lock

    result = render_conda_lock(lock, command=command)
    _write(output, result.text)
    return list(result.left_out)


def _export_apptainer(lock, args, output: str, command: str) -> list[str]:
    from envlock.errors import UsageError
    from envlock.formats.export_apptainer import ApptainerFiles, render_apptainer
    from envlock.formats.export_conda import render_conda_explicit
    from envlock.formats.export_requirements import render_requirements

    if output == "-":
        raise UsageError(
            "apptainer export writes the definition and the files it copies: -o must be a file", hint="-o envlock.def"
        )
    directory = _out_dir(output)
    stem = os.path.splitext(os.path.basename(output))[0] or "envlock"
    left_out: list[str] = []
    explicit_name = None
    if lock.conda is not None and lock.conda.packages:
        explicit_name = f"{stem}.conda-explicit.txt"
        result = render_conda_explicit(lock, command=command)
        _write(os.path.join(directory, explicit_name), result.text)
        left_out += list(result.left_out)
    requirements_name = None
    pins = _resolve(lock, args)
    if pins is not None and pins.pins:
        requirements_name = f"{stem}.requirements.txt"
        _copy_wheels(pins, output)
        _write(
            os.path.join(directory, requirements_name),
            render_requirements(pins, wheelhouse_dir=WHEELS_DIR, command=command),
        )
    left_out += _problems(pins)
    wheels = WHEELS_DIR if pins is not None and any(p.wheelhouse_file for p in pins.pins) else None
    files = ApptainerFiles(requirements=requirements_name, conda_explicit=explicit_name, wheelhouse=wheels)
    text = render_apptainer(lock, files, base_image=args.base_image, def_name=os.path.basename(output), command=command)
    _write(output, text)
    return left_out


def _export_dockerfile(lock, args, output: str, command: str) -> list[str]:
    """The replay's own build context (same renderer as `envlock replay --dry-run`)."""
    from envlock.errors import UsageError
    from envlock.replay.plan import ReplayOptions, plan_replay
    from envlock.replay.render import render_context

    if output == "-":
        raise UsageError("dockerfile export writes a whole build context: -o must be a file such as ctx/Dockerfile")
    pins = _resolve(lock, args)
    plan = plan_replay(lock, ReplayOptions(base_image=args.base_image, pins=pins))
    context = render_context(plan)
    import shutil

    directory = _out_dir(output)
    try:
        for path, data in context.items():
            if path == context.dockerfile_path:
                continue
            _write_context_file(directory, path, data)
        for path, source in sorted(context.wheelhouse.items()):
            target = _context_target(directory, path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)
    except OSError as exc:
        raise UsageError(
            f"-o {output}: the build context cannot be written into {directory} ({exc.strerror})"
        ) from None
    _write(output, context.dockerfile)
    # The plan's other findings (host layers, OS versions) are the replay's
    # report, shown as notes: the Dockerfile itself is complete without them.
    for finding in plan.findings:
        if finding.status == "not-reproducible" and not finding.path.startswith("python.packages["):
            print(f"envlock: note: {finding.path}: {finding.message}", file=sys.stderr)
    return _problems(pins)


def _context_target(directory: str, path: str) -> str:
    from envlock.errors import UsageError

    target = os.path.normpath(os.path.join(directory, path))
    if os.path.isabs(path) or not target.startswith(os.path.abspath(directory) + os.sep):
        raise UsageError(f"build context path {path!r} escapes the output directory")
    return target


def _write_context_file(directory: str, path: str, data: bytes) -> None:
    target = _context_target(directory, path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as fh:
        fh.write(data)
