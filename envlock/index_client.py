"""Reading package indexes: PEP 691 JSON and PEP 503 HTML project pages, over HTTP(S) or file://.

One job: turn an index URL and a project name into the files that index lists
(name, URL, sha256, size, upload time, yank state).  Which file to take is
:mod:`envlock.wheel_select`'s job; what a lock records is :mod:`envlock.resolve`'s
and :mod:`envlock.pin`'s.

Pages are read concurrently, once per (index, project), with the system CA
bundle (this machine's TLS-intercepting proxy CA lives there); an index that
cannot be reached is remembered as dead, so a batch of 300 projects costs one
timeout, not 300.
"""

from __future__ import annotations

import html.parser
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
# Project pages are small (PyPI's torch page is ~1 MB of JSON); a cap keeps a
# hostile index from filling memory.
MAX_PAGE_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
# Concurrent page reads: an index answers in ~50-300 ms, almost all of it waiting.
WORKERS = 8


@record
class IndexFile:
    filename: str
    url: str
    sha256: str | None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    size: int | None = None
    upload_time: str | None = None


class IndexUnavailable(Exception):
    """An index that could not be read (unreachable, refused, bad answer)."""


class NotOnIndex(Exception):
    """The index answered, and it has no such project."""


def _shown_reason(value: object) -> str | None:
    """A yank reason from an index, as text fit for a report: one printable line, at most 200 characters."""
    if not isinstance(value, str) or not value.strip():
        return None
    cleaned = re.sub(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+", " ", value).strip()
    return cleaned[:200] or None


def parse_simple_json(text: str, page_url: str) -> list[IndexFile]:
    """A PEP 691 JSON project page to its files (URLs made absolute)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise IndexUnavailable(f"{page_url}: not valid JSON ({exc})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise IndexUnavailable(f"{page_url}: a JSON answer without a 'files' list")
    out = []
    for item in files:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("filename"), str)
            or not isinstance(item.get("url"), str)
        ):
            continue
        given = item.get("hashes")
        hashes = given if isinstance(given, dict) else {}
        sha = hashes.get("sha256")
        yanked = item.get("yanked", False)
        size = item.get("size")
        out.append(
            IndexFile(
                filename=item["filename"],
                url=urllib.parse.urljoin(page_url, item["url"]),
                sha256=sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) else None,
                requires_python=item.get("requires-python") if isinstance(item.get("requires-python"), str) else None,
                yanked=bool(yanked),
                yanked_reason=_shown_reason(yanked),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                upload_time=item.get("upload-time") if isinstance(item.get("upload-time"), str) else None,
            )
        )
    return out


class _AnchorParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], list[str]]] = []
        self._current: tuple[dict[str, str | None], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = (dict(attrs), [])
            self.anchors.append(self._current)

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._current = None


def parse_simple_html(text: str, page_url: str) -> list[IndexFile]:
    """A PEP 503 HTML project page (or a find-links page) to its files."""
    parser = _AnchorParser()
    parser.feed(text)
    parser.close()
    out = []
    for attrs, texts in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url = urllib.parse.urljoin(page_url, href)
        parsed = urllib.parse.urlsplit(url)
        filename = urllib.parse.unquote(parsed.path.rsplit("/", 1)[-1])
        sha = None
        fragment = urllib.parse.parse_qs(parsed.fragment)
        if "sha256" in fragment and re.fullmatch(r"[0-9a-fA-F]{64}", fragment["sha256"][0]):
            sha = fragment["sha256"][0].lower()
        yanked_attr = "data-yanked" in attrs
        yanked_reason = _shown_reason(attrs.get("data-yanked"))
        out.append(
            IndexFile(
                filename=filename or "".join(texts).strip(),
                url=urllib.parse.urlunsplit(parsed._replace(fragment="")),
                sha256=sha,
                requires_python=attrs.get("data-requires-python") or None,
                yanked=yanked_attr,
                yanked_reason=yanked_reason,
            )
        )
    return out


def is_machine_local(url: str) -> bool:
    """A URL that only this machine can fetch: file://, or a loopback/link-local/unnamed host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return True
    host = (parts.hostname or "").lower()
    if not host or host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a bare name resolves only on this network
    return address.is_loopback or address.is_link_local or address.is_unspecified


def _ssl_context() -> ssl.SSLContext:
    # The system bundle (this machine's TLS-intercepting proxy CA lives there);
    # SSL_CERT_FILE wins when set, as it does for OpenSSL itself.
    cafile = os.environ.get("SSL_CERT_FILE")
    if not cafile or not os.path.isfile(cafile):
        cafile = "/etc/ssl/certs/ca-certificates.crt" if os.path.isfile("/etc/ssl/certs/ca-certificates.crt") else None
    return ssl.create_default_context(cafile=cafile)


def open_url(url: str, timeout: float = DEFAULT_TIMEOUT):
    """An open response for an http(s) or file URL (the system CA bundle for https)."""
    if url.startswith("file://"):
        return open(urllib.request.url2pathname(urllib.parse.urlsplit(url).path), "rb")  # noqa: SIM115
    request = urllib.request.Request(url, headers={"User-Agent": "envlock"})
    context = _ssl_context() if url.startswith("https://") else None
    return urllib.request.urlopen(request, timeout=timeout, context=context)


def download_checked(url: str, destination: Path, sha256: str, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """Fetch ``url`` to ``destination`` only if its bytes have sha256 ``sha256``: None, or why not.

    Written beside the destination and renamed into place, so a file that is
    there is whole and checked.
    """
    import hashlib

    partial = destination.with_name(destination.name + ".part")
    digest = hashlib.sha256()
    try:
        with open_url(url, timeout) as response, partial.open("wb") as out:
            for block in iter(lambda: response.read(1024 * 1024), b""):
                digest.update(block)
                out.write(block)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        partial.unlink(missing_ok=True)
        return f"{url} cannot be fetched ({getattr(exc, 'reason', None) or exc})"
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        return f"{url} now serves other bytes (sha256:{digest.hexdigest()})"
    os.replace(partial, destination)
    return None


# --- HTTP: one name lookup per host, kept-alive connections within a batch ---------------------

# This machine's resolver answers some lookups only after its 5 s timeout
# (measured: 16 concurrent getaddrinfo("pypi.org") calls, every one 5.01 s;
# one at a time, 1 in 20).  urllib looks the host up again for every request,
# so 50 pages took 6 s where the transfers took 1.6 s.  One lookup per host,
# made under a lock, and connections reused within a batch.
_ADDRESSES: dict[tuple[str, int], list] = {}
_ADDRESS_LOCK = threading.Lock()
MAX_REDIRECTS = 5


def _addresses(host: str, port: int) -> list:
    with _ADDRESS_LOCK:
        found = _ADDRESSES.get((host, port))
        if found is None:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            _ADDRESSES[(host, port)] = found
    return found


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _name, address in _addresses(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"no address for {host}")


class _HTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = _connect(self.host, self.port, self.timeout)  # type: ignore[arg-type]


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = _connect(self.host, self.port, self.timeout)  # type: ignore[arg-type]
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _Pool:
    """Open connections per (thread, scheme, host, port), closed together when the batch ends."""

    def __init__(self) -> None:
        self._connections: dict[tuple, http.client.HTTPConnection] = {}
        self._lock = threading.Lock()

    def take(self, scheme: str, host: str, port: int, timeout: float, context: ssl.SSLContext):
        key = (threading.get_ident(), scheme, host, port)
        with self._lock:
            found = self._connections.pop(key, None)
        return found or _new_connection(scheme, host, port, timeout, context)

    def give_back(self, scheme: str, host: str, port: int, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._connections[(threading.get_ident(), scheme, host, port)] = connection

    def close(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            connection.close()


def _new_connection(scheme: str, host: str, port: int, timeout: float, context: ssl.SSLContext):
    if scheme == "https":
        return _HTTPSConnection(host, port, timeout=timeout, context=context)
    return _HTTPConnection(host, port, timeout=timeout)


def _get(url: str, timeout: float, context: ssl.SSLContext, pool: _Pool | None) -> tuple[int, str, bytes, str]:
    """(status, content type, body up to MAX_PAGE_BYTES + 1, final URL) of a GET, redirects followed."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url[:80]}: not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        connection = (
            pool.take(parts.scheme, parts.hostname, port, timeout, context)
            if pool is not None
            else _new_connection(parts.scheme, parts.hostname, port, timeout, context)
        )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", path, headers={"Accept": _ACCEPT, "User-Agent": "envlock"})
            response = connection.getresponse()
            body = response.read(MAX_PAGE_BYTES + 1)
            if response.length or len(body) > MAX_PAGE_BYTES:  # over-long: drop the connection, not read on
                connection.close()
            status, content_type = response.status, response.headers.get("Content-Type", "")
            location = response.headers.get("Location")
        except BaseException:
            connection.close()
            raise
        if pool is not None and not response.will_close and connection.sock is not None:
            pool.give_back(parts.scheme, parts.hostname, port, connection)
        else:
            connection.close()
        if status in (301, 302, 303, 307, 308) and location:
            url = urllib.parse.urljoin(url, location)
            continue
        return status, content_type, body, url
    raise ValueError(f"{url[:80]}: more than {MAX_REDIRECTS} redirects")


class IndexReader:
    """Reads project pages from indexes, once per (index, project); thread-safe."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._pages: dict[tuple[str, str], list[IndexFile] | Exception] = {}
        self._dead: dict[str, str] = {}  # index -> why it is unreachable
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        # Kept-alive connections, only while read_pages runs a batch.
        self._pool: _Pool | None = None

    def project_files(self, index: str, project: str) -> list[IndexFile]:
        key = (index, project)
        with self._lock:
            cached = self._pages.get(key)
            dead = self._dead.get(index)
        if dead is not None:
            raise IndexUnavailable(dead)
        if cached is None:
            try:
                cached = self._fetch(index, project)
            except (IndexUnavailable, NotOnIndex) as exc:
                cached = exc
            with self._lock:
                self._pages[key] = cached
        if isinstance(cached, Exception):
            raise cached
        return cached

    def _fetch(self, index: str, project: str) -> list[IndexFile]:
        page_url = index.rstrip("/") + "/" + project + "/"
        if page_url.startswith("file://"):
            return self._fetch_file(page_url)
        if self._context is None:
            self._context = _ssl_context()
        try:
            status, content_type, body, final_url = _get(page_url, self.timeout, self._context, self._pool)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            why = f"{index} is unreachable ({getattr(exc, 'strerror', None) or exc})"
            with self._lock:
                self._dead[index] = why
            raise IndexUnavailable(why) from None
        if status == 404:
            raise NotOnIndex(f"{index} has no project {project!r}")
        if status != 200:
            raise IndexUnavailable(f"{page_url} answered HTTP {status}")
        if len(body) > MAX_PAGE_BYTES:
            raise IndexUnavailable(f"{page_url}: the answer is larger than {MAX_PAGE_BYTES} bytes")
        text = body.decode("utf-8", errors="replace")
        if "json" in content_type:
            return parse_simple_json(text, final_url)
        return parse_simple_html(text, final_url)

    @staticmethod
    def _fetch_file(page_url: str) -> list[IndexFile]:
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(page_url).path))
        for candidate in (path / "index.html", path):
            if candidate.is_file():
                try:
                    text = candidate.read_text(encoding="utf-8", errors="replace")
                except OSError as exc:
                    raise IndexUnavailable(f"{page_url}: {exc.strerror}") from None
                return parse_simple_html(text, candidate.as_uri())
        raise NotOnIndex(f"{page_url} does not exist")


def read_pages(
    reader: IndexReader, wanted: Iterable[tuple[str, str]], workers: int = WORKERS
) -> dict[tuple[str, str], list[IndexFile] | Exception]:
    """Every (index, project) page in one concurrent batch: files, or the exception that said why not."""
    keys = list(dict.fromkeys(wanted))

    def one(key: tuple[str, str]) -> list[IndexFile] | Exception:
        try:
            return reader.project_files(*key)
        except (IndexUnavailable, NotOnIndex) as exc:
            return exc

    if not keys:
        return {}
    reader._pool = _Pool()
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(keys)))) as pool:
            return dict(zip(keys, pool.map(one, keys), strict=True))
    finally:
        reader._pool.close()
        reader._pool = None
