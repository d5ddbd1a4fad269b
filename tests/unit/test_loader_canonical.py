"""The reader of envlock's own TOML subset (``io.parse_canonical_toml``) against tomli.

The fast reader may decline any text (None: the caller falls back to the
pre-scan and tomli), but whatever it returns must be exactly what tomli
returns: the same keys in the same order, the same values of the same types.
Texts tomli rejects must always be declined, so every error message still
comes from tomli.
"""

from __future__ import annotations

import json

import pytest
import tomli
from hypothesis import given, settings
from hypothesis import strategies as st

from envlock.lockfile import io, toml_writer
from envlock.lockfile.write import dumps_lock
from tests.unit.test_lockfile_io import full_lock


def typed(value: object) -> str:
    """Values with their types and key order (``==`` would take ``True`` for ``1``)."""
    return json.dumps(value, default=repr)


def tomli_or_error(text: str) -> object:
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError:
        return "error"


def assert_same_as_tomli_or_declined(text: str) -> None:
    fast = io.parse_canonical_toml(text)
    expected = tomli_or_error(text)
    if fast is None:
        return
    assert expected != "error", f"tomli rejects what the fast reader accepted: {text!r}"
    assert typed(fast) == typed(expected)


def test_a_written_lock_is_read_by_the_fast_reader_exactly_as_tomli_reads_it():
    text = dumps_lock(full_lock())
    fast = io.parse_canonical_toml(text)
    assert fast is not None
    assert typed(fast) == typed(tomli.loads(text))


def test_reading_twice_gives_independent_documents():
    text = dumps_lock(full_lock())
    first = io.parse_canonical_toml(text)
    first["python"]["packages"][0]["name"] = "changed"
    first["os"]["packages"][0]["version"] = "changed"
    first["cpu"]["flags"].append("changed")
    second = io.parse_canonical_toml(text)
    assert typed(second) == typed(tomli.loads(text))


# --- whatever the writer writes --------------------------------------------------

plain_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyzAZ09_-", min_size=1, max_size=8)
any_keys = st.one_of(
    plain_keys, st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6)
)
strings = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
plain_strings = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")).filter(lambda c: c not in '"\\'), max_size=30
)
scalars = st.one_of(
    strings,
    plain_strings,
    st.booleans(),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.lists(st.one_of(strings, plain_strings), max_size=12),
)
leaf_tables = st.dictionaries(any_keys, scalars, max_size=6)
documents = st.recursive(
    leaf_tables,
    lambda children: st.dictionaries(
        any_keys, st.one_of(scalars, children, st.lists(children, min_size=1, max_size=4)), max_size=5
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_written_documents_read_as_tomli_reads_them(data):
    assert_same_as_tomli_or_declined(toml_writer.dumps(data))


lock_like = st.fixed_dictionaries(
    {"lock-version": st.just("1.0"), "origin": plain_strings},
    optional={
        "python": st.fixed_dictionaries(
            {"version": plain_strings},
            optional={
                "packages": st.lists(
                    st.dictionaries(plain_keys, st.one_of(plain_strings, st.booleans(), st.integers(0, 2**53))),
                    min_size=1,
                    max_size=5,
                )
            },
        ),
        "runtime": st.fixed_dictionaries(
            {}, optional={"env": st.dictionaries(plain_keys, plain_strings, min_size=1, max_size=3)}
        ),
        "cpu": st.fixed_dictionaries({"flags": st.lists(plain_strings, max_size=40)}),
    },
)


@settings(max_examples=300, deadline=None)
@given(lock_like)
def test_lock_shaped_documents_take_the_fast_reader(data):
    text = toml_writer.dumps(data)
    fast = io.parse_canonical_toml(text)
    assert fast is not None, text
    assert typed(fast) == typed(tomli.loads(text))


# --- any text built from lines near the subset ------------------------------------

LINES = [
    "",
    "# a comment",
    "#\ttab comment",
    "[a]",
    "[b]",
    "[a.b]",
    "[a.c]",
    "[b.b]",
    "[[a.b]]",
    "[[a.c]]",
    "[[b.b]]",
    "[[a]]",
    "[a.b.c]",
    "[ a ]",
    '["a"]',
    "x = 1",
    "x = 0",
    "x = 01",
    "x = -1",
    "x = 1_000",
    "x = 1.5",
    "x = 99999999999999999999",
    "y = true",
    "y = false",
    "y = True",
    'x = "s"',
    'x = "a = b"',
    'x = "tab\there"',
    'x = "esc\\"aped"',
    "x = 's'",
    'y = ""',
    'b = "b"',
    'c = ["p", "q"]',
    "c = []",
    'c = ["p",]',
    "c = [",
    '    "p",',
    '    "q"',
    "]",
    "  ]",
    "a.b = 1",
    "x=1",
    "x = 1 ",
    "x = 1 # trailing",
    'x = """m"""',
    "x = {a = 1}",
    "x = 1979-05-27",
    "\r",
    "x = 1\r",
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=14), st.booleans())
def test_texts_of_nearby_lines_are_declined_or_read_as_tomli_reads_them(lines, final_newline):
    text = "\n".join(lines) + ("\n" if final_newline else "")
    assert_same_as_tomli_or_declined(text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_written_lock_with_one_character_changed_is_declined_or_read_as_tomli_reads_it(data):
    text = dumps_lock(full_lock())
    position = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(
        st.sampled_from(
            ['"', "\\", "\n", "[", "]", ".", " ", "=", "#", "\t", "\r", "\x00", "\x7f", "é", "1", "", "\n[a]\n"]
        )
    )
    assert_same_as_tomli_or_declined(text[:position] + replacement + text[position + 1 :])


@pytest.mark.parametrize(
    "text",
    [
        'a = "1"\na = "2"\n',  # a key twice
        "[a]\n[a]\n",  # a table twice
        "[a.b]\n[a]\n",  # a super-table after its sub-table: valid TOML, left to tomli
        '[a]\nb = "x"\n[a.b]\n',  # a table over a key
        "[a.b]\n[[a.b]]\n",  # an array of tables over a table
        "[[a.b]]\n[a.b]\n",
        '[a]\nb = ["x"]\n[[a.b]]\n',  # appending to a static array
        'a = "x"\n[a.b]\n',  # a table under a string
        'x = "a\\tb"\n',  # escapes
        'x = "a\tb"\n',  # a raw tab (TOML allows it; the subset does not)
        "x = 1\r\n",  # CRLF
        'x = "no final newline"',
        "x = 1.0\n",
        "a.b = 1\n",
        "[[a]]\n",  # an array of tables at the top
        "[a.b.c]\n",
    ],
)
def test_texts_outside_the_subset_are_declined(text):
    assert io.parse_canonical_toml(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n# only comments\n",
        '[runtime.env]\nOMP_NUM_THREADS = "4"\n[[runtime.libraries]]\nname = "openblas"\n',  # implicit parent table
        '[cpu]\nflags = [\n    "avx",\n    "avx2",\n]\n[cpu.x]\n',
        "[a]\n\n[[a.b]]\nx = 1\n\n[[a.b]]\nx = 2\n[a.c]\n",
    ],
)
def test_texts_in_the_subset_are_read(text):
    fast = io.parse_canonical_toml(text)
    assert fast is not None
    assert typed(fast) == typed(tomli.loads(text))


def test_loading_takes_the_fast_reader_only_for_what_tomli_reads_the_same(tmp_path):
    # A text the fast reader declines still loads through tomli: the old inline-table layout.
    text = 'lock-version = "1.0"\n[python]\npackages = [\n    { name = "six", version = "1.16.0" },\n]\n'
    assert io.parse_canonical_toml(text) is None
    loaded = io.parse_lock(text.encode())
    assert loaded.lock.python.packages[0].name == "six"
