"""What the loader remembers between tables and locks must never change a result.

The loader reuses the record of a table it has validated before, accepts a
string a check has passed before, and the text of a table it has read before;
each test here loads the same input with nothing remembered and with
everything remembered, and expects the same locks and the same errors.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name as packaging_canonicalize_name

from envlock import records
from envlock.diff import diff
from envlock.errors import LockfileError
from envlock.lockfile import io
from envlock.lockfile.model import CondaPackage, CondaSection, Lock, OsPackage, OsSection, PythonPackage, PythonSection
from envlock.lockfile.write import dumps_lock
from envlock.names import canonical_name, canonical_names
from tests.unit.test_lockfile_io import full_lock


@pytest.fixture(autouse=True)
def nothing_remembered():
    io.clear_memos()
    yield
    io.clear_memos()


def load(text: str):
    return io.parse_lock(text.encode("utf-8"))


def problems_of(text: str) -> list[str]:
    with pytest.raises(LockfileError) as info:
        load(text)
    return info.value.problems


OS_LOCK = 'lock-version = "1.0"\n\n[os]\n\n[[os.packages]]\nname = "zlib1g"\nversion = "1.2"\narchitecture = "amd64"\nmanual = {manual}\n'


@pytest.mark.parametrize("manual", ["1", "0"])
def test_an_integer_where_a_boolean_was_accepted_before_is_still_rejected(manual):
    cold = problems_of(OS_LOCK.format(manual=manual))
    load(OS_LOCK.format(manual="true" if manual == "1" else "false"))
    assert problems_of(OS_LOCK.format(manual=manual)) == cold
    assert cold == ["os.packages[0].manual: must be true or false, not an integer"]


def test_a_string_accepted_by_a_loose_check_is_still_checked_by_a_strict_one():
    text = 'lock-version = "1.0"\ncreated-by = "two words"\n'
    assert load(text).lock.created_by == "two words"
    problems = problems_of(
        'lock-version = "1.0"\n[python]\n[[python.packages]]\nname = "six"\nversion = "1.0"\ninstaller = "two words"\n'
    )
    assert problems == ["python.packages[0].installer: 'two words' is not a valid identifier"]


def test_problems_in_an_array_name_their_position_when_other_items_were_seen_before():
    packages = "".join(f'\n[[python.packages]]\nname = "p{i}"\nversion = "1.{i}"\n' for i in range(5))
    good = 'lock-version = "1.0"\n[python]\n' + packages
    bad = good.replace('version = "1.3"', 'version = "1 3"').replace('name = "p1"', 'name = "p1"\nrequested = 7')
    cold = problems_of(bad)
    io.clear_memos()
    load(good)
    assert problems_of(bad) == cold
    assert cold == [
        "python.packages[1].requested: must be true or false, not an integer",
        "python.packages[3].version: '1 3' is not a valid version",
    ]


def test_a_lock_loads_the_same_with_and_without_memory():
    text = dumps_lock(full_lock())
    cold = load(text)
    warm = load(text)
    assert warm.lock == cold.lock
    assert warm.warnings == cold.warnings
    # The second load reused the first one's package records.
    assert warm.lock.python.packages[0] is cold.lock.python.packages[0]
    assert warm.lock.os.packages[0] is cold.lock.os.packages[0]


def test_reused_records_do_not_change_a_diff():
    a = full_lock()
    python = a.python
    torch, attrs = python.packages
    b = records.replace(a, python=records.replace(python, packages=(records.replace(torch, version="2.14.0"), attrs)))
    loaded_a = load(dumps_lock(a)).lock
    loaded_b = load(dumps_lock(b)).lock
    # Written sorted by name: attrs first.
    assert loaded_a.python.packages[0] is loaded_b.python.packages[0]
    io.clear_memos()
    fresh_b = load(dumps_lock(b)).lock
    assert fresh_b.python.packages[0] is not loaded_a.python.packages[0]
    assert diff(loaded_a, loaded_b) == diff(loaded_a, fresh_b) == diff(a, b)
    assert [f.path for f in diff(loaded_a, loaded_b) if f.status != "unknown"] == ["python.packages[torch]"]


def test_duplicates_after_normalisation_are_found_when_some_names_are_not_canonical():
    lock = Lock(
        python=PythonSection(
            packages=(
                PythonPackage(name="Foo.Bar", version="1"),
                PythonPackage(name="foo-bar", version="2"),
                PythonPackage(name="six", version="1"),
            )
        )
    )
    with pytest.raises(LockfileError) as info:
        load(dumps_lock(lock))
    assert info.value.problems == [
        "python.packages[1].name: 'foo-bar' duplicates python.packages[0] after name normalisation"
    ]


def test_os_packages_listed_twice_are_found():
    lock = Lock(
        os=OsSection(
            packages=(
                OsPackage(name="b", version="1"),
                OsPackage(name="a", version="1"),
                OsPackage(name="a", version="2"),
            )
        )
    )
    with pytest.raises(LockfileError) as info:
        load(dumps_lock(lock))  # written sorted by name: a, a, b
    assert info.value.problems == ["os.packages[1].name: 'a' is listed twice"]


def test_conda_packages_listed_twice_and_os_packages_per_architecture():
    conda = CondaSection(packages=tuple(CondaPackage(name=n, version="1") for n in ("x", "y", "x", "x")))
    two_arches = OsSection(
        packages=(
            OsPackage(name="libc6", version="2.36", architecture="amd64"),
            OsPackage(name="libc6", version="2.36", architecture="i386"),
        )
    )
    with pytest.raises(LockfileError) as info:
        load(dumps_lock(Lock(conda=conda, os=two_arches)))  # conda written sorted: x, x, x, y
    assert info.value.problems == [
        "conda.packages[1].name: 'x' is listed twice",
        "conda.packages[2].name: 'x' is listed twice",
    ]
    assert load(dumps_lock(Lock(os=two_arches))).lock.os.packages == two_arches.packages


names = st.text(alphabet=st.sampled_from("abzAZ09-_.É\n"), max_size=12)


@settings(max_examples=500, deadline=None)
@given(names)
def test_canonicalize_name_is_pep_503(name):
    assert canonical_name(name) == packaging_canonicalize_name(name)


@settings(max_examples=300, deadline=None)
@given(st.lists(names, max_size=8))
def test_canonical_names_of_a_list_are_those_of_each_name(many):
    assert canonical_names(many) == [packaging_canonicalize_name(name) for name in many]
