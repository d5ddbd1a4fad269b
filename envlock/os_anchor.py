"""Anchor a lock's OS layer in time, so replay can find its packages in the snapshot archive.

``envlock pin`` calls :func:`anchor_os`: it sets ``os.snapshot-time`` (the
capture time: the archive at that time holds what the mirror served then) and,
for each hand-installed package, ``first-seen``: when the archive first saw
that exact version.  A version that was superseded before the capture is not
in the archive at the capture time, but it is at its first-seen time.

The archive's machine interface (snapshot.debian.org's ``/mr/`` layout) answers
``GET /mr/binary/<name>/<version>/binfiles?fileinfo=1`` with the version's
files per architecture and, for each file, where and when it was first seen::

    {"binary": "tree", "binary_version": "2.1.0-1",
     "result": [{"architecture": "amd64", "hash": "<sha1>"}],
     "fileinfo": {"<sha1>": [{"archive_name": "debian", "first_seen": "20230115T085530Z",
                             "name": "tree_2.1.0-1_amd64.deb", "path": "/pool/main/t/tree", "size": 52536}]}}

The base URL is an option: a site's own snapshot service (or a test's
loopback one) stands in.  Requests go out in parallel, one per package.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from envlock import records
from envlock.lockfile import model as m

_STAMP = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
MAX_ANSWER_BYTES = 4 * 1024 * 1024
PARALLEL_REQUESTS = 8
TIMEOUT_S = 30


def parse_first_seen(text: str | bytes, architecture: str | None, archive: str = "debian") -> str | None:
    """The earliest time ``archive`` saw the version's file for ``architecture`` (or ``all``), as a lock timestamp (pure).

    ``None`` when the answer is not the archive's layout or names no such file.
    """
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        return None
    given = data.get("fileinfo")
    fileinfo = given if isinstance(given, dict) else {}
    wanted = {architecture, "all"} if architecture else None
    seen: list[str] = []
    for item in data["result"]:
        if not isinstance(item, dict) or not isinstance(item.get("hash"), str):
            continue
        if wanted is not None and item.get("architecture") not in wanted:
            continue
        for info in fileinfo.get(item["hash"]) or []:
            if not isinstance(info, dict) or info.get("archive_name") != archive:
                continue
            found = _STAMP.fullmatch(str(info.get("first_seen", "")))
            if found:
                seen.append("{}-{}-{}T{}:{}:{}Z".format(*found.groups()))
    return min(seen) if seen else None


def _binfiles_url(base: str, name: str, version: str) -> str:
    return f"{base.rstrip('/')}/mr/binary/{quote(name, safe='')}/{quote(version, safe='')}/binfiles?fileinfo=1"


class ArchiveUnreachable(Exception):
    """The snapshot service did not answer at all (as opposed to "not known")."""


def read_first_seen(base: str, package: m.OsPackage, archive: str = "debian") -> str | None:
    """Ask the snapshot service when it first saw ``package`` (network); ``None`` when it does not know it.

    ``ArchiveUnreachable`` when no answer came, so the caller stops asking.
    """
    from urllib.error import HTTPError, URLError
    from urllib.request import urlopen

    try:
        with urlopen(_binfiles_url(base, package.name, package.version), timeout=TIMEOUT_S) as answer:
            body = answer.read(MAX_ANSWER_BYTES + 1)
    except HTTPError:
        return None
    except (URLError, OSError, ValueError) as exc:
        raise ArchiveUnreachable(str(getattr(exc, "reason", exc))) from None
    if len(body) > MAX_ANSWER_BYTES:
        return None
    return parse_first_seen(body, package.architecture, archive)


def anchor_os(lock: m.Lock, snapshot_url: str, captured_at: str | None = None) -> tuple[m.Lock, list[str]]:
    """The lock with its OS layer anchored in time, and one note per package the archive could not place.

    Only Debian locks are anchored through the API (snapshot.ubuntu.com has
    no first-seen interface); an Ubuntu lock gets its capture time alone.
    """
    osec = lock.os
    if osec is None or osec.id not in ("debian", "ubuntu") or osec.package_manager not in (None, "dpkg"):
        return lock, []
    anchor = osec.snapshot_time or captured_at or lock.created_at
    manual = [p for p in osec.packages if p.manual is True]
    notes: list[str] = []
    seen: dict[str, str | None] = {}
    if osec.id == "debian" and manual:
        try:
            # One request first: an unreachable archive costs one failure, not one per package.
            seen[manual[0].name] = read_first_seen(snapshot_url, manual[0])
            with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
                answers = pool.map(lambda p: read_first_seen(snapshot_url, p), manual[1:])
                for package, first in zip(manual[1:], answers, strict=True):
                    seen[package.name] = first
        except ArchiveUnreachable as exc:
            seen = {}
            notes.append(
                f"the snapshot archive at {snapshot_url} did not answer ({exc}): the OS layer is anchored at the "
                "capture time only; run `envlock pin --snapshot-url URL` where it can be reached"
            )
        for package in manual:
            if package.name in seen and seen[package.name] is None:
                notes.append(f"os.packages[{package.name}]: the snapshot archive does not know {package.version}")
    packages = tuple(records.replace(p, first_seen=seen[p.name]) if seen.get(p.name) else p for p in osec.packages)
    return records.replace(lock, os=records.replace(osec, snapshot_time=anchor, packages=packages)), notes
