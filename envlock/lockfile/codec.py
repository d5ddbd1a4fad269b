"""Convert between the lock model and plain data, validating each field on the way in.

Checks that span fields live in :mod:`envlock.lockfile.checks`, the
fingerprint in :mod:`envlock.lockfile.identity`, the clearing of private
fields in :mod:`envlock.lockfile.private`.

``to_dict`` drops ``None``, sorts lists of models by their key and turns
``snake_case`` into ``kebab-case``; ``from_dict`` is its inverse and collects
*every* problem with its path (``python.packages[3].version``) instead of
stopping at the first one.
"""

from __future__ import annotations

import sys
from functools import cache

from envlock import records
from envlock.lockfile import model as m
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable
    from typing import Any

MAX_LIST_ITEMS = 200_000
MAX_INT = 2**53


@record
class _Spec:
    attr: str
    key: str
    kind: str  # "str", "int", "bool", "strs", "models", "model", "strmap"
    model: Any  # the record class of a "model" or "models" field; None for the others
    check: Any
    sort_key: str | None
    optional: bool
    private: bool
    required: bool


def data_key(attr: str) -> str:
    return attr.replace("_", "-")


def _specs_of(cls: type) -> tuple[_Spec, ...]:
    namespace = sys.modules[cls.__module__].__dict__
    specs = []
    for fld in records.fields(cls):
        kind, model, optional = _field_kind(fld.type, namespace, f"{cls.__name__}.{fld.name}")
        meta = fld.metadata
        # A non-optional string whose default is empty has no sensible default: the key must be there.
        required = kind == "str" and not optional and fld.default == ""
        specs.append(
            _Spec(
                fld.name,
                data_key(fld.name),
                kind,
                model,
                meta.get("check"),
                meta.get("sort_key"),
                optional,
                meta.get("private", False),
                required,
            )
        )
    return tuple(specs)


# The specs of a record class, built once per class.  Typed as the function it is: functools' wrapper
# asks for hashable arguments, which the type checker does not grant every class.
field_specs: Callable[[type], tuple[_Spec, ...]] = cache(_specs_of)


def _field_kind(annotation: str, namespace: dict[str, Any], where: str) -> tuple[str, type | None, bool]:
    """(kind, model class, optional) from a field's annotation as written in model.py.

    The model uses a handful of annotation shapes; reading them as text avoids
    ``typing.get_type_hints`` (and importing ``typing``) on every command's start.
    """
    text = annotation.replace(" ", "")
    optional = text.endswith("|None")
    if optional:
        text = text[: -len("|None")]
    if text in ("str", "int", "bool"):
        return text, None, optional
    if text == "tuple[str,...]":
        return "strs", None, optional
    if text == "dict[str,str]":
        return "strmap", None, optional
    if text.startswith("tuple[") and text.endswith(",...]"):
        inner = namespace.get(text[len("tuple[") : -len(",...]")])
        if records.is_record(inner):
            return "models", inner, optional
    elif records.is_record(namespace.get(text)):
        return "model", namespace[text], optional
    raise TypeError(f"unsupported field type {annotation!r} on {where}")  # a programming error in model.py


# --- model -> data ----------------------------------------------------------------


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain, deterministic data for a model object (``None`` dropped, lists sorted)."""
    out: dict[str, Any] = {}
    for spec in field_specs(obj.__class__):
        value = getattr(obj, spec.attr)
        # None is unknown; an empty list or table says nothing more than its
        # absence, so neither is written (the loader reads both back as empty).
        if value is None or (spec.kind in ("models", "strs", "strmap") and not value):
            continue
        if spec.kind == "model":
            out[spec.key] = to_dict(value)
        elif spec.kind == "models":
            items = list(value)
            sort_key = spec.sort_key
            if sort_key:
                items.sort(key=lambda item: _sort_value(getattr(item, sort_key)))
            out[spec.key] = [to_dict(item) for item in items]
        elif spec.kind == "strs":
            out[spec.key] = list(value)
        elif spec.kind == "strmap":
            out[spec.key] = {k: value[k] for k in sorted(value)}
        else:
            out[spec.key] = value
    return out


def _sort_value(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, int) else (1, 0, str(value))


# --- data -> model ---------------------------------------------------------------


@cache
def _index(cls: type) -> tuple[dict[str, tuple[str, Any, Any, _Spec]], tuple[_Spec, ...]]:
    """Per on-disk key: (attribute, string check, strings it accepted, spec); and the required specs.

    The check and its set are only given for string fields, so the hot loop
    of ``from_dict`` tells a string field from the others with one test.
    """
    specs = field_specs(cls)
    fast = {}
    for spec in specs:
        check = (spec.check or _default_check) if spec.kind == "str" else None
        fast[spec.key] = (spec.attr, check, _accepted_by(check) if check else None, spec)
    return fast, tuple(spec for spec in specs if spec.required)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


# Strings that passed a check, per check.  Versions, installers, sources and
# architectures recur across the packages of a lock and across the locks of a
# diff, and a check is a pure function of the string, so one that passed once
# passes again.  Bounded, so that a hostile lock cannot make it grow without
# limit (a lock is at most 8 MiB, so no set gets near this anyway).
_ACCEPTED_MAX = 1 << 16
_accepted: dict[Any, set[str]] = {}


def _accepted_by(check: Any) -> set[str]:
    accepted = _accepted.get(check)
    if accepted is None:
        accepted = _accepted[check] = set()
    return accepted


@cache
def _is_leaf(cls: type) -> bool:
    """Whether every field of ``cls`` is a scalar or a list of strings (a package, a GPU; not a section)."""
    return all(spec.kind in ("str", "int", "bool", "strs") for spec in field_specs(cls))


# Records already built from leaf tables, per class, by the table's items and
# their types.  A package or GPU table equal to one validated before gives an
# equal record, so that record is reused instead of checked and built again:
# the two locks of a diff share most of their packages, and a cluster's locks
# share their 738 OS packages.  Sections, which hold other records, are
# always built afresh.  Bounded like ``_accepted``.
_records_built: dict[type, dict[Any, Any]] = {}


def clear_memos() -> None:
    """Forget the strings and records validated so far (for measurements and tests of a first load)."""
    for accepted in _accepted.values():
        accepted.clear()
    _records_built.clear()


def from_dict(cls: type, data: Any, path: str, problems: list[str], item: int | None = None) -> Any:
    """Build ``cls`` from plain data; append ``path: message`` to ``problems`` for each problem.

    ``item`` is the table's position in the array at ``path``, if it is in one.
    Returns ``None`` when the value is not a table at all.  This is the hot
    path of every command that reads a lock (a 5,000-package lock has 30,000
    values), so scalars that pass their check take a short path and field
    paths are only formatted for a problem or a table seen for the first time.
    """
    key = None
    if type(data) is dict:
        interned = _records_built.get(cls)
        if interned is None and _is_leaf(cls):
            interned = _records_built[cls] = {}
        if interned is not None:
            try:
                key = _table_key(data)
                built = interned.get(key)
            except TypeError:  # an array or table value: not hashable, so not interned
                key = built = None
            if built is not None:
                return built
    if type(data) is not dict:
        problems.append(f"{_item_path(path, item) or '<top>'}: must be a table, not {_type_name(data)}")
        return None
    return _build_remembered(cls, data, path, problems, item, interned if key is not None else None, key)


def _build_remembered(
    cls: type, data: dict, path: str, problems: list[str], item: int | None, interned: dict | None, key: tuple | None
) -> Any:
    """``_build``, and the record remembered under ``key`` when the table had no problem."""
    before = len(problems)
    built = _build(cls, data, path, problems, item)
    if interned is not None and len(problems) == before and len(interned) < _ACCEPTED_MAX:
        interned[key] = built
    return built


def _table_key(table: dict) -> tuple:
    """The keys, values and value types of a table, flat: equal only for tables that validate alike.

    The types are there because ``True == 1 == 1.0`` and they hash alike, but
    ``manual = 1`` must still be rejected after ``manual = true``.
    """
    return (*table, *table.values(), *map(type, table.values()))


def _item_path(path: str, item: int | None) -> str:
    return path if item is None else f"{path}[{item}]"


def _build(cls: type, data: dict, path: str, problems: list[str], item: int | None = None) -> Any:
    """``cls`` from a table; the table's path (``path[item]``) is only formatted where it is needed."""
    fast, required = _index(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        entry = fast.get(key)
        if entry is None:
            problems.append(
                f"{_join(_item_path(path, item), key)}: unknown key (check the spelling; see docs/lockfile.md)"
            )
            continue
        attr, check, accepted, spec = entry
        if type(value) is str and check is not None:
            if value in accepted:
                kwargs[attr] = value
                continue
            if check(value) is None:
                if len(accepted) < _ACCEPTED_MAX:
                    accepted.add(value)
                kwargs[attr] = value
                continue
        elif type(value) is bool and spec.kind == "bool":
            kwargs[attr] = value
            continue
        value = _convert(spec, value, _join(_item_path(path, item), key), problems)
        if value is not _INVALID:
            kwargs[attr] = value
    for spec in required:
        if spec.key not in data:
            problems.append(f"{_join(_item_path(path, item), spec.key)}: missing; this field is required")
    return cls(**kwargs)


_INVALID = object()


def _convert(spec: _Spec, value: Any, where: str, problems: list[str]) -> Any:
    kind = spec.kind
    if kind == "str":
        return _string(spec, value, where, problems)
    if kind == "bool":
        if not isinstance(value, bool):
            problems.append(f"{where}: must be true or false, not {_type_name(value)}")
            return _INVALID
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: must be an integer, not {_type_name(value)}")
            return _INVALID
        if not 0 <= value <= MAX_INT:
            problems.append(f"{where}: {value} is out of range (0 to {MAX_INT})")
            return _INVALID
        return value
    if kind == "model":
        return from_dict(spec.model, value, where, problems) or _INVALID
    if kind in ("models", "strs"):
        if not isinstance(value, list):
            problems.append(f"{where}: must be an array, not {_type_name(value)}")
            return _INVALID
        if len(value) > MAX_LIST_ITEMS:
            problems.append(f"{where}: has {len(value)} items; at most {MAX_LIST_ITEMS} are allowed")
            return _INVALID
        items = []
        if kind == "strs":
            for i, item in enumerate(value):
                converted = _string(spec, item, f"{where}[{i}]", problems)
                if converted is not _INVALID:
                    items.append(converted)
        else:
            model = spec.model
            interned = _records_built.get(model)
            if interned is not None:
                # Most arrays of a lock that follows another hold mostly
                # tables seen before: one pass finds those, and only the others
                # (None: new, or not a table at all) are taken one by one, in
                # order, so problems come in the same order.
                try:
                    keys = [_table_key(table) if type(table) is dict else None for table in value]
                    found = list(map(interned.get, keys))
                except TypeError:  # an array or table inside an item (unhashable): one by one below
                    keys = None
                    found = [None] * len(value)
                if all(found):  # records are always true, so: none is missing
                    return tuple(found)
                for i, record in enumerate(found):
                    if record is None:
                        table = value[i]
                        if keys is not None and keys[i] is not None:  # a new table: its key is already made
                            record = _build_remembered(model, table, where, problems, i, interned, keys[i])
                        else:
                            record = from_dict(model, table, where, problems, i)
                            if record is None:
                                continue
                    items.append(record)
                return tuple(items)
            for i, item in enumerate(value):
                converted = from_dict(model, item, where, problems, i)
                if converted is not None:
                    items.append(converted)
        return tuple(items)
    if kind == "strmap":
        if not isinstance(value, dict):
            problems.append(f"{where}: must be a table, not {_type_name(value)}")
            return _INVALID
        out = {}
        for key, item in value.items():
            problem = m.chk.env_name(key)
            if problem:
                problems.append(f"{where}: key {problem}")
                continue
            converted = _string(spec, item, f"{where}.{key}", problems)
            if converted is not _INVALID:
                out[key] = converted
        return out
    raise AssertionError(kind)  # pragma: no cover


_default_check = m.chk.text


def _string(spec: _Spec, value: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(value, str):
        problems.append(f"{where}: must be a string, not {_type_name(value)}")
        return _INVALID
    check = spec.check or _default_check
    problem = check(value)
    if problem:
        problems.append(f"{where}: {problem}")
        return _INVALID
    return value


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return f"a float ({value!r})"
    return {
        dict: "a table",
        list: "an array",
        int: "an integer",
        str: "a string",
    }.get(type(value), type(value).__name__)
