"""Read ``envlock.lock`` safely (writing: :mod:`envlock.lockfile.write`).

Reading treats the file as hostile (THREATS.md 2.5): Python's ``tomllib``
spends 7 s and 1.5 GB on 40 KB of dotted keys and raises ``RecursionError``
on 2 KB of brackets, so the text is bounded and pre-scanned before it is
parsed, and every failure becomes one ``LockfileError``.  A text in the
narrow subset of TOML that envlock writes (no dotted keys, no nesting) is
read without the general parser and needs no pre-scan
(:func:`parse_canonical_toml`); any other text takes the pre-scan and tomli.
"""

from __future__ import annotations

import operator
import os
import re

from envlock.errors import LockfileError
from envlock.lockfile import checks, codec, identity
from envlock.lockfile import model as m
from envlock.lockfile.fields import compiled_on_first_use
from envlock.paths import pure_path_text
from envlock.records import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import Any


def _toml_parser():
    """The TOML parser, imported on first read (writing a lock, as capture does, needs none)."""
    # tomli is the parser the stdlib's tomllib was copied from; its wheels are
    # compiled with mypyc and parse a 5,000-package lock in 0.09 s instead of
    # 0.32 s (measured on this project's machine), which decides whether
    # `envlock diff` meets its 0.3 s target.
    try:
        import tomli as parser
    except ImportError:  # pragma: no cover - pure-Python fallback
        import tomllib as parser  # type: ignore[no-redef, import-not-found, unused-ignore]
    return parser


MAX_LOCK_BYTES = 8 * 1024 * 1024
MAX_NESTING = 16
MAX_KEY_DOTS_PER_LINE = 32
SUPPORTED_MAJOR = 1


@record
class LoadedLock:
    lock: m.Lock
    warnings: list[str] = field(default_factory=list)


# --- reading ---------------------------------------------------------------------


def read_lock_bytes(path: str | os.PathLike) -> bytes:
    # Named in messages as pathlib would write it (str(Path(path))).
    p = pure_path_text(os.fspath(path))
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_LOCK_BYTES + 1)
    except FileNotFoundError:
        raise LockfileError(f"{p}: no such file", hint="create one with `envlock capture -o envlock.lock`") from None
    except IsADirectoryError:
        raise LockfileError(f"{p}: is a directory, not a lockfile") from None
    except OSError as exc:
        raise LockfileError(f"{p}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_LOCK_BYTES:
        raise LockfileError(
            f"{p}: too large (over {MAX_LOCK_BYTES // (1024 * 1024)} MiB); an envlock lockfile is far smaller",
            hint="check that this is the right file",
        )
    return data


def load_lock(path: str | os.PathLike) -> LoadedLock:
    """Load and fully validate a lockfile from disk."""
    with _named(path):
        return parse_lock(read_lock_bytes(path), source=str(path))


def load_locks(paths: list[str]) -> list[LoadedLock]:
    """Load several lockfiles, one by one in this process.

    The loader remembers the tables it has read and validated, so a lock
    that repeats another's tables (the locks of one cluster, the two sides of
    a diff) costs a fraction of the first: 100 node locks of 108 KiB, 4.5 ms
    each after the first.  Worker processes were measured slower than that:
    each starts with nothing remembered, and pickling a finished lock back
    costs about as much as loading it here (4 ms to pickle, 2 ms to unpickle);
    on this project's 2-core machine the 100-lock diff took 0.74 s one by one
    and 1.06 s with a worker (interleaved, load 1.6).
    """
    return [load_lock(p) for p in paths]


class _named:
    """Prefix a ``LockfileError`` raised inside the block with the file it is about."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, LockfileError) and not exc.message.startswith(self.path):
            raise LockfileError(f"{self.path}: {exc.message}", exc.hint) from None


def parse_lock(data: bytes, source: str = "<lock>") -> LoadedLock:
    """Bytes to a validated lock; any problem is a ``LockfileError``, never another exception."""
    return validate_document(parse_toml_bounded(data), source)


def validate_document(document: dict, source: str = "<lock>") -> LoadedLock:
    """A parsed TOML document to a validated lock (version check, schema, fingerprint)."""
    warnings: list[str] = []
    version = document.get("lock-version")
    if version is None:
        raise LockfileError(
            "not an envlock lockfile: it has no `lock-version` key",
            hint="create one with `envlock capture`, or convert another format with `envlock import`",
        )
    if not isinstance(version, str) or not re.fullmatch(r"[0-9]{1,4}\.[0-9]{1,4}", version):
        raise LockfileError(f'lock-version: {str(version)[:40]!r} is not a version like "1.0"')
    major, minor = (int(part) for part in version.split("."))
    our_major, our_minor = (int(part) for part in m.LOCK_VERSION.split("."))
    if major != SUPPORTED_MAJOR:
        if major > SUPPORTED_MAJOR:
            raise LockfileError(
                f"lock-version {version} was written by a newer envlock; this envlock reads lock-version {SUPPORTED_MAJOR}.x",
                hint="upgrade envlock: pip install -U envlock",
            )
        raise LockfileError(f"lock-version {version} is not supported (this envlock reads {SUPPORTED_MAJOR}.x)")
    # The fingerprint is checked on the document as read (with any fields a
    # newer minor version added): for a file envlock wrote, its canonical JSON
    # is exactly that of the model, and this skips rebuilding it.
    original = document
    if minor > our_minor:
        warnings.append(
            f"lock-version {version} is newer than this envlock's {m.LOCK_VERSION}; fields it does not know are ignored"
        )
        document = _drop_unknown_keys(m.Lock, document)
    lock = checks.validate_lock_data(document)
    if lock.fingerprint is not None and identity.fingerprint_of_data(original) != lock.fingerprint:
        warnings.append(
            f"{source}: its content no longer matches its fingerprint: it was edited after envlock wrote it"
        )
    return LoadedLock(lock, warnings)


def _drop_unknown_keys(cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    specs = {spec.key: spec for spec in codec.field_specs(cls)}
    out = {}
    for key, value in data.items():
        spec = specs.get(key)
        if spec is None:
            continue
        if spec.kind == "model":
            value = _drop_unknown_keys(spec.model, value)
        elif spec.kind == "models" and isinstance(value, list):
            value = [_drop_unknown_keys(spec.model, item) for item in value]
        out[key] = value
    return out


# One token of TOML text, as far as nesting and key dots go: strings (which may
# hold any bracket or dot), comments, and the characters that matter.
_token = compiled_on_first_use(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'  # multi-line basic string (shortest match)
    r"|'''(?:[^']|'(?!''))*'''"  # multi-line literal string
    r'|"(?:[^"\\\n]|\\.)*"'  # basic string, one line
    r"|'[^'\n]*'"  # literal string, one line
    r"|#[^\n]*"  # comment
    r"|[\[\]{}.\n]",
    re.DOTALL,
)


# Unrolled (`"[^"\\]*(?:\\.[^"\\]*)*"`) rather than an alternation per character: twice as fast.
_one_line_string = compiled_on_first_use(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"' + r"|'[^'\n]*'")
_comment = compiled_on_first_use(r"#[^\n]*")
_count_dots = operator.methodcaller("count", ".")
# A table header line once strings are gone: its brackets are not nesting.
_header_line = compiled_on_first_use(r"^[ \t]*\[\[?[^\[\]\n]*\]\]?[ \t]*$", re.MULTILINE)


def prescan_toml(text: str) -> None:
    """Reject nesting and dotted keys deep enough to hurt ``tomllib``.

    The fast path proves safety with whole-text C-level operations: with
    one-line strings and comments removed (line numbers kept), no line has
    more than the allowed dots, and the brackets outside table headers are
    too few to nest past the limit.  A header-looking line is balanced, so
    discounting it hides at most two levels; the bound leaves room for that.
    Anything else (multi-line strings, many inline arrays) takes the exact
    token scan.
    """
    # Cheapest proof first, on the raw text: dots and brackets inside strings
    # and comments are counted too, which can only send a file to a slower path.
    if _max_dots(text)[0] <= MAX_KEY_DOTS_PER_LINE and _bracket_count(_header_line().sub("", text)) <= MAX_NESTING - 2:
        return
    if '"""' not in text and "'''" not in text:
        bare = _comment().sub("", _one_line_string().sub("", text))
        dots, number = _max_dots(bare)
        if dots > MAX_KEY_DOTS_PER_LINE:
            raise LockfileError(
                f"line {number}: more than {MAX_KEY_DOTS_PER_LINE} dotted key parts on one line; an envlock lockfile never has so many"
            )
        if _bracket_count(_header_line().sub("", bare)) <= MAX_NESTING - 2:
            return
    _prescan_tokens(text)


def _max_dots(text: str) -> tuple[int, int]:
    """The most dots on one line, and that line's number (C-level map: ~5 ms for 700 KiB)."""
    counts = list(map(_count_dots, text.split("\n")))
    most = max(counts)
    return most, counts.index(most) + 1


def _bracket_count(text: str) -> int:
    return text.count("[") + text.count("{")


def _prescan_tokens(text: str) -> None:
    depth = 0
    dots = 0
    line = 1
    for match in _token().finditer(text):
        token = match.group()
        first = token[0]
        if first in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise LockfileError(
                    f"line {line}: arrays or tables nested more than {MAX_NESTING} deep; an envlock lockfile never nests so deep"
                )
        elif first in "]}":
            depth = max(0, depth - 1)
        elif first == ".":
            dots += 1
            if dots > MAX_KEY_DOTS_PER_LINE:
                raise LockfileError(
                    f"line {line}: more than {MAX_KEY_DOTS_PER_LINE} dotted key parts on one line; an envlock lockfile never has so many"
                )
        elif first == "\n":
            line += 1
            dots = 0
        elif first in "\"'":
            line += token.count("\n")


def parse_toml_bounded(data: bytes) -> dict:
    """Parse untrusted TOML bytes into a dict, or raise ``LockfileError``."""
    if len(data) > MAX_LOCK_BYTES:
        raise LockfileError(f"too large (over {MAX_LOCK_BYTES // (1024 * 1024)} MiB)")
    if data.startswith(b"\xef\xbb\xbf"):
        raise LockfileError(
            "starts with a UTF-8 byte-order mark (BOM), which TOML does not allow",
            hint="save the file as UTF-8 without BOM",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LockfileError(
            f"line {line}: invalid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="a lockfile is UTF-8 text; was it corrupted or is it a binary file?",
        ) from None
    document = parse_canonical_toml(text)
    if document is not None:
        return document
    prescan_toml(text)
    tomllib = _toml_parser()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockfileError(f"invalid TOML: {exc}") from None
    except (RecursionError, MemoryError, ValueError) as exc:  # belt and braces after the pre-scan
        raise LockfileError(f"cannot be parsed: {type(exc).__name__}") from None


# --- envlock's own output, read without the general parser ------------------------
#
# Nearly every lock that envlock reads was written by envlock
# (envlock/lockfile/toml_writer.py), in a narrow, line-oriented subset of TOML.
# A text entirely in that subset is read here with C-level regular expression
# matches (which prove the shape) and string operations: about a third of
# compiled tomli's time for a 5,000-package lock, and no pre-scan is needed,
# since the subset has neither dotted keys nor nesting.  Anything outside the
# subset, and anything that TOML would reject (a key or table defined twice),
# returns None and goes to the pre-scan and tomli, so every error message
# still comes from there.  tests/unit/test_loader_canonical.py checks that
# this gives exactly what tomli gives, or None.
#
# In the subset, "\n[" starts exactly the header lines (no other line starts
# with "[", and the only value that spans lines, a string array written one
# item a line, has lines that start with spaces or "]"), so splitting the text
# there gives one chunk per table, each proved and read on its own.

_KEY = r"[A-Za-z0-9_-]+"
# A basic string without escapes: TOML takes its characters literally.
_PLAIN_STRING = r'"[^"\\\x00-\x1f\x7f]*"'
# The lines of a table, each after a newline: key = value, a comment, or blank.
_TABLE_LINES = (
    r"(?:\n(?:" + _KEY + " = (?:" + _PLAIN_STRING + r"|true|false|0|[1-9][0-9]{0,17}"
    r"|\[(?:" + _PLAIN_STRING + r"(?:, " + _PLAIN_STRING + r")*)?\]"  # inline array of strings
    r"|\[\n(?:    " + _PLAIN_STRING + r",\n)+\])"  # one string a line
    r"|#[^\x00-\x08\x0a-\x1f\x7f]*"  # comment
    r"|))*"
)
# A chunk after "\n[": the rest of its header line ([table], [table.sub] or
# [[table.array]]), then its lines.
_CHUNK = re.compile(r"(?:" + _KEY + r"(?:\." + _KEY + r")?\]|\[" + _KEY + r"\." + _KEY + r"\]\])" + _TABLE_LINES)
_PRELUDE = re.compile(_TABLE_LINES)


# Tables already read, by the text of their chunk: (header, table).  The
# locks of one diff repeat most of their tables word for word (the two locks
# of a diff share most packages, a cluster's locks their 738 OS packages),
# and a chunk proved and read once needs neither again.  Only tables of
# scalars are kept (handed out as copies, so no caller can change one kept
# here), and at most _TABLES_MAX of them.
_TABLES_MAX = 1 << 16
_tables_read: dict[str, tuple[str, dict]] = {}


def clear_memos() -> None:
    """Forget the tables read and the records validated so far (for measurements and tests of a first load)."""
    _tables_read.clear()
    codec.clear_memos()


def parse_canonical_toml(text: str) -> dict | None:
    """The document of a text in the subset of TOML that envlock writes, or None for any other text."""
    if not text:
        return {}
    if text[-1] != "\n":
        return None
    prelude, *chunks = ("\n" + text[:-1]).split("\n[")
    root: dict = {}
    if _PRELUDE.fullmatch(prelude) is None or not _read_table_lines(prelude, root):
        return None
    # Arrays made by [[...]] headers (only those may be appended to), by identity.
    table_arrays: set[int] = set()
    # The header of the array of tables the last table went to: the same
    # header again appends to the same array (most headers are such repeats).
    repeated = None
    tables: list = []
    for chunk in chunks:
        known = _tables_read.get(chunk)
        if known is not None:
            header, table = known
            table = table.copy()
        else:
            if _CHUNK.fullmatch(chunk) is None:
                return None
            header, _, lines = chunk.partition("\n")
            table = {}
            if not _read_table_lines(lines, table):
                return None
            if len(_tables_read) < _TABLES_MAX and " = [" not in lines:
                _tables_read[chunk] = (header, table.copy())
        if header == repeated:
            tables.append(table)
            continue
        repeated = None
        array = header[0] == "["
        name = header[1:-2] if array else header[:-1]
        parent_name, dot, name = name.rpartition(".")
        parent: Any = root
        if dot:
            # The parent table may be created implicitly here, as TOML allows.
            parent = root.get(parent_name)
            if parent is None:
                parent = root[parent_name] = {}
            elif type(parent) is not dict:
                return None
        if array:
            tables = parent.get(name)
            if tables is None:
                tables = parent[name] = []
                table_arrays.add(id(tables))
            elif id(tables) not in table_arrays:
                return None
            tables.append(table)
            repeated = header
        elif name in parent:
            # Defined before, explicitly or implicitly: tomli decides.
            return None
        else:
            parent[name] = table
    return root


def _read_table_lines(text: str, table: dict) -> bool:
    """Add the key/value lines of one table (comments and blank lines among them) to ``table``.

    False when a key is defined twice, which TOML does not allow.
    """
    lines = iter(text.split("\n"))
    for line in lines:
        if not line or line[0] == "#":
            continue
        key, _, raw = line.partition(" = ")
        if key in table:
            return False
        first = raw[0]
        if first == '"':
            table[key] = raw[1:-1]
        elif first == "t":
            table[key] = True
        elif first == "f":
            table[key] = False
        elif first != "[":
            table[key] = int(raw)
        elif raw == "[":
            items = []
            for item in lines:
                if item == "]":
                    break
                items.append(item[5:-2])  # '    "value",'
            table[key] = items
        elif raw == "[]":
            table[key] = []
        else:
            table[key] = raw[2:-2].split('", "')
    return True
