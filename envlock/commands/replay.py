"""`envlock replay`: rebuild a matching container image from a lockfile, then prove the match."""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable

    from envlock.lockfile.model import Lock
    from envlock.replay.orchestrate import ReplayOutcome

DESCRIPTION = (
    "Rebuild a container image that matches a lockfile (hash-pinned Python packages, OS packages at "
    "their locked versions, numerics variables), verify it by capturing inside the image, and report "
    "what is reproduced exactly, what differs and what cannot be reproduced. Exit 0: all exact; "
    "1: mismatches remain (all listed); 2: bad input or engine error. Without a registry, envlock "
    "builds its own base image from the Debian mirror (debootstrap)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lock", nargs="?", default="envlock.lock", help="the lockfile (default: envlock.lock)")
    parser.add_argument("-t", "--tag", help="name the image (default: envlock-replay:<fingerprint>)")
    parser.add_argument("--base-image", metavar="IMAGE", help="start from this image instead of the matrix's choice")
    parser.add_argument("--network", default="host", help="network for the build's RUN steps (default: host)")
    parser.add_argument(
        "--ca-cert",
        metavar="FILE",
        help="CA bundle of a TLS-intercepting proxy: used during installs, in no layer of the image",
    )
    parser.add_argument(
        "--index-url", metavar="URL", help="package index to pin from (default: https://pypi.org/simple)"
    )
    parser.add_argument(
        "--extra-index-url", metavar="URL", action="append", default=[], help="another index to pin from (repeatable)"
    )
    parser.add_argument(
        "--find-links",
        metavar="DIR",
        action="append",
        default=[],
        help="a wheelhouse directory; its files are copied into the build context",
    )
    add_archive_arguments(parser)
    parser.add_argument(
        "--conda-channel-url",
        metavar="URL",
        help="fetch the lock's conda packages from this channel (a mirror) instead of their recorded URLs",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the Dockerfile and build nothing")
    parser.add_argument(
        "--output-dir", metavar="DIR", help="write the whole build context to DIR (for `docker build DIR`)"
    )
    parser.add_argument(
        "--into-venv", metavar="DIR", help="no Docker: replay only the Python layer into a new virtualenv at DIR"
    )
    parser.add_argument(
        "--builder",
        choices=("auto", "sdk", "buildkit"),
        default="auto",
        help="auto: BuildKit through a capable docker CLI, else the SDK's legacy builder",
    )
    parser.add_argument("--no-cache", action="store_true", help="build without the engine's cache")
    parser.add_argument("--no-verify", action="store_true", help="build only; do not capture inside the image")
    parser.add_argument(
        "--allow-sdists", action="store_true", help="allow source distributions (they run code while building)"
    )
    parser.add_argument(
        "--require-digest",
        action="store_true",
        help="refuse a base image pinned only by tag (the digest must be known: resolved by the engine or given "
        "as --base-image NAME@sha256:...)",
    )
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the report as JSON")
    fmt.add_argument("--markdown", action="store_true", help="the report as Markdown")
    parser.add_argument("-q", "--quiet", action="store_true", help="no build progress")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="list every item of every finding, and the checks that passed"
    )


def add_archive_arguments(parser: argparse.ArgumentParser) -> None:
    """Where OS packages come from: the options replay and pack share."""
    parser.add_argument(
        "--os-mirror", metavar="URL", help="a site mirror of the distribution, used instead of the image's apt sources"
    )
    parser.add_argument(
        "--snapshot-url",
        metavar="URL",
        help="the snapshot archive for OS versions the mirror dropped "
        "(default: https://snapshot.debian.org, https://snapshot.ubuntu.com)",
    )
    parser.add_argument(
        "--archive-url",
        metavar="URL",
        help="where end-of-life Debian releases live (default: http://archive.debian.org/debian)",
    )


def archive_options(args: argparse.Namespace):
    """The ArchiveOptions the command line names (each URL checked), or None for the public services."""
    from envlock.replay.snapshot import ArchiveOptions, check_base_url

    urls = {"mirror": args.os_mirror, "snapshot": args.snapshot_url, "archive": args.archive_url}
    if not any(urls.values()):
        return None
    names = {"mirror": "--os-mirror", "snapshot": "--snapshot-url", "archive": "--archive-url"}
    return ArchiveOptions(**{key: check_base_url(url, names[key]) if url else None for key, url in urls.items()})


def run(args: argparse.Namespace) -> int:
    from envlock.commands._common import load_lock_reporting
    from envlock.errors import UsageError

    if args.into_venv and (args.dry_run or args.output_dir):
        raise UsageError("--into-venv cannot be combined with --dry-run or --output-dir")
    from envlock.pack.format import is_pack

    fmt = "json" if args.json else "markdown" if args.markdown else "text"
    if is_pack(args.lock):  # a pack, by its content: every file comes from it, the network stays off
        return _replay_pack(args, fmt)
    lock = load_lock_reporting(args.lock).lock
    if args.into_venv:
        return _into_venv(lock, args, fmt)
    from envlock.commands.progress import TerminalDisplay
    from envlock.replay.orchestrate import ReplayRequest, replay
    from envlock.replay.progress import Progress

    request = ReplayRequest(
        tag=args.tag,
        base_image=args.base_image,
        network=args.network,
        ca_cert=args.ca_cert,
        index_url=args.index_url,
        extra_index_urls=tuple(args.extra_index_url),
        find_links=tuple(args.find_links),
        builder=args.builder,
        dry_run=args.dry_run,
        output_dir=args.output_dir,
        no_cache=args.no_cache,
        verify=not args.no_verify,
        allow_sdists=args.allow_sdists,
        require_digest=args.require_digest,
        archive=archive_options(args),
        conda_channel_url=args.conda_channel_url,
    )
    progress = Progress(TerminalDisplay(quiet=args.quiet or args.dry_run))
    outcome = replay(lock, request, progress=progress)
    if args.dry_run:
        sys.stdout.write(outcome.dockerfile)
        return 0
    sys.stdout.write(format_outcome(lock, outcome, fmt, verbose=args.verbose) + "\n")
    if outcome.build is None:  # --output-dir only: nothing was built, nothing is proven yet
        return 0
    return outcome.exit_code


def format_outcome(lock: Lock, outcome: ReplayOutcome, fmt: str, verbose: bool = False) -> str:
    """The replay report: verdict first (envlock.report.image_report)."""
    from envlock.report import image_report
    from envlock.verdict import HOST_LAYERS

    report = outcome.verify
    findings = outcome.all_findings()
    notes = list(outcome.notes)
    if outcome.builder and fmt != "json":
        notes.insert(0, f"builder: {outcome.builder.reason}")
    if report is not None:
        notes += list(report.notes)
        notes.append(host_note(report.host_rows))
        title = f"envlock replay: {outcome.image}"
    elif outcome.build is None:
        title = "envlock replay plan (nothing built)"
    else:
        title = f"envlock replay: {outcome.image} (built, not verified)"
    extra = {
        "image": outcome.image,
        "image_id": outcome.build.image_id if outcome.build else None,
        "builder": outcome.builder.builder if outcome.builder else None,
        "build_seconds": round(outcome.build.seconds, 2) if outcome.build else None,
        "build_reused": outcome.build.reused if outcome.build else False,
        "base_image": outcome.plan.from_ref,
        "exit_code": outcome.exit_code if outcome.build else 0,
        "host": dict(report.host_rows) if report is not None else {},
        "bytes": report.byte_summary if report is not None else None,
    }
    if report is not None and report.byte_summary:
        # The byte-level count belongs on the first line a reader sees.
        title += f" — {report.byte_summary}"
    return image_report(
        title=title,
        lock=lock,
        findings=[f for f in findings if f.layer not in HOST_LAYERS],
        host_findings=[f for f in findings if f.layer in HOST_LAYERS],
        host_checked=report is not None,
        notes=notes,
        fmt=fmt,
        verbose=verbose,
        planned=report is None,
        extra=extra,
    )


def host_note(rows: Iterable[tuple[str, str]]) -> str:
    """This host in one line (the ISA flags are in --json)."""
    shown = [f"{name} {value}" for name, value in rows if name != "CPU ISA flags"]
    return "this host: " + "; ".join(shown)


def _replay_pack(args, fmt: str) -> int:
    from envlock.commands.progress import TerminalDisplay
    from envlock.errors import UsageError
    from envlock.replay.progress import Progress

    if args.dry_run or args.output_dir:
        raise UsageError("a pack is replayed whole: --dry-run and --output-dir take a lockfile")
    if args.into_venv:
        from envlock.pack.replay import into_venv_from_pack

        def from_pack(lock, pins, uv_dirs: tuple[str, ...]) -> int:
            args.find_links = list(uv_dirs)  # uv from the pack: nothing is fetched
            return _into_venv(lock, args, fmt, pins=pins)

        return into_venv_from_pack(args.lock, from_pack)
    from envlock.pack.replay import replay_pack

    outcome, lock = replay_pack(args.lock, args, Progress(TerminalDisplay(quiet=args.quiet)))
    sys.stdout.write(format_outcome(lock, outcome, fmt, verbose=args.verbose) + "\n")
    return outcome.exit_code


def _uv_here(args):
    """The checked uv for this machine; None (pip installs) when there is none to be had."""
    from envlock.errors import ReplayError
    from envlock.replay import uv_tool

    arch = uv_tool.host_arch()
    if arch is None:
        return None
    try:
        return uv_tool.find_uv(
            arch,
            index_url=getattr(args, "index_url", None),
            local_dirs=tuple(getattr(args, "find_links", None) or ()),
        )
    except ReplayError as exc:
        sys.stderr.write(f"envlock: {exc.message}; pip installs the packages instead (slower)\n")
        return None


def _into_venv(lock, args, fmt: str, pins=None) -> int:
    """``--into-venv DIR``: resolve (unless ``pins`` are given, as from a pack), install, print the report."""
    from envlock.replay.venv import replay_into_venv
    from envlock.resolve import DEFAULT_INDEX, resolve_lock

    if pins is None and lock.python is not None and lock.python.packages:
        pins = resolve_lock(
            lock,
            index_url=getattr(args, "index_url", None) or DEFAULT_INDEX,
            extra_index_urls=tuple(getattr(args, "extra_index_url", None) or ()),
            find_links=tuple(getattr(args, "find_links", None) or ()),
        )
    result = replay_into_venv(
        lock,
        args.into_venv,
        pins,
        python=getattr(args, "python", None),
        ca_cert=getattr(args, "ca_cert", None),
        allow_sdists=bool(getattr(args, "allow_sdists", False)),
        uv=_uv_here(args) if pins is not None and pins.pins else None,
    )
    from envlock import records
    from envlock.report import image_report
    from envlock.verdict import is_mismatch

    # The exit code follows the verdict, as for an image: info notes (pip kept
    # though the lock has none) are not differences.
    code = 1 if any(is_mismatch(f) for f in result.findings if f.layer == "python") else 0

    title = f"envlock replay --into-venv {result.directory} (Python {result.python_version})"
    # Only the Python layer goes into a venv: the verdict counts that layer alone.
    python_only = records.replace(lock, conda=None, os=None, cuda=None, runtime=None, nvidia=None, cpu=None)
    text = image_report(
        title=title,
        lock=python_only,
        findings=list(result.findings),
        host_checked=None,
        notes=["only the Python layer is replayed into a virtual environment; `envlock replay` builds the rest"],
        fmt=fmt,
        verbose=getattr(args, "verbose", False),
        extra={"directory": result.directory, "python": result.python_version, "exit_code": code},
        subject="the venv",
    )
    sys.stdout.write(text + "\n")
    return code
