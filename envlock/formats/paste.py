"""Undo what pasting into an issue, a chat or an e-mail does to a tool's output, before any importer reads it.

People rarely hand over the file a tool wrote: they paste it quoted with
``> `` (an e-mail reply, a GitHub quote), inside a Markdown fence or a
``<details>`` block, after the shell prompt and command that produced it, with
Windows line ends.  Each of these is removed here, once, for every format, and
a warning says what was removed, so a value that came out of a cleaned paste
can be traced back.

Cleaning never moves a line: a removed line becomes an empty one, so every
line number an importer reports is the line number in the file as given.
What cannot be cleaned without guessing (two fenced blocks: which one is the
output?) is refused, naming the line.
"""

from __future__ import annotations

import re

from envlock.formats.importers import ImportContext

# Commands whose output envlock imports, as typed after a prompt.
_COMMANDS = (
    r"(?:\S*[/\\])?(?:python[0-9.]*(?:\.exe)?|py|pip[0-9.]*|uv|conda|mamba|micromamba|pixi|poetry|pipenv|pip-compile"
    r"|nvidia-smi(?:\.exe)?|rocm-smi|amd-smi|npu-smi|nvcc|cat|type|more|less|Get-Content|gc|head|tail|sudo)\b"
)
# "$ pip freeze", "(base) user@host:~/x$ nvidia-smi", "PS C:\\x> nvidia-smi", "C:\\x>pip list", "% conda list"
_PROMPT_LINE = re.compile(
    r"^\s*(?:\([^)]{1,60}\)\s*)?"
    r"(?:PS [^>]{0,200}>|[A-Za-z]:\\[^>]{0,200}>|\[[^\]]{1,200}\][$#]"
    r"|(?:[\w.-]+@[\w.-]+)?(?::?\s*[~/][^$#%]{0,200})?\s*[$#%>❯➜])\s*" + _COMMANDS
)
_BARE_PROMPT = re.compile(r"^\s*(?:\([^)]{1,60}\)\s*)?(?:[\w.-]+@[\w.-]+(?::[^$#%]{0,200})?)?\s*[$#%]\s*$")
_FENCE = re.compile(r"^\s*(?:`{3,}|~{3,})")
_HTML_WRAPPER = re.compile(
    r"^\s*(?:</?details[^>]*>|<summary>.*?</summary>|</?summary>|</?pre>|</?code>|<br\s*/?>)\s*$", re.IGNORECASE
)
_QUOTE = re.compile(r"^\s*> ?")


def clean_paste(text: str, ctx: ImportContext) -> str:
    """``text`` with paste wrappings removed (line numbers kept); a warning lists what was removed."""
    cleaned: list[str] = []
    text = _line_ends(text, ctx, cleaned)
    lines = text.split("\n")
    _quotes(lines, cleaned)
    _html(lines, cleaned)
    _fences(lines, ctx, cleaned)
    _prompts(lines, cleaned)
    _elisions(lines, ctx)
    _indent(lines, cleaned)
    if cleaned:
        ctx.warn("cleaned the paste before reading it: " + "; ".join(cleaned))
    return "\n".join(lines)


def _line_ends(text: str, ctx: ImportContext, cleaned: list[str]) -> str:
    if "\r" not in text:
        return text
    if "\n" not in text:
        cleaned.append("old Mac (CR) line ends read as line ends")
        return text.replace("\r", "\n")
    # A CR that does not end a line could hide text from a reader (the
    # pipenv CVE-2022-21668 shape): refused rather than guessed at.
    stray = re.search(r"\r(?!\n)", text)
    if stray:
        line = text.count("\n", 0, stray.start()) + 1
        raise ctx.fail("carriage return (CR) inside a line", line, hint="save the file with LF or CRLF line ends")
    cleaned.append("Windows (CRLF) line ends")
    return text.replace("\r\n", "\n")


def _quotes(lines: list[str], cleaned: list[str]) -> None:
    """E-mail / Markdown quoting: only when every non-empty line is quoted, one level at a time."""
    levels = 0
    while levels < 8:
        body = [line for line in lines if line.strip()]
        if not body or not all(_QUOTE.match(line) for line in body):
            break
        for i, line in enumerate(lines):
            lines[i] = _QUOTE.sub("", line, count=1) if line.strip() else ""
        levels += 1
    if levels:
        cleaned.append("'> ' quote marks" + (f" ({levels} levels)" if levels > 1 else ""))


def _html(lines: list[str], cleaned: list[str]) -> None:
    count = 0
    for i, line in enumerate(lines):
        if _HTML_WRAPPER.match(line):
            lines[i] = ""
            count += 1
    if count:
        cleaned.append("<details>/<summary>/<pre> lines")


def _fences(lines: list[str], ctx: ImportContext, cleaned: list[str]) -> None:
    """Keep what is inside the one Markdown fence; prose around it goes.  Two fenced blocks are refused."""
    fences = [i for i, line in enumerate(lines) if _FENCE.match(line)]
    if not fences:
        return
    if len(fences) > 2:
        raise ctx.fail(
            f"the paste holds {len(fences) // 2 + len(fences) % 2} fenced (```) blocks; which one to read is not clear",
            fences[2] + 1,
            hint="import one tool's output at a time: save just that block to a file",
        )
    start = fences[0]
    end = fences[1] if len(fences) == 2 else len(lines)
    outside = [i for i in range(len(lines)) if (i < start or i > end) and lines[i].strip()]
    for i in outside + fences:
        lines[i] = ""
    cleaned.append("a Markdown fence" + (" and the text around it" if outside else ""))
    if len(fences) == 1:
        ctx.warn(
            "the fenced (```) block is never closed: the paste may have been cut off; reading what it has",
            len(lines),
        )


def _prompts(lines: list[str], cleaned: list[str]) -> None:
    """The prompt-and-command line before the output (and a bare prompt after it)."""
    body = [i for i, line in enumerate(lines) if line.strip()]
    if not body:
        return
    removed = False
    first = body[0]
    if _PROMPT_LINE.match(lines[first]):
        lines[first] = ""
        removed = True
    last = body[-1]
    if last != first and _BARE_PROMPT.match(lines[last]):
        lines[last] = ""
        removed = True
    if removed:
        cleaned.append("the shell prompt line")


def _elisions(lines: list[str], ctx: ImportContext) -> None:
    """A line that is only "..." is the person saying they left lines out: what those held is unknown."""
    for i, line in enumerate(lines):
        if line.strip() in ("...", "…", "[...]", "(...)", "<snip>", "[snip]"):
            lines[i] = ""
            ctx.warn("the paste leaves lines out here ('...'): what they held is not known", i + 1)


def _indent(lines: list[str], cleaned: list[str]) -> None:
    """A block indented as a whole (a Markdown code block, a quoted e-mail) is moved back to column 0."""
    body = [line for line in lines if line.strip()]
    if not body:
        return
    common = min(len(line) - len(line.lstrip(" ")) for line in body)
    if common == 0 or any(line[:common].strip(" ") for line in body):
        return
    for i, line in enumerate(lines):
        lines[i] = line[common:] if line.strip() else ""
    cleaned.append(f"an indentation of {common} spaces on every line")


def unwrap_table_rows(lines: list[str]) -> tuple[list[str], list[int]]:
    """Rejoin box-table rows (``| ... |``) that an e-mail client folded at its line width.

    The table's ``+----+`` border gives the width every row has; a row that is
    shorter, or does not end with ``|``, continues on the next line(s) until it
    is whole.  Folded parts become empty lines (numbers still match).  Returns
    the lines and the numbers of the rows that were rejoined.
    """
    borders = [len(line.rstrip()) for line in lines if re.match(r"^\+[-=+]{10,}\+$", line.rstrip())]
    width = max(borders) if borders else 0
    out = list(lines)
    joined: list[int] = []

    def continues(text: str, following: str) -> bool:
        """Whether ``following`` is the folded rest of the row ``text`` (every real row starts with | or +)."""
        part = following.strip()
        if not part or len(text) >= width - 2 and text.endswith(("|", "+")):
            return False
        if not text.endswith("|"):
            return True  # a row always ends with "|": the rest is on the next line
        return not part.startswith(("|", "+"))

    i = 0
    while i < len(out):
        text = out[i].rstrip()
        if not width or not text.startswith("|"):
            i += 1
            continue
        j = i + 1
        while j < len(out) and j - i <= 4 and continues(text, out[j]):
            text = f"{text} {out[j].strip()}"
            out[j] = ""
            j += 1
        if j > i + 1:
            out[i] = text
            joined.append(i + 1)
        i = j
    return out, joined
