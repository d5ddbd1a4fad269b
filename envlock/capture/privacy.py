"""Keep a lockfile publishable: no home paths, user names, host names or credentials.

Every string that a probe takes from the machine and that could carry such a
thing (paths, URLs, warnings, env values) passes through ``scrub_text`` or
``strip_url_credentials``.  ``scrub_text`` also escapes the control, bidi and
zero-width characters that the lockfile loader rejects, so a strange file name
on the machine can never make a written lock unloadable.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

from envlock.lockfile.fields import _forbidden_chars, compiled_on_first_use


@lru_cache(maxsize=1)
def _private_words() -> tuple[tuple[str, str], ...]:
    """(text, replacement) pairs, longest first: home directory, then host and user names."""
    pairs: list[tuple[str, str]] = []
    home = os.path.expanduser("~")
    if home and home not in ("/", "~"):
        pairs.append((home.rstrip("/"), "~"))
        real_home = os.path.realpath(home)
        if real_home != home.rstrip("/") and real_home != "/":
            pairs.append((real_home, "~"))  # /home -> /data/home symlinks: both spellings
    for name in {os.environ.get("USER"), os.environ.get("LOGNAME"), _login_name()}:
        if name and len(name) >= 3 and name not in ("root",):
            pairs.append((f"/home/{name}", "~"))
            pairs.append((f"/Users/{name}", "~"))
    host = _host_name()
    # Host names shorter than 3 characters ("vm") would replace parts of
    # ordinary words; they identify nobody anyway.
    if host and len(host) >= 3 and host not in ("localhost",):
        pairs.append((host, "<host>"))
        short = host.split(".")[0]
        if short != host and len(short) >= 3:
            pairs.append((short, "<host>"))
    return tuple(sorted(set(pairs), key=lambda p: (-len(p[0]), p[0])))


def _host_name() -> str:
    # os.uname() answers without importing socket (4 ms of capture's start-up).
    try:
        return os.uname().nodename
    except AttributeError:  # pragma: no cover - not on POSIX
        import socket

        return socket.gethostname()


def _login_name() -> str | None:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError, OSError):
        return None


def reset_cache() -> None:
    """Forget the cached names (tests change HOME and the host name)."""
    _private_words.cache_clear()


def _escape_forbidden(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def scrub_text(text: str) -> str:
    """``text`` with home/host/user names replaced and unloadable characters escaped."""
    for word, replacement in _private_words():
        if word in text:
            text = text.replace(word, replacement)
    forbidden = _forbidden_chars()
    if forbidden.search(text):
        text = forbidden.sub(_escape_forbidden, text)
    return text


def shown(value: object, limit: int = 80) -> str:
    """An untrusted value quoted for a warning: ASCII-escaped, private words scrubbed, shortened."""
    text = ascii(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return scrub_text(text)


_userinfo = compiled_on_first_use(r"(?<=://)[^/@\s]+@")
# Secrets that ride in query strings (signed URLs, tokens).
_secret_query = compiled_on_first_use(r"(?i)(token|key|secret|password|passwd|sig|auth|credential)")
# SSH URLs name the account that the server expects; ``git`` is the shared
# account of every forge and says nothing about the person.
_SSH_SCHEMES = ("ssh", "git+ssh")


def strip_url_credentials(url: str) -> str:
    """``https://user:token@host/x`` → ``https://host/x``; also drops secret-looking queries and ``/t/<token>/``."""
    try:
        from urllib.parse import urlsplit  # lazy: urllib.parse pulls in ipaddress

        parts = urlsplit(url)
    except ValueError:
        return _userinfo().sub("", url)
    path = parts.path
    if path.startswith("/t/"):  # conda's token-in-path form: https://host/t/<token>/channel/...
        path = "/" + path[3:].partition("/")[2]
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = hostport
    if at and parts.scheme in _SSH_SCHEMES and userinfo == "git":
        netloc = f"git@{hostport}"
    query = "" if _secret_query().search(parts.query) else parts.query
    from urllib.parse import urlunsplit

    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


_scp_like = compiled_on_first_use(r"(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>(?!//)[^\s]*)")


def normalize_remote_url(remote: str) -> str:
    """A git remote as a URL: scp-like ``git@host:org/repo`` becomes ``ssh://git@host/org/repo``,
    a local path becomes ``file://`` (home written as ``~``), credentials removed."""
    remote = remote.strip()
    if "://" not in remote:
        scp = _scp_like().fullmatch(remote)
        if scp and not remote.startswith(("/", ".", "~")):
            user = scp.group("user")
            prefix = f"{user}@" if user else ""
            remote = f"ssh://{prefix}{scp.group('host')}/{scp.group('path').lstrip('/')}"
        else:
            remote = "file://" + os.path.abspath(os.path.expanduser(remote))
    return scrub_text(strip_url_credentials(remote))


# Any person's home directory, wherever the file was written: /home/NAME, /Users/NAME, C:\\Users\\NAME.
# The drive letter must not follow a letter, or "file:///Users/x" would read as drive "e:".
_any_home = compiled_on_first_use(
    r"/home/[^/\\s'\"]+|/Users/[^/\\s'\"]+|(?<![A-Za-z0-9])[A-Za-z]:[\\/]+(?:Users|Documents and Settings)[\\/]+[^\\/\\s'\"]+",
    re.IGNORECASE,
)


def scrub_home_paths(text: str) -> str:
    """Every home directory in a path taken from another machine's file becomes ``~``."""
    return _any_home().sub("~", text)


def private_url(url: str) -> str:
    """A URL fit for a lock: credentials and secret queries removed; for a ``file:`` URL, a home
    directory in its path becomes ``~`` (``file:///home/ann/x`` -> ``file://~/x``,
    ``file:///C:/Users/ann/x`` -> ``file://~/x``).  Other URLs keep their paths: ``/home/`` on a
    web server is not anyone's home, and rewriting it would break the URL."""
    url = strip_url_credentials(url)
    if not url.lower().startswith("file:"):
        return scrub_text(url)
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path
    if re.match(r"^/[A-Za-z]:[\\/]", path):
        path = path[1:]  # file:///C:/x: the drive, not a root directory
    path = scrub_text(scrub_home_paths(path)).replace("\\", "/")
    if path.startswith("~"):
        return "file://" + path
    return "file://" + (path if path.startswith("/") else "/" + path)
