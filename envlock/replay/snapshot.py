"""Where the OS layer's packages come from: the mirror, or the archive of the lock's time (pure).

Debian's mirror keeps one version of each package per suite, so months after
a capture most locked versions are gone from it.  The snapshot archive keeps
every version ever published, addressed by time::

    https://snapshot.debian.org/archive/debian/20240610T000000Z/ bookworm main
    https://snapshot.ubuntu.com/ubuntu/20240610T000000Z/ jammy main

A lock anchored in time by ``envlock pin`` (``os.snapshot-time``, and
``first-seen`` for a version older than that) names the archive states that
hold each locked version.  Replay adds those states as apt sources only when
the mirror lacks a locked version (``templates/os_packages.py`` decides, in
the image).  A release that left the mirror altogether (Debian's end of life)
is read from archive.debian.org instead of the mirror.

Every base URL is an option, so a site mirror (or a test's loopback archive)
stands in for the public services.  Every value that ends up in an apt source
line is checked here with an anchored pattern; nothing else reaches apt.
"""

from __future__ import annotations

import re

from envlock.errors import ReplayError
from envlock.records import record

DEBIAN_SNAPSHOT = "https://snapshot.debian.org"
UBUNTU_SNAPSHOT = "https://snapshot.ubuntu.com"
DEBIAN_ARCHIVE = "http://archive.debian.org/debian"
# Debian releases whose suites moved from the mirrors to archive.debian.org
# (https://www.debian.org/releases/: squeeze..buster are archived; bullseye's
# LTS ended in August 2026 but its suites were still on the mirrors when this
# table was written).
ARCHIVED_DEBIAN = frozenset({"squeeze", "wheezy", "jessie", "stretch", "buster"})

# A base URL that may go into an apt source line: scheme, host, optional port, path.
# No spaces, brackets, quotes or option syntax can pass.
_BASE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%+-]+)*/?")
_CODENAME = re.compile(r"[a-z][a-z0-9-]{1,30}")
_STAMP_IN = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
# What templates/os_packages.py accepts as a source line (the same pattern lives there).
SOURCE_LINE = re.compile(
    r"deb (?:\[check-valid-until=no\] )?https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%+-]+)*/? "
    r"[a-z][a-z0-9-]{1,40}(?: [a-z][a-z0-9-]{1,30}){1,4}"
)


@record
class ArchiveOptions:
    """The base URLs replay reads OS packages from; ``None`` keeps the public service."""

    mirror: str | None = None  # a site mirror of the distribution (replaces the image's own sources)
    snapshot: str | None = None  # the snapshot service (default: snapshot.debian.org / snapshot.ubuntu.com)
    archive: str | None = None  # where end-of-life Debian releases live (default: archive.debian.org)


def check_base_url(url: str, what: str) -> str:
    """``url`` without a trailing slash, or ``ReplayError`` naming the option."""
    if not isinstance(url, str) or len(url) > 300 or not _BASE_URL.fullmatch(url):
        raise ReplayError(
            f"{what}: {str(url)[:80]!r} is not a plain http(s) base URL",
            hint="give scheme, host, optional port and path, e.g. http://127.0.0.1:8080/debian",
        )
    return url.rstrip("/")


def snapshot_stamp(timestamp: str) -> str:
    """The archive's spelling of a lock timestamp: 2024-06-10T08:15:00Z -> 20240610T081500Z."""
    found = _STAMP_IN.fullmatch(timestamp or "")
    if not found:
        raise ReplayError(f"{timestamp!r} is not a UTC timestamp (YYYY-MM-DDTHH:MM:SSZ)")
    return "{}{}{}T{}{}{}Z".format(*found.groups())


def anchor_stamps(snapshot_time: str | None, first_seen: list[str | None]) -> list[str]:
    """The archive states that hold the locked versions, oldest first, each once."""
    stamps = {snapshot_stamp(t) for t in [snapshot_time, *first_seen] if t}
    return sorted(stamps)


def _suites(distro: str, codename: str) -> tuple[list[str], list[str], str]:
    """(main-archive suites, security suites, components) for a release."""
    if distro == "ubuntu":
        return [codename, f"{codename}-updates", f"{codename}-security"], [], "main universe"
    return [codename, f"{codename}-updates"], [f"{codename}-security"], "main"


def mirror_source_lines(distro: str, codename: str, options: ArchiveOptions) -> list[str]:
    """The apt sources that replace the image's own: a site mirror, or archive.debian.org for an archived release.

    Empty when the image's own sources are right (a current release, no site mirror).
    """
    if not _CODENAME.fullmatch(codename or ""):
        raise ReplayError(f"os.codename: {str(codename)[:40]!r} is not a release codename")
    if options.mirror:
        base = check_base_url(options.mirror, "OS mirror")
        main, security, components = _suites(distro, codename)
        lines = [f"deb {base} {suite} {components}" for suite in main]
        if security and base.endswith("/debian"):
            lines += [f"deb {base}-security {suite} {components}" for suite in security]
        return lines
    if distro == "debian" and codename in ARCHIVED_DEBIAN:
        base = check_base_url(options.archive or DEBIAN_ARCHIVE, "Debian archive")
        # archive.debian.org's Release files expired long ago: that is what it is for.
        return [f"deb [check-valid-until=no] {base} {codename} main"]
    return []


def snapshot_source_lines(distro: str, codename: str, stamps: list[str], options: ArchiveOptions) -> list[str]:
    """The apt sources of the snapshot archive at each stamp (``check-valid-until=no``: old Release files expired)."""
    if not stamps:
        return []
    if not _CODENAME.fullmatch(codename or ""):
        raise ReplayError(f"os.codename: {str(codename)[:40]!r} is not a release codename")
    main, security, components = _suites(distro, codename)
    if distro == "ubuntu":
        base = check_base_url(options.snapshot or UBUNTU_SNAPSHOT, "snapshot archive")
        roots = [(f"{base}/ubuntu", main)]
    elif distro == "debian":
        base = check_base_url(options.snapshot or DEBIAN_SNAPSHOT, "snapshot archive")
        roots = [(f"{base}/archive/debian", main), (f"{base}/archive/debian-security", security)]
    else:
        return []
    lines = []
    for stamp in stamps:
        if not re.fullmatch(r"[0-9]{8}T[0-9]{6}Z", stamp):
            raise ReplayError(f"{stamp!r} is not a snapshot time")
        for root, suites in roots:
            lines += [f"deb [check-valid-until=no] {root}/{stamp}/ {suite} {components}" for suite in suites]
    return lines
