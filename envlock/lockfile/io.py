"""Read ``envlock.lock`` safely (writing: :mod:`envlock.lockfile.write`).

Reading treats the file as hostile (THREATS.md 2.5): Python's ``tomllib``
spends 7 s and 1.5 GB on 40 KB of dotted keys and raises ``RecursionError``
on 2 KB of brackets, so the text is bounded and pre-scanned before it is
parsed, and every failure becomes one ``LockfileError``.
"""

from __future__ import annotations

import operator
import os
import re
from pathlib import Path

from envlock.errors import LockfileError
from envlock.lockfile import codec
from envlock.lockfile import model as m
from envlock.records import field, record


def _toml_parser():
    """The TOML parser, imported on first read (writing a lock, as capture does, needs none)."""
    # tomli is the parser the stdlib's tomllib was copied from; its wheels are
    # compiled with mypyc and parse a 5,000-package lock in 0.09 s instead of
    # 0.32 s (measured on this project's machine), which decides whether
    # `envlock diff` meets its 0.3 s target.
    try:
        import tomli as parser
    except ImportError:  # pragma: no cover - pure-Python fallback
        import tomllib as parser
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
    p = Path(path)
    try:
        with p.open("rb") as fh:
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


# Below this many locks, starting workers and pickling locks back costs more
# than it saves (2 locks of 5,000 packages: 0.23 s one by one, 0.29-0.53 s
# with a worker on this project's 2-core machine; 100 node locks: 3.1 s vs 2.3 s).
PARALLEL_MIN_LOCKS = 8


def load_locks(paths: list[str]) -> list[LoadedLock]:
    """Load several lockfiles, on all cores when there is more than one to load.

    Loading is CPU-bound (a 100 KiB lock: about 20 ms, most of it parsing and
    validating), and an N-way diff of a cluster's locks is a one-shot command
    on a machine whose other cores are usually idle.  Each worker runs ``load_lock`` itself,
    so results, warnings and errors are exactly those of loading one by one;
    the finished locks come back pickled (about 4 ms for a 100 KiB lock).
    """
    paths = [str(p) for p in paths]
    cores = os.cpu_count() or 1
    if len(paths) < PARALLEL_MIN_LOCKS or cores < 2 or not _can_fork():
        return [load_lock(p) for p in paths]
    import multiprocessing

    # This process loads every ``cores``-th lock itself while cores - 1
    # workers load the others: no core waits, and only the workers' locks
    # are pickled back.
    mine = set(range(0, len(paths), cores))
    theirs = [i for i in range(len(paths)) if i not in mine]
    results: list[LoadedLock | None] = [None] * len(paths)
    with multiprocessing.get_context("fork").Pool(min(cores - 1, len(theirs))) as pool:
        pending = pool.map_async(_load_in_worker, [paths[i] for i in theirs], chunksize=max(1, len(theirs) // (4 * cores)))
        first_error: LockfileError | None = None
        for i in sorted(mine):
            try:
                results[i] = load_lock(paths[i])
            except LockfileError as exc:
                first_error = first_error or exc
                break
        outcomes = pending.get()
    errors = {i: outcome for i, outcome in zip(theirs, outcomes) if outcome[0] == "error"}
    for i, outcome in zip(theirs, outcomes):
        if outcome[0] == "ok":
            results[i] = outcome[1]
    # Report the first failing file in argument order, as loading one by one would.
    for i, loaded in enumerate(results):
        if i in errors:
            raise LockfileError(errors[i][1], errors[i][2])
        if loaded is None and first_error is not None:
            raise first_error
    return results  # type: ignore[return-value]


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _load_in_worker(path: str) -> tuple[str, object, str | None]:
    try:
        return ("ok", load_lock(path), None)
    except LockfileError as exc:
        return ("error", exc.message, exc.hint)


class _named:
    """Prefix a ``LockfileError`` raised inside the block with the file it is about."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, LockfileError) and not exc.message.startswith(self.path):
            raise LockfileError(f"{self.path}: {exc.message}", exc.hint) from None
        return False


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
        raise LockfileError(f"lock-version: {str(version)[:40]!r} is not a version like \"1.0\"")
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
    lock = codec.validate_lock_data(document)
    if lock.fingerprint is not None and codec.fingerprint_of_data(original) != lock.fingerprint:
        warnings.append(
            f"{source}: its content no longer matches its fingerprint: it was edited after envlock wrote it"
        )
    return LoadedLock(lock, warnings)


def _drop_unknown_keys(cls: type, data: object) -> object:
    if not isinstance(data, dict):
        return data
    specs = {spec.key: spec for spec in codec._specs(cls)}
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
_TOKEN = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'  # multi-line basic string (shortest match)
    r"|'''(?:[^']|'(?!''))*'''"  # multi-line literal string
    r'|"(?:[^"\\\n]|\\.)*"'  # basic string, one line
    r"|'[^'\n]*'"  # literal string, one line
    r"|#[^\n]*"  # comment
    r"|[\[\]{}.\n]",
    re.DOTALL,
)


# Unrolled (`"[^"\\]*(?:\\.[^"\\]*)*"`) rather than an alternation per character: twice as fast.
_ONE_LINE_STRING = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"' + r"|'[^'\n]*'")
_COMMENT = re.compile(r"#[^\n]*")
_count_dots = operator.methodcaller("count", ".")
# A table header line once strings are gone: its brackets are not nesting.
_HEADER_LINE = re.compile(r"^[ \t]*\[\[?[^\[\]\n]*\]\]?[ \t]*$", re.MULTILINE)


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
    if _max_dots(text)[0] <= MAX_KEY_DOTS_PER_LINE and _bracket_count(_HEADER_LINE.sub("", text)) <= MAX_NESTING - 2:
        return
    if '"""' not in text and "'''" not in text:
        bare = _COMMENT.sub("", _ONE_LINE_STRING.sub("", text))
        dots, number = _max_dots(bare)
        if dots > MAX_KEY_DOTS_PER_LINE:
            raise LockfileError(
                f"line {number}: more than {MAX_KEY_DOTS_PER_LINE} dotted key parts on one line; an envlock lockfile never has so many"
            )
        if _bracket_count(_HEADER_LINE.sub("", bare)) <= MAX_NESTING - 2:
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
    for match in _TOKEN.finditer(text):
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
    prescan_toml(text)
    tomllib = _toml_parser()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockfileError(f"invalid TOML: {exc}") from None
    except (RecursionError, MemoryError, ValueError) as exc:  # belt and braces after the pre-scan
        raise LockfileError(f"cannot be parsed: {type(exc).__name__}") from None
