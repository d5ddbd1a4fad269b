"""Keep a lockfile publishable: no home paths, user names, host names or credentials.

Every string that a probe takes from the machine and that could carry such a
thing (paths, URLs, warnings, env values) passes through ``scrub_text`` or
``strip_url_credentials``.
"""

from __future__ import annotations

import os
import re
import socket
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit


@lru_cache(maxsize=1)
def _private_words() -> tuple[tuple[str, str], ...]:
    """(text, replacement) pairs, longest first: home directory, then host and user names."""
    pairs: list[tuple[str, str]] = []
    home = os.path.expanduser("~")
    if home and home not in ("/", "~"):
        pairs.append((home.rstrip("/"), "~"))
    for name in {os.environ.get("USER"), os.environ.get("LOGNAME"), _login_name()}:
        if name and len(name) >= 3 and name not in ("root",):
            pairs.append((f"/home/{name}", "~"))
    host = socket.gethostname()
    if host and len(host) >= 3 and host not in ("localhost",):
        pairs.append((host, "<host>"))
        short = host.split(".")[0]
        if short != host and len(short) >= 3:
            pairs.append((short, "<host>"))
    return tuple(sorted(pairs, key=lambda p: -len(p[0])))


def _login_name() -> str | None:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError, OSError):
        return None


def reset_cache() -> None:
    """Forget the cached names (tests change HOME and the host name)."""
    _private_words.cache_clear()


def scrub_text(text: str) -> str:
    for word, replacement in _private_words():
        text = text.replace(word, replacement)
    return text


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def strip_url_credentials(url: str) -> str:
    """``https://user:token@host/x`` → ``https://host/x``; also drops ``?token=``-style queries."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub("", url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = "" if re.search(r"(?i)(token|key|secret|password|sig|auth)", parts.query) else parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
