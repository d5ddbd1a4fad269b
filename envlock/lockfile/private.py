"""Clear the fields a lock must not carry off the machine (GPU UUIDs and serials)."""

from __future__ import annotations

from functools import cache

from envlock import records
from envlock.lockfile.codec import field_specs

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import Any


@cache
def _has_private(cls: type) -> bool:
    """Whether ``cls`` or any model inside it has a private field (only GPUs do)."""
    return any(spec.private or (spec.model is not None and _has_private(spec.model)) for spec in field_specs(cls))


def strip_private(obj: Any) -> Any:
    """A copy of a model with every ``private`` field cleared (GPU UUIDs and serials)."""
    if obj is None or not records.is_record(obj) or not _has_private(obj.__class__):
        return obj
    changes: dict[str, Any] = {}
    for spec in field_specs(obj.__class__):
        value = getattr(obj, spec.attr)
        if spec.private and value is not None:
            changes[spec.attr] = None
        elif spec.kind == "model" and value is not None:
            changes[spec.attr] = strip_private(value)
        elif spec.kind == "models" and value and spec.model is not None and _has_private(spec.model):
            changes[spec.attr] = tuple(strip_private(item) for item in value)
    return records.replace(obj, **changes) if changes else obj
