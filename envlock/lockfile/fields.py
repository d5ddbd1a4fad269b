"""Field checks for lockfile values.

A lockfile is untrusted input (it may come with a stranger's paper), so every
string is checked against the narrowest charset that its field allows before
anything else in envlock sees it.  Each check returns an error message or
``None``; the loader attaches the field path.
"""

from __future__ import annotations

import re
import unicodedata

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable
    from typing import AnyStr

    Check = Callable[[str], "str | None"]

MAX_TEXT = 1024
MAX_LONG_TEXT = 8192


def compiled_on_first_use(regex: AnyStr, flags: int = 0) -> Callable[[], re.Pattern[AnyStr]]:
    """A getter for ``re.compile(regex)`` that compiles on the first call.

    Compiling is done in Python and costs about 0.3 ms a pattern; this module
    and the model declare some twenty, and a command uses a few of them, so
    compiling them all at import cost 5 ms of every command's start.
    """
    compiled: re.Pattern[AnyStr] | None = None

    def get() -> re.Pattern[AnyStr]:
        nonlocal compiled
        if compiled is None:
            compiled = re.compile(regex, flags)
        return compiled

    return get


# Characters that could change how a value is displayed or parsed: C0/C1
# controls (NUL, CR, LF, ESC ...), line/paragraph separators, bidi controls and
# zero-width characters (THREATS.md A9, H3).
_forbidden_chars = compiled_on_first_use(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def _forbidden(value: str) -> str | None:
    match = _forbidden_chars().search(value)
    if match:
        return f"contains the control character U+{ord(match.group()):04X}; remove it"
    return None


def text(value: str) -> str | None:
    """Free text shown to people (a GPU name, a CPU model): printable, one line."""
    if len(value) > MAX_TEXT:
        return f"is {len(value)} characters long; at most {MAX_TEXT} are allowed"
    return _forbidden(value)


def long_text(value: str) -> str | None:
    if len(value) > MAX_LONG_TEXT:
        return f"is {len(value)} characters long; at most {MAX_LONG_TEXT} are allowed"
    return _forbidden(value)


def pattern(regex: str, what: str, max_len: int = 256) -> Check:
    compiled = compiled_on_first_use(regex)

    def check(value: str) -> str | None:
        if len(value) > max_len:
            return f"is {len(value)} characters long; at most {max_len} are allowed"
        if not compiled().fullmatch(value):
            shown = value if len(value) <= 60 else value[:57] + "..."
            return f"{shown!r} is not a valid {what}"
        return None

    check.__name__ = f"check_{what.replace(' ', '_')}"
    return check


def one_of(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        if value not in allowed:
            return f"{value[:60]!r} is not one of: {', '.join(allowed)}"
        return None

    return check


# PEP 508 distribution names (before normalisation; capture writes them normalised).
python_name = pattern(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", "Python distribution name", 200)
# Versions as stored: a safe charset (PEP 440 is enforced where a version is
# used to install, so a legacy version can still be recorded and reported).
version = pattern(r"[A-Za-z0-9](?:[A-Za-z0-9.+!_~:-]*[A-Za-z0-9_+])?", "version", 128)
# Debian policy: [epoch:]upstream[-revision]; rpm and apk versions fit the same charset.
os_package_name = pattern(r"[A-Za-z0-9][A-Za-z0-9+._-]*", "OS package name", 200)
os_version = pattern(r"[A-Za-z0-9][A-Za-z0-9.+~:_-]*", "OS package version", 200)
conda_name = pattern(r"[A-Za-z0-9_][A-Za-z0-9._-]*", "conda package name", 200)
conda_build = pattern(r"[A-Za-z0-9_.+]*", "conda build string", 200)
token = pattern(r"[A-Za-z0-9][A-Za-z0-9._+-]*", "identifier", 128)
arch_name = pattern(r"(?:sm|compute)_[0-9]{2,3}[af]?", "CUDA architecture (sm_XX or compute_XX)", 16)
compute_capability = pattern(r"[0-9]{1,2}\.[0-9]{1,2}", "compute capability (major.minor)", 8)
sha256 = pattern(r"sha256:[0-9a-f]{64}", "sha256 hash (sha256:<64 lowercase hex>)", 80)
hex_digest = pattern(r"[0-9a-f]{32,128}", "hex digest", 128)
md5 = pattern(r"[0-9a-f]{32}", "md5 hex digest", 32)
git_commit = pattern(r"[0-9a-f]{40}|[0-9a-f]{64}", "full git commit hash (40 or 64 hex digits)", 64)
# A distribution file's name (wheel or sdist): no path separator or shell-significant character.
dist_filename = pattern(r"[A-Za-z0-9][A-Za-z0-9._+!-]{0,250}", "distribution file name", 251)
# PEP 427 build tag: starts with a digit.
build_tag = pattern(r"[0-9][A-Za-z0-9_.]*", "wheel build tag (a digit, then letters, digits, _ or .)", 64)
# One expanded wheel tag, interpreter-abi-platform (``py3-none-any``).
wheel_tag = pattern(r"[a-z0-9_.]+-[a-z0-9_.]+-[a-z0-9_.]+", "wheel tag (interpreter-abi-platform)", 128)
# PEP 691 upload-time: ISO 8601 UTC, optionally with a fraction of a second.
upload_time = pattern(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z",
    "UTC upload time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)",
    32,
)
env_name = pattern(r"[A-Za-z_][A-Za-z0-9_]*", "environment variable name", 128)
timestamp = pattern(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", "UTC timestamp (YYYY-MM-DDTHH:MM:SSZ)", 20
)

_url = compiled_on_first_use(
    r"(?:https?|file|git\+https|git\+ssh|git\+http|git\+file|hg\+https|svn\+https|ssh)://[^\s\"'`$\\<>{}|^]*"
)


def url(value: str) -> str | None:
    """A URL as recorded: known scheme, no whitespace, quotes, ``$``, backslashes or credentials."""
    if len(value) > 2048:
        return f"is {len(value)} characters long; at most 2048 are allowed"
    problem = _forbidden(value)
    if problem:
        return problem
    if not _url().fullmatch(value):
        return (
            f"{value[:80]!r} is not an allowed URL (https://, http://, file:// or git+https://, no spaces, quotes or $)"
        )
    rest = value.split("://", 1)[1]
    authority = rest.split("/", 1)[0]
    if "@" in authority and not value.startswith(("git+ssh://", "ssh://")):
        return "carries credentials (user@ or user:password@); remove them"
    if ":" in authority.split("@")[-1] and "@" in authority:
        return "carries credentials; remove them"
    if authority.split("@")[-1].startswith("-"):
        # ssh://-oProxyCommand=... is read as an option by ssh/git (CVE-2017-1000117).
        return "has a host that starts with '-'"
    if _encoded_unsafe().search(value):
        return "has a percent-encoded dot, slash, backslash or control character; write the URL plainly"
    return None


# Percent-encoded '.', '/', '\\' and controls: the shapes of double-decoding path traversal (THREATS.md C8).
_encoded_unsafe = compiled_on_first_use(r"%(?:2e|2f|5c|[01][0-9a-f]|7f)", re.IGNORECASE)


def relative_path(value: str) -> str | None:
    """A path inside an archive or project (PEP 610 ``subdirectory``): relative, no ``..`` (THREATS.md C10)."""
    problem = path_text(value)
    if problem:
        return problem
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "~")) or ".." in parts:
        return f"{value[:60]!r} must be a relative path without '..'"
    return None


# Named like the pattern() checks, so docs/lockfile.md describes it in words.
relative_path.__name__ = "check_relative_path_without_.."


def path_text(value: str) -> str | None:
    """A recorded location: a path (home written as ``~``) or a package-relative path."""
    problem = text(value)
    if problem:
        return problem
    if value.startswith("-"):
        return "must not start with '-'"
    return None


def nfc(value: str) -> str | None:
    if unicodedata.normalize("NFC", value) != value:
        return "is not in Unicode NFC form"
    return None
