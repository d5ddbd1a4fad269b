"""Before a conda replay builds: does each archive's server still serve it? (network, one concurrent batch)

Without this, an archive its channel deleted fails the build inside the
installer, after the base and the installer were set up, and the report
shows nothing.  One HEAD request per planned archive URL (a ranged GET of
one byte where a server refuses HEAD) runs before planning, so a gone file
becomes a finding that names it (:func:`envlock.replay.conda.plan_conda`),
as a pinned wheel gone from its index does.

Only the server's own answer counts: 404 and 410 mean gone, 401 and 403 mean
the channel wants credentials (a 403 may also come from a proxy refusing the
host, and the finding says so).  A connection that fails, a timeout or a 5xx
is no evidence about the file (the build has its own network and proxy, and a
busy server may answer later), so it is left to the build, which fetches and
checks every archive anyway.

TLS: ``--ca-cert`` when given, else the bundle the index client trusts (the
system bundle, or ``SSL_CERT_FILE``), as the resolver does for Python files.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from envlock.replay.conda import CondaUnavailable

WORKERS = 16
TIMEOUT = 20.0
GONE = (404, 410)
CREDENTIALS = (401, 403)
_REFUSES_HEAD = (405, 501)


def _status(url: str, method: str, context, timeout: float) -> int | None:
    """The HTTP status ``url`` answers (redirects followed), or None when no server answered."""
    headers = {"User-Agent": "envlock"}
    if method == "GET":
        headers["Range"] = "bytes=0-0"
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:  # noqa: S310 (http(s) checked by the planner)
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        exc.close()  # the error carries the open response
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _ask(url: str, context, timeout: float) -> CondaUnavailable | None:
    status = _status(url, "HEAD", context, timeout)
    if status in _REFUSES_HEAD:
        status = _status(url, "GET", context, timeout)
    if status in GONE or status in CREDENTIALS:
        assert status is not None  # narrowed by the membership tests
        return CondaUnavailable(url, status)
    return None


def _context(ca_cert: str | None):
    import ssl

    if ca_cert:
        return ssl.create_default_context(cafile=ca_cert)
    from envlock.index_client import _ssl_context

    return _ssl_context()


def probe_urls(
    urls: Iterable[str], ca_cert: str | None = None, timeout: float = TIMEOUT
) -> tuple[CondaUnavailable, ...]:
    """The URLs among ``urls`` whose server says they cannot be had, sorted by URL (network)."""
    wanted = sorted(set(urls))
    if not wanted:
        return ()
    context = _context(ca_cert) if any(u.startswith("https://") for u in wanted) else None
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(wanted))) as pool:
        answers = list(pool.map(lambda url: _ask(url, context, timeout), wanted))
    return tuple(answer for answer in answers if answer is not None)


def probe_lock(
    lock, platform: str, channel_url: str | None, ca_cert: str | None = None
) -> tuple[CondaUnavailable, ...]:
    """What the channel answers for the archives a replay of ``lock`` would fetch (none: nothing to say)."""
    from envlock.replay.conda import plan_conda

    try:
        install, _ = plan_conda(lock, platform, channel_url)
    except ValueError:
        return ()  # the planner reports the bad --conda-channel-url
    if install is None:
        return ()  # not replayed for another reason: the planner says which
    return probe_urls((a.url for a in install.archives), ca_cert)
