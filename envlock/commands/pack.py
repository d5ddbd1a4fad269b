"""`envlock pack`: the whole environment in one file; `envlock pack --check FILE` checks one without building."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Gather every artifact of a lock into one file: the lock (pinned on the way in), every pinned Python file "
    "(checked against its sha256), the OS layer's .deb files at their locked versions, the conda packages "
    "(checked against their locked hashes) with what installs them offline, and the base image "
    "(docker save, recorded by digest), with pack.json and SHA256SUMS. `envlock replay FILE` then rebuilds with "
    "the network off. The same lock packs to the same bytes. Exit 0: written; 1: an artifact cannot be had "
    "(named, nothing written); 2: bad input, or with --check a damaged or hostile pack (the member named)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lock", nargs="?", default="envlock.lock", help="the lockfile (default: envlock.lock)")
    parser.add_argument("-o", "--output", metavar="FILE", help="the pack to write")
    parser.add_argument("--check", metavar="FILE", help="check every byte of a pack, build nothing")
    parser.add_argument("--index-url", action="append", default=[], metavar="URL", help="index to pin from")
    parser.add_argument("--extra-index-url", action="append", default=[], metavar="URL", help="another index")
    parser.add_argument(
        "--find-links", action="append", default=[], metavar="DIR", help="a directory with pinned files"
    )
    parser.add_argument("--ca-cert", metavar="FILE", help="CA bundle of a TLS-intercepting proxy, for downloads")
    parser.add_argument("--base-image", metavar="IMAGE", help="pack this image instead of the lock's or the matrix's")
    parser.add_argument(
        "--conda-channel-url",
        metavar="URL",
        help="fetch the lock's conda packages from this channel (a mirror) instead of their recorded URLs",
    )
    parser.add_argument("--json", action="store_true", help="the result as JSON")


def run(args: argparse.Namespace) -> int:
    from envlock.errors import UsageError

    if args.check:
        return _check(args.check, args.json)
    if not args.output:
        raise UsageError("envlock pack needs -o FILE", hint="e.g. envlock pack envlock.lock -o env.pack")
    from envlock.commands._common import load_lock_reporting
    from envlock.commands.progress import TerminalDisplay
    from envlock.pack.build import PackRequest, build_pack, check_output_path
    from envlock.replay.engine import DockerEngine
    from envlock.replay.progress import Progress

    lock = load_lock_reporting(args.lock).lock
    request = PackRequest(
        output=check_output_path(args.output),
        index_urls=tuple(args.index_url),
        extra_index_urls=tuple(args.extra_index_url),
        find_links=tuple(args.find_links),
        base_image=args.base_image,
        ca_cert=args.ca_cert,
        conda_channel_url=args.conda_channel_url,
    )
    engine = DockerEngine()
    engine.ping()
    result = build_pack(lock, request, engine, Progress(TerminalDisplay(quiet=args.json)))
    if args.json:
        import json

        data = {"pack": result.path, "sha256": result.sha256, "members": result.members, "size": result.size}
        sys.stdout.write(json.dumps({**data, "notes": list(result.notes)}, indent=2) + "\n")
    else:
        lines = [f"wrote {result.path}: {result.members} members, {result.size} bytes", f"sha256 {result.sha256}"]
        lines += [f"  note: {note}" for note in result.notes]
        sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _check(path: str, as_json: bool) -> int:
    from envlock.pack.replay import open_pack

    checked, lock = open_pack(path)
    kinds: dict[str, int] = {}
    for member in checked.members:
        kinds[member.kind] = kinds.get(member.kind, 0) + 1
    if as_json:
        import json

        data = {
            "pack": path,
            "sha256": checked.sha256,
            "ok": True,
            "lock-fingerprint": lock.fingerprint,
            "base-image": checked.meta.get("base-image"),
            "members": [{"name": m.name, "kind": m.kind, "size": m.size, "sha256": m.sha256} for m in checked.members],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        sys.stdout.write(
            f"{path}: every byte checked, {len(checked.members)} members ({counts})\n"
            f"sha256 {checked.sha256}\nlock fingerprint {lock.fingerprint}\n"
        )
    return 0
