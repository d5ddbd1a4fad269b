"""How every importer reads its input and becomes a partial ``Lock``.

The dispatch table ``FORMATS`` maps a format name to the module that parses
it.  Each module has one pure function ``parse(text, ctx) -> dict`` that
returns lock sections (``python=...``, ``nvidia=...``); a section the format
does not carry is simply absent, so the lock records it as unknown.

Input from another tool is untrusted like a lockfile (THREATS.md): it is
bounded (``MAX_IMPORT_BYTES``), must be text, and every value passes the lock
model's own field checks before it is kept.  A value that fails a check costs
only its item, with a warning naming the line; input that is not the format
at all (binary, truncated, another file) is a ``FormatError`` naming the line
that failed.  Nothing host-identifying is copied: home directories become
``~`` and UUIDs, serials and bus ids are never read.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from envlock.errors import FormatError
from envlock.records import field, record

# 16 MiB: the largest real input in the test corpus is a 185 KB conda-lock.yml
# and a 73 KB `nvidia-smi -q` of 8 GPUs; a pip freeze of 5,000 packages is
# ~150 KB.  Anything far larger is not one of these formats.
MAX_IMPORT_BYTES = 16 * 1024 * 1024
# A lock keeps at most this many per-item warnings; the rest are counted.
MAX_WARNINGS = 200


@record
class ImportFormat:
    name: str
    module: str
    summary: str


FORMATS: dict[str, ImportFormat] = {
    f.name: f
    for f in (
        ImportFormat("pip-freeze", "envlock.formats.pip_freeze", "`pip freeze` output or a pinned requirements.txt"),
        ImportFormat("pylock", "envlock.formats.pylock_import", "a PEP 751 pylock.toml (pip lock, uv export)"),
        ImportFormat(
            "conda-explicit",
            "envlock.formats.conda_explicit",
            "`conda list --explicit [--md5]` or a rendered conda-lock .lock",
        ),
        ImportFormat("conda-env", "envlock.formats.conda_env", "`conda env export` YAML, with its pip: subsection"),
        ImportFormat(
            "conda-lock",
            "envlock.formats.conda_lock_import",
            "a conda-lock.yml (unified lockfile, conda and pip packages)",
        ),
        ImportFormat("collect-env", "envlock.formats.collect_env", "the text of `python -m torch.utils.collect_env`"),
        ImportFormat("nvidia-smi", "envlock.formats.nvidia_smi", "`nvidia-smi` table output or `nvidia-smi -q`"),
        ImportFormat(
            "nvidia-smi-csv", "envlock.formats.nvidia_smi_csv", "`nvidia-smi --query-gpu=name,... --format=csv`"
        ),
        ImportFormat("rocm-smi", "envlock.formats.rocm_smi", "`rocm-smi` (--showproductname, --json, the table)"),
        ImportFormat("nvcc", "envlock.formats.nvcc_version", "`nvcc --version`"),
        ImportFormat("uv-lock", "envlock.formats.uv_lock", "a uv.lock"),
        ImportFormat("poetry-lock", "envlock.formats.poetry_lock", "a poetry.lock"),
        ImportFormat("pipfile-lock", "envlock.formats.pipfile_lock", "a Pipfile.lock"),
        ImportFormat("pixi-lock", "envlock.formats.pixi_lock", "a pixi.lock (one environment and platform)"),
        ImportFormat("pip-list-json", "envlock.formats.pip_json:parse_list", "`pip list --format=json`"),
        ImportFormat("pip-inspect", "envlock.formats.pip_json:parse_inspect", "`pip inspect`"),
        ImportFormat("conda-list", "envlock.formats.conda_list", "the table `conda list` prints"),
    )
}
# Formats whose files cover several platforms, one of which is imported.
PLATFORM_FORMATS = ("conda-lock", "pixi-lock")
# Not a format: ``envlock import FILE`` (or ``auto``) tells the format from the content.
AUTO = "auto"


# --- the context every parser writes its warnings to --------------------------------


@record(frozen=False)
class ImportContext:
    """What a parser needs besides the text: where it came from, options, and a place for warnings."""

    source: str
    format: str
    platform: str | None = None  # conda-lock: which platform's packages to take
    warnings: list[str] = field(default_factory=list)
    dropped_warnings: int = 0
    guessed: str | None = None  # how the format was chosen when it was not named
    failed_line: int | None = None  # the line the last ``fail`` named

    def warn(self, message: str, line: int | None = None) -> None:
        if len(self.warnings) >= MAX_WARNINGS:
            self.dropped_warnings += 1
            return
        prefix = f"line {line}: " if line is not None else ""
        self.warnings.append(prefix + message)

    def fail(self, message: str, line: int | None = None, hint: str | None = None) -> FormatError:
        """A ``FormatError`` naming the file and line (raise it)."""
        self.failed_line = line
        where = f"{self.source}, line {line}" if line is not None else self.source
        return FormatError(f"{where}: {message}", hint=hint or f"is this really {_article(self.format)} file?")


def _article(fmt: str) -> str:
    return f"a `{fmt}`"


# --- reading ------------------------------------------------------------------------------


def read_input(path: str) -> bytes:
    """The bytes of ``path`` (``-`` is stdin), at most ``MAX_IMPORT_BYTES``."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1)
        else:
            with open(path, "rb") as fh:
                data = fh.read(MAX_IMPORT_BYTES + 1)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: is a directory, not a file to import") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_IMPORT_BYTES:
        raise FormatError(
            f"{path}: too large (over {MAX_IMPORT_BYTES // (1024 * 1024)} MiB); none of the importable formats is anywhere near that size",
            hint="check that this is the right file",
        )
    return data


def decode_text(data: bytes, ctx: ImportContext) -> str:
    """Bytes to text, or a ``FormatError`` naming the line of the first byte that is not text.

    UTF-8 (with or without BOM) and BOM-marked UTF-16 are accepted: Windows
    PowerShell 5 writes ``python -m torch.utils.collect_env > env.txt`` as
    UTF-16LE with a BOM.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ctx.fail(f"invalid UTF-16 at byte {exc.start}", hint="save the file as UTF-8") from None
    else:
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ctx.fail(
                f"invalid UTF-8 (byte 0x{data[exc.start]:02x}); this is not a text file",
                line,
                hint="import the text output of the tool, saved as UTF-8",
            ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise ctx.fail(
            "contains NUL bytes; this is a binary file, not text",
            text.count("\n", 0, nul) + 1,
            hint="import the text output of the tool, saved as UTF-8",
        )
    return text


def split_lines(text: str, ctx: ImportContext) -> list[str]:
    """Lines without their ends; CRLF is accepted, a bare CR inside a line is not.

    A bare CR is how a requirement line can hide a second line from a reader
    (the pipenv CVE-2022-21668 shape), so it is refused rather than guessed at.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for number, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
        if "\r" in line:
            raise ctx.fail("carriage return (CR) inside a line", number, hint="save the file with LF or CRLF line ends")
        out.append(line)
    return out


# --- privacy and display ------------------------------------------------------------------

_UUID = re.compile(r"(?:GPU-|MIG-)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def scrub(text: str) -> str:
    """Remove what could identify a person or machine from a value taken from another machine's file.

    Any home directory (``/home/NAME``, ``/Users/NAME``, ``C:\\Users\\NAME``)
    becomes ``~``; UUIDs become ``<uuid>``; then this machine's own home and
    host names go too (the file may have been written here).
    """
    from envlock.capture.privacy import scrub_home_paths, scrub_text

    text = scrub_home_paths(text)
    text = _UUID.sub("<uuid>", text)
    return scrub_text(text)


def shown(value: str, limit: int = 80) -> str:
    """A value quoted for a message: one line, control characters escaped, clipped, scrubbed."""
    text = scrub(value)
    text = _UNPRINTABLE.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"'{text}'"


# --- building model objects through the lock's own field checks --------------------------

T = TypeVar("T")


def checked(cls: type[T], values: dict[str, Any], where: str, ctx: ImportContext, line: int | None = None) -> T | None:
    """``cls(**values)`` with every value put through the lock model's field check.

    ``None`` values are left unknown.  A required field (a name, a version)
    that fails costs the whole item (``None`` is returned, with a warning); an
    optional field that fails is left unknown, with a warning.
    """
    from envlock.lockfile import codec
    from envlock.lockfile import fields as chk

    specs = {spec.attr: spec for spec in codec.field_specs(cls)}
    kwargs: dict[str, Any] = {}
    for attr, value in values.items():
        if value is None:
            continue
        spec = specs[attr]
        problem = None
        if isinstance(value, str):
            value = str(value)  # a YamlStr becomes a plain string
        if spec.kind == "str":
            problem = (spec.check or chk.text)(value) if isinstance(value, str) else "is not text"
        elif spec.kind == "strs":
            for item in value:
                problem = (spec.check or chk.text)(item)
                if problem:
                    break
        elif spec.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= codec.MAX_INT:
                problem = f"{value!r} is not a whole number in range"
        if problem:
            if spec.required:
                ctx.warn(f"{where}: skipped: {spec.key} {problem}", line)
                return None
            ctx.warn(f"{where}: {spec.key} left unknown: {problem}", line)
            continue
        kwargs[attr] = value
    for spec in specs.values():
        if spec.required and spec.attr not in kwargs:
            ctx.warn(f"{where}: skipped: no {spec.key}", line)
            return None
    return cls(**kwargs)


def unique(items: Iterable[T], key: Callable[[T], Any], ctx: ImportContext, what: str) -> tuple[T, ...]:
    """Keep the first item for each key; later ones are dropped with a warning (a lock lists each once)."""
    seen: dict[Any, T] = {}
    for item in items:
        k = key(item)
        if k in seen:
            ctx.warn(
                f"{what} {k!s} is listed more than once; kept the first ({_describe(seen[k])}), dropped {_describe(item)}"
            )
            continue
        seen[k] = item
    return tuple(seen.values())


def _describe(item: Any) -> str:
    version = getattr(item, "version", None)
    build = getattr(item, "build", None)
    return " ".join(str(x) for x in (version, build) if x) or "?"


# --- the lock ---------------------------------------------------------------------------------


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_lock(ctx: ImportContext, sections: dict[str, Any]):
    """The partial lock: the sections the format carries, everything else unknown."""
    from envlock import __version__
    from envlock.errors import LockfileError
    from envlock.lockfile import codec, identity
    from envlock.lockfile import model as m
    from envlock.lockfile.checks import validate_lock_data
    from envlock.lockfile.private import strip_private

    warnings = [_clean_warning(w) for w in ctx.warnings]
    if ctx.guessed:
        warnings.insert(0, ctx.guessed)
    if ctx.dropped_warnings:
        warnings.append(f"{ctx.dropped_warnings} more warnings like the ones above were not kept")
    lock = m.Lock(
        created_by=f"envlock {__version__}",
        created_at=utc_now(),
        origin=f"import:{ctx.format}",
        capture_warnings=tuple(warnings),
        **{name: section for name, section in sections.items() if section is not None},
    )
    lock = identity.with_fingerprint(strip_private(lock))
    # The same validation a loaded lockfile gets: an importer must never write
    # a lock that envlock itself would refuse to read.
    try:
        validate_lock_data(codec.to_dict(lock))
    except LockfileError as exc:
        raise FormatError(f"{ctx.source}: the imported lock would not validate: {exc.message}") from None
    return lock


def _clean_warning(message: str) -> str:
    text = _UNPRINTABLE.sub(" ", scrub(message))
    return text if len(text) <= 2000 else text[:1997] + "..."


def parse_text(fmt: str, text: str, ctx: ImportContext) -> dict[str, Any]:
    """Run one format's pure parser over decoded text."""
    module_name, _, function = FORMATS[fmt].module.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, function or "parse")(text, ctx)


def import_bytes(fmt: str, data: bytes, source: str, *, platform: str | None = None):
    """Bytes in a known format (or ``auto``) to a validated partial ``Lock`` (``FormatError`` on bad input)."""
    if fmt not in FORMATS and fmt != AUTO:
        raise FormatError(
            f"unknown import format {fmt!r}",
            hint="one of: " + ", ".join(FORMATS),
        )
    ctx = ImportContext(source=source, format=fmt, platform=platform)
    if len(data) > MAX_IMPORT_BYTES:
        raise FormatError(f"{source}: too large (over {MAX_IMPORT_BYTES // (1024 * 1024)} MiB)")
    text = decode_text(data, ctx)
    from envlock.formats.paste import clean_paste

    text = clean_paste(text, ctx)
    if fmt == AUTO:
        from envlock.formats.guess import guess_format

        guessed = guess_format(text)
        if guessed is None:
            raise FormatError(
                f"{source}: cannot tell which format this is",
                hint="name it: envlock import FORMAT FILE, FORMAT one of " + ", ".join(FORMATS),
            )
        ctx.format, why = guessed
        ctx.guessed = f"read as {ctx.format} (guessed from {why})"
    if platform and ctx.format not in PLATFORM_FORMATS:
        from envlock.errors import UsageError

        raise UsageError(f"--platform applies only to the {' and '.join(PLATFORM_FORMATS)} formats")
    sections = _parse_keeping_what_a_cut_left(text, ctx)
    return build_lock(ctx, sections)


# Formats read line by line, where a paste cut inside its last line leaves every earlier line whole.
LINE_FORMATS = ("pip-freeze", "conda-explicit", "conda-list", "nvidia-smi-csv", "rocm-smi")


def _parse_keeping_what_a_cut_left(text: str, ctx: ImportContext) -> dict[str, Any]:
    """Parse; when a line-based input fails on its last line and that line has no line end (the paste
    stopped inside it), import the lines before it and say that the last one was not read."""
    warnings = list(ctx.warnings)
    try:
        return parse_text(ctx.format, text, ctx)
    except FormatError:
        last = text.count("\n") + 1
        if ctx.format not in LINE_FORMATS or text.endswith("\n") or last < 2 or ctx.failed_line != last:
            raise
    ctx.warnings[:] = warnings
    ctx.warn("the input ends inside this line (cut off?); it is not read, the lines before it are", last)
    return parse_text(ctx.format, text[: text.rfind("\n") + 1], ctx)


def import_file(fmt: str, path: str, *, platform: str | None = None):
    if fmt not in FORMATS and fmt != AUTO:
        raise FormatError(f"unknown import format {fmt!r}", hint="one of: " + ", ".join(FORMATS))
    source = "<stdin>" if path == "-" else scrub(path)
    return import_bytes(fmt, read_input(path), source, platform=platform)


# --- YAML (conda env export, conda-lock.yml) ------------------------------------------------

# Far above the largest real conda-lock.yml seen (185 KB, ~60,000 nodes).
MAX_YAML_NODES = 2_000_000


class YamlMap(dict):
    """A YAML mapping as a dict, remembering the line it starts on."""

    line: int = 0


class YamlList(list):
    line: int = 0


class YamlStr(str):
    """A YAML scalar; ``str(value)`` gives the plain string that goes into a lock."""

    line: int = 0


def load_yaml(text: str, ctx: ImportContext) -> Any:
    """Parse untrusted YAML into dicts, lists and strings (never other types), with line numbers.

    Every scalar stays a string: YAML 1.1 resolution would turn a conda
    version ``1.10`` into the float ``1.1``.  No tags are constructed (the
    base loader builds nothing but str/list/dict).  libyaml refuses nesting
    deeper than 1,000 levels (measured: ``[`` x 1,000 -> "exceeded maximum
    nesting depth"); aliases are refused here, so a billion-laughs document
    cannot expand, and the node count is bounded.
    """
    import yaml

    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # libyaml places an end-of-stream problem one line past a last line without "\n".
        last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
        line = min(mark.line + 1, max(last_line, 1)) if mark is not None else None
        raise ctx.fail(
            f"invalid YAML: {exc.problem or exc.context}", line, hint="the file may be cut off or damaged"
        ) from None
    except yaml.YAMLError as exc:
        raise ctx.fail(f"invalid YAML: {str(exc).splitlines()[0]}", hint="the file may be cut off or damaged") from None
    except RecursionError:
        raise ctx.fail("YAML nested too deeply") from None
    if root is None:
        return None
    seen: set[int] = set()

    def convert(node: Any, depth: int) -> Any:
        if id(node) in seen:
            raise ctx.fail("uses YAML anchors/aliases, which conda files never do", node.start_mark.line + 1)
        seen.add(id(node))
        if len(seen) > MAX_YAML_NODES:
            raise ctx.fail(f"has more than {MAX_YAML_NODES} YAML nodes", node.start_mark.line + 1)
        if depth > 64:
            raise ctx.fail("YAML nested more than 64 levels deep", node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            scalar = YamlStr(node.value)
            scalar.line = node.start_mark.line + 1
            return scalar
        if isinstance(node, yaml.SequenceNode):
            items = YamlList(convert(child, depth + 1) for child in node.value)
            items.line = node.start_mark.line + 1
            return items
        mapping = YamlMap()
        mapping.line = node.start_mark.line + 1
        for key_node, value_node in node.value:
            key = convert(key_node, depth + 1)
            if not isinstance(key, str):
                raise ctx.fail("a YAML mapping key is not a plain value", key_node.start_mark.line + 1)
            mapping[key] = convert(value_node, depth + 1)
        return mapping

    return convert(root, 0)


def line_of(value: Any, default: int | None = None) -> int | None:
    return getattr(value, "line", default) or default
