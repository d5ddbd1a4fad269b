"""The lock's TOML writer: whatever it writes, a real TOML parser reads back as the same data."""

from __future__ import annotations

import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from envlock.lockfile import toml_writer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

keys = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
strings = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
scalars = st.one_of(
    strings, st.booleans(), st.integers(min_value=0, max_value=2**53), st.lists(strings, min_size=1, max_size=30)
)
leaf_tables = st.dictionaries(keys, scalars, max_size=6)
tables = st.recursive(
    leaf_tables,
    lambda children: st.dictionaries(
        keys, st.one_of(scalars, children, st.lists(children, min_size=1, max_size=4)), max_size=5
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(tables)
def test_written_toml_parses_back_to_the_same_data(data):
    assert tomllib.loads(toml_writer.dumps(data)) == data


def test_layout_is_fixed():
    data = {
        "lock-version": "1.0",
        "flags": ["avx", "avx2"],
        "python": {"version": "3.11.7", "packages": [{"name": "a"}, {"name": "b"}]},
        "runtime": {"env": {"OMP_NUM_THREADS": "4"}},
    }
    assert toml_writer.dumps(data) == (
        'lock-version = "1.0"\n'
        'flags = ["avx", "avx2"]\n'
        "\n[python]\n"
        'version = "3.11.7"\n'
        "\n[[python.packages]]\n"
        'name = "a"\n'
        "\n[[python.packages]]\n"
        'name = "b"\n'
        "\n[runtime.env]\n"
        'OMP_NUM_THREADS = "4"\n'
    )


def test_long_string_arrays_go_one_item_per_line():
    text = toml_writer.dumps({"warnings": ["x" * 60, "y" * 60]})
    assert text == 'warnings = [\n    "' + "x" * 60 + '",\n    "' + "y" * 60 + '",\n]\n'


def test_escapes_quotes_backslashes_and_controls():
    value = 'a"b\\c\nd\x1be\x7f'
    text = toml_writer.dumps({"v": value})
    assert "\n" not in text.rstrip("\n")
    assert tomllib.loads(text) == {"v": value}
