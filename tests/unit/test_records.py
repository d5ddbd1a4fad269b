"""envlock.records: the record classes every model and probe result is built from."""

from __future__ import annotations

import copy
import pickle

import pytest

from envlock import records
from envlock.records import FrozenRecordError, field, record


@record
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


@record(frozen=False)
class Counter:
    name: str
    seen: list[str] = field(default_factory=list)


def test_init_defaults_factories_and_positional_order():
    p = Point(3)
    assert (p.x, p.y, p.tags, p.notes) == (3, 0, (), [])
    assert Point(1, 2).y == 2
    assert Point(1).notes is not Point(1).notes  # a fresh list per instance
    assert p.norm1 == 3
    with pytest.raises(TypeError):
        Point()  # x has no default
    with pytest.raises(TypeError):
        Point(1, z=2)


def test_frozen_records_refuse_changes_and_have_no_dict():
    p = Point(1)
    with pytest.raises(FrozenRecordError):
        p.x = 2
    with pytest.raises(FrozenRecordError):
        del p.y
    with pytest.raises(AttributeError):
        p.other = 1  # slotted: no attribute outside the fields
    assert not hasattr(p, "__dict__")


def test_equality_and_hash_follow_compared_fields_and_type():
    assert Point(1, 2, notes=["a"]) == Point(1, 2, notes=["b"])  # notes: compare=False
    assert Point(1, 2) != Point(2, 1)
    assert hash(Point(1, 2, ("t",))) == hash(Point(1, 2, ("t",)))
    assert len({Point(1), Point(1), Point(2)}) == 2

    @record
    class Other:
        x: int
        y: int = 0
        tags: tuple[str, ...] = ()
        notes: list[str] = field(default_factory=list)

    assert Point(1) != Other(1)  # same values, another class


def test_mutable_records_assign_and_are_unhashable():
    c = Counter("a")
    c.seen.append("x")
    c.name = "b"
    assert c == Counter("b", ["x"])
    with pytest.raises(TypeError):
        hash(c)


def test_replace_fields_values_repr():
    p = Point(1, 2, ("t",))
    q = records.replace(p, y=5)
    assert (q.x, q.y, q.tags) == (1, 5, ("t",)) and p.y == 2
    with pytest.raises(TypeError, match="no field 'z'"):
        records.replace(p, z=1)
    assert [f.name for f in records.fields(Point)] == ["x", "y", "tags", "notes"]
    assert records.fields(p)[2].type == "tuple[str, ...]"
    assert records.values(p) == {"x": 1, "y": 2, "tags": ("t",), "notes": []}
    assert repr(p) == "Point(x=1, y=2, tags=('t',))"
    assert records.is_record(p) and records.is_record(Point) and not records.is_record(object())
    with pytest.raises(TypeError):
        records.fields(object())


def test_pickle_and_copy_round_trip():
    p = Point(1, 2, ("t",), ["n"])
    for clone in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p)):
        assert clone == p and type(clone) is Point and clone.notes == ["n"]
    c = Counter("a", ["x"])
    assert pickle.loads(pickle.dumps(c)) == c


def test_a_field_without_default_after_one_with_default_is_refused():
    with pytest.raises(TypeError, match="follows one with a default"):

        @record
        class Bad:
            a: int = 0
            b: int
