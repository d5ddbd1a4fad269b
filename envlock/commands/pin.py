"""`envlock pin`: record, for every artifact in a lock, the exact file that can be fetched again."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "The one deliberate network step: for every Python distribution installed from an index, find the exact file "
    "whose wheel tags and build tag are the installed ones, and record its URL, sha256, size and upload time in the "
    "lock (rewritten atomically). Indexes you name are used as given, a mirror on localhost included. "
    "Exit 0: everything pinned; 1: something could not be pinned (named); 2: bad input."
)


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index-url",
        action="append",
        default=[],
        metavar="URL",
        help="an index to search (PEP 503/691; repeatable, searched in order; default https://pypi.org/simple)",
    )
    parser.add_argument(
        "--extra-index-url", action="append", default=[], metavar="URL", help="another index, searched after those"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lock", nargs="?", default="envlock.lock", help="the lockfile (default: envlock.lock)")
    add_index_arguments(parser)
    parser.add_argument("-o", "--output", metavar="PATH", help="write the pinned lock here instead of over LOCK")
    parser.add_argument(
        "--snapshot-url",
        metavar="URL",
        help="the snapshot archive whose API says when each OS package version appeared "
        "(default: https://snapshot.debian.org)",
    )
    parser.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="the image this environment runs in: recorded by its registry digest, so replay starts from those bytes",
    )
    parser.add_argument("--json", action="store_true", help="the report as JSON")


def pin_and_report(lock, args: argparse.Namespace, output: str, command: str) -> int:
    """Pin ``lock``, write it to ``output`` atomically, print what was chosen; the exit code."""
    from envlock.findings import INFO, sort_findings
    from envlock.lockfile import write
    from envlock.pin import PinRequest, pin_lock
    from envlock.resolve import check_index_url

    request = PinRequest(
        index_urls=tuple(check_index_url(u, "--index-url") for u in args.index_url),
        extra_index_urls=tuple(check_index_url(u, "--extra-index-url") for u in args.extra_index_url),
        snapshot_url=_snapshot_url(args),
        base_image=getattr(args, "base_image", None),
    )
    outcome = pin_lock(lock, request)
    write.write_lock(outcome.lock, output, command)
    findings = sort_findings(outcome.findings)
    failed = [f for f in findings if f.severity != INFO]
    code = 1 if failed else 0
    if getattr(args, "json", False):
        import json

        data = {
            "lock": output,
            "fingerprint": outcome.lock.fingerprint,
            "layers": [
                {"layer": layer.layer, "pinned": layer.pinned, "total": layer.total, "notes": list(layer.notes)}
                for layer in outcome.layers
            ],
            "findings": [f.to_dict() for f in findings],
            "exit_code": code,
        }
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return code
    lines = []
    for layer in outcome.layers:
        lines.append(f"{layer.layer}: {layer.pinned} of {layer.total} pinned to exact files")
    lines.append(f"wrote {output}")
    for finding in findings:
        lines.append(f"  {finding.path}: {finding.message}")
        if finding.fix and finding.severity != INFO:
            lines.append(f"      fix: {finding.fix}")
    for note in outcome.notes:
        lines.append(f"  note: {note}")
    sys.stdout.write("\n".join(lines) + "\n")
    return code


def _snapshot_url(args: argparse.Namespace) -> str | None:
    from envlock.replay.snapshot import check_base_url

    url = getattr(args, "snapshot_url", None)
    return check_base_url(url, "--snapshot-url") if url else None


def run(args: argparse.Namespace) -> int:
    from envlock.capture.privacy import scrub_text
    from envlock.commands._common import load_lock_reporting

    lock = load_lock_reporting(args.lock).lock
    output = args.output or args.lock
    command = scrub_text(
        "envlock pin "
        + (output if not args.output else f"{args.lock} -o {output}")
        + "".join(f" --index-url {u}" for u in args.index_url)
        + "".join(f" --extra-index-url {u}" for u in args.extra_index_url)
        + (f" --snapshot-url {args.snapshot_url}" if args.snapshot_url else "")
        + (f" --base-image {args.base_image}" if args.base_image else "")
    )
    return pin_and_report(lock, args, output, command)
