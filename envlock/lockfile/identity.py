"""A lock's identity: the canonical JSON its fingerprint covers, and the fingerprint."""

from __future__ import annotations

import hashlib
import json

from envlock import records
from envlock.lockfile import model as m
from envlock.lockfile.codec import data_key, to_dict

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import Any


def canonical_json(lock: m.Lock) -> str:
    """The content that the fingerprint covers: everything but the creation time."""
    data = to_dict(lock)
    for attr in m.FINGERPRINT_EXCLUDED:
        data.pop(data_key(attr), None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(lock: m.Lock) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(lock).encode("utf-8")).hexdigest()


def fingerprint_of_data(data: dict[str, Any]) -> str:
    """The fingerprint of a lock document as parsed from TOML (see ``canonical_json``)."""
    excluded = {data_key(attr) for attr in m.FINGERPRINT_EXCLUDED}
    content = {k: v for k, v in data.items() if k not in excluded}
    # The same text as canonical_json's; a parsed document cannot refer to
    # itself, so the encoder's cycle check (10% of its time) is left out.
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def with_fingerprint(lock: m.Lock) -> m.Lock:
    return records.replace(lock, fingerprint=fingerprint(lock))
