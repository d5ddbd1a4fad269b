"""``envlock fleet check``: every node against one reference lock, nodes with the same drift told once. Pure.

A cluster gate compares the whole node, hardware included (a node with an
older driver or another GPU is exactly what it must catch), but not the git
state of the directory the job ran in, which says nothing about the node.
Nodes whose differences are identical form one group, so a thousand nodes on
a new driver read as one line with a count.
"""

from __future__ import annotations

from envlock.diff import SECTIONS, diff, differs, section_digest
from envlock.findings import UNKNOWN, Finding
from envlock.lockfile import model as m
from envlock.records import record

CHECKED_SECTIONS = tuple(s for s in SECTIONS if s != "project")
LABELS = ("the lock", "the node")


@record
class DriftGroup:
    nodes: tuple[str, ...]
    findings: tuple[Finding, ...]  # ranked, most likely to change numbers first


@record
class FleetCheck:
    matching: tuple[str, ...]
    drifted: tuple[DriftGroup, ...]  # largest group first
    failed: dict[str, str]  # node -> why no lock arrived

    @property
    def ok(self) -> bool:
        return not self.drifted and not self.failed


def _signature(findings: list[Finding]) -> tuple:
    return tuple((f.path, f.locked, f.actual, f.status) for f in findings)


def check_nodes(reference: m.Lock, nodes: list[tuple[str, m.Lock]], failed: dict[str, str] | None = None) -> FleetCheck:
    """Compare each node's lock with ``reference``; group nodes that drifted the same way."""
    matching: list[str] = []
    groups: dict[tuple, tuple[list[str], list[Finding]]] = {}
    # A cluster's nodes mostly hold equal locks: diff each distinct one once
    # (equal section digests give equal findings, a property the N-way diff relies on too).
    seen: dict[tuple, list[Finding]] = {}
    for name, lock in nodes:
        key = tuple(section_digest(s, getattr(lock, s)) for s in CHECKED_SECTIONS)
        found = seen.get(key)
        if found is None:
            found = [f for f in diff(reference, lock, labels=LABELS, sections=CHECKED_SECTIONS) if f.status != UNKNOWN]
            seen[key] = found
        if not differs(found):
            matching.append(name)
            continue
        members, _ = groups.setdefault(_signature(found), ([], found))
        members.append(name)
    first = {key: i for i, key in enumerate(groups)}
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1][0]), first[kv[0]]))
    drifted = tuple(DriftGroup(tuple(members), tuple(found)) for _key, (members, found) in ordered)
    return FleetCheck(tuple(matching), drifted, dict(failed or {}))
