"""Value records: the part of ``dataclasses`` that envlock uses, without its start-up cost.

Every envlock command builds its classes before it does any work, and most
commands are expected to finish in a fraction of a second (capture within half
of ``pip freeze``).  The standard ``dataclasses`` module costs about 15 ms to
import (it imports ``inspect``, which imports ``ast`` and ``dis``) and about
0.9 ms per class, because it compiles six or more methods for each one; with
the lock model and the probes' own classes that was 40 ms of a 0.25 s capture
(measured with ``-X importtime`` on this project's 2-core machine).

``@record`` compiles one method per class, ``__init__`` (the one that runs per
instance, so it must be straight-line code), and shares generic ``__eq__``,
``__hash__``, ``__repr__`` and pickling support built on an ``attrgetter``.
Records are slotted; frozen ones (the default) refuse attribute assignment.
The spelling follows ``dataclasses`` (``field(default_factory=...)``,
``replace``, ``fields``) so that the code reads the same.
"""

from __future__ import annotations

from operator import attrgetter

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable
    from typing import Any, TypeVar

    # PEP 681: type checkers read ``@record`` classes as they read dataclasses
    # (their __init__, frozenness, field(...) defaults).  typing has it from
    # 3.11 only; typing_extensions ships with every type checker.
    from typing_extensions import dataclass_transform

    _T = TypeVar("_T")
else:
    # At run time the marker would only set an attribute that nothing reads: no import, no cost.
    def dataclass_transform(**_options):
        return _unchanged

    def _unchanged(function):
        return function


__all__ = ["Field", "FrozenRecordError", "MISSING", "field", "fields", "is_record", "record", "replace", "values"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenRecordError(AttributeError):
    """Raised on an attempt to change a field of a frozen record."""


class Field:
    """One declared field: its name, annotation (as written), default and metadata."""

    __slots__ = ("name", "type", "default", "default_factory", "metadata", "compare", "repr")

    def __init__(
        self,
        *,
        default: Any = MISSING,
        default_factory: Callable[[], Any] | Any = MISSING,
        metadata: dict[str, Any] | None = None,
        compare: bool = True,
        repr: bool = True,  # noqa: A002 - the dataclasses spelling
    ) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("a field cannot have both a default and a default_factory")
        self.name = ""
        self.type = ""
        self.default = default
        self.default_factory = default_factory
        self.metadata = metadata or {}
        self.compare = compare
        self.repr = repr

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, type={self.type!r}, default={self.default!r})"


# ``field(default=..., default_factory=..., metadata=...)`` in a class body, as with dataclasses.
if TYPE_CHECKING:
    # What a type checker sees: the value of the field, not a Field (as dataclasses.field is typed).
    def field(
        *,
        default: Any = MISSING,
        default_factory: Callable[[], Any] | Any = MISSING,
        metadata: dict[str, Any] | None = None,
        compare: bool = True,
        repr: bool = True,  # noqa: A002 - the dataclasses spelling
    ) -> Any: ...
else:
    field = Field


@dataclass_transform(frozen_default=True, field_specifiers=(Field, field))
def record(cls: type | None = None, /, *, frozen: bool = True) -> Any:
    """Make ``cls`` a slotted record of its annotated fields (frozen unless ``frozen=False``)."""

    def wrap(cls: type) -> type:
        return _build(cls, frozen)

    return wrap if cls is None else wrap(cls)


def fields(record_or_class: Any) -> tuple[Field, ...]:
    try:
        return record_or_class.__record_fields__
    except AttributeError:
        raise TypeError(f"{record_or_class!r} is not a record") from None


def is_record(obj: Any) -> bool:
    return hasattr(obj, "__record_fields__")


def values(obj: Any) -> dict[str, Any]:
    """The record's fields as a dict (not recursive)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of ``obj`` with the given fields changed."""
    current = values(obj)
    unknown = set(changes) - current.keys()
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {sorted(unknown)[0]!r}")
    current.update(changes)
    return type(obj)(**current)


# --- class construction ---------------------------------------------------------


def _build(cls: type, frozen: bool) -> type:
    annotations = cls.__dict__.get("__annotations__", {})
    namespace = dict(cls.__dict__)
    declared: list[Field] = []
    for name, annotation in annotations.items():
        if isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        default = namespace.pop(name, MISSING)
        fld = default if isinstance(default, Field) else Field(default=default)
        fld.name = name
        fld.type = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
        declared.append(fld)
    for name in ("__dict__", "__weakref__"):
        namespace.pop(name, None)
    names = tuple(f.name for f in declared)
    namespace["__slots__"] = names
    namespace["__record_fields__"] = tuple(declared)
    namespace["__record_frozen__"] = frozen
    compared = [f.name for f in declared if f.compare]
    namespace["__record_key__"] = staticmethod(attrgetter(*compared)) if compared else staticmethod(lambda obj: ())
    namespace["__eq__"] = _eq
    namespace["__repr__"] = _repr
    namespace["__reduce__"] = _reduce
    if frozen:
        namespace["__hash__"] = _hash
        namespace["__setattr__"] = _frozen_setattr
        namespace["__delattr__"] = _frozen_delattr
    else:
        namespace["__hash__"] = None  # mutable: equal records may not stay equal
    new_cls = type(cls)(cls.__name__, cls.__bases__, namespace)
    new_cls.__qualname__ = cls.__qualname__
    setattr(new_cls, "__init__", _make_init(new_cls, declared, frozen))  # noqa: B010 - assigned on the class, once
    return new_cls


def _make_init(cls: type, declared: list[Field], frozen: bool) -> Callable[..., None]:
    """Compile ``__init__`` for these fields: one straight-line assignment per field."""
    scope: dict[str, Any] = {"_MISSING": MISSING}
    params = []
    body = []
    seen_default = False
    for i, fld in enumerate(declared):
        name = fld.name
        if fld.default is not MISSING:
            scope[f"_default_{i}"] = fld.default
            params.append(f"{name}=_default_{i}")
            value = name
            seen_default = True
        elif fld.default_factory is not MISSING:
            scope[f"_factory_{i}"] = fld.default_factory
            params.append(f"{name}=_MISSING")
            value = f"_factory_{i}() if {name} is _MISSING else {name}"
            seen_default = True
        else:
            if seen_default:
                raise TypeError(f"{cls.__qualname__}.{name}: a field without a default follows one with a default")
            params.append(name)
            value = name
        if frozen:
            # The slot's own setter, which the frozen __setattr__ does not
            # guard: 30% faster than object.__setattr__(self, name, value),
            # and loading a lock builds tens of thousands of records.
            scope[f"_set_{i}"] = cls.__dict__[name].__set__
            body.append(f"    _set_{i}(self, {value})")
        else:
            body.append(f"    self.{name} = {value}")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), scope)  # noqa: S102 - generated from field names
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _eq(self: Any, other: Any) -> Any:
    if type(other) is not type(self):
        return NotImplemented
    return self.__record_key__(self) == other.__record_key__(other)


def _hash(self: Any) -> int:
    return hash(self.__record_key__(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__record_fields__ if f.repr)
    return f"{type(self).__qualname__}({shown})"


def _reduce(self: Any) -> tuple:
    # Positional arguments in field order: pickling (worker processes) and copy.copy.
    return type(self), tuple(getattr(self, f.name) for f in self.__record_fields__)


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenRecordError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenRecordError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")
