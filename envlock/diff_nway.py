"""Compare many locks at once: group machines by identical layers, show the outliers.

For a cluster's nodes or a lab's workstations, a pairwise diff of 100 locks
is unreadable.  Instead, per layer, locks are clustered by a digest of what
:func:`envlock.diff.diff_section` compares (so two locks in one group never
differ in that layer), the largest group is taken as the reference, and each
other group is explained by its diff against the reference.  Pure.
"""

from __future__ import annotations

from envlock.diff import SECTION_LAYER, SECTIONS, diff_section, ranking_key, section_digest
from envlock.findings import UNKNOWN, Finding
from envlock.lockfile import model as m
from envlock.records import field, record

REFERENCE = "majority"


@record
class Group:
    digest: str
    members: tuple[str, ...]
    # The differences of this group against the reference group (empty for the reference).
    findings: tuple[Finding, ...] = ()


@record
class LayerGroups:
    section: str
    layer: str
    groups: tuple[Group, ...]  # largest first; groups[0] is the reference
    unknown: tuple[str, ...]  # locks that do not record this layer

    @property
    def uniform(self) -> bool:
        return len(self.groups) <= 1


@record
class LockGroup:
    """Locks identical in every layer (each layer's group, or unknown, is the same for all of them)."""

    members: tuple[str, ...]
    # Every difference from the per-layer reference groups, most likely to change numbers first;
    # empty for the group that sits in the reference group of every layer it records.
    findings: tuple[Finding, ...] = ()
    outside: tuple[str, ...] = ()  # the sections where this group is outside the reference


@record
class NwayReport:
    labels: tuple[str, ...]
    layers: tuple[LayerGroups, ...]
    # Per lock, the layers where it is outside the reference group.
    outlier_layers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Whole-lock groups: the reference group (no findings) first when there is
    # one, then the outlier groups, most likely to change numbers first.
    lock_groups: tuple[LockGroup, ...] = ()

    @property
    def identical(self) -> bool:
        return all(layer.uniform for layer in self.layers)


def group_locks(locks: list[tuple[str, m.Lock]]) -> NwayReport:
    """Cluster locks per layer; explain each non-reference group against the reference."""
    labels = tuple(label for label, _lock in locks)
    layers = []
    outliers: dict[str, list[str]] = {label: [] for label in labels}
    # Per lock, the index of its group in each layer (-1: unknown there).
    placement: dict[str, list[int]] = {label: [] for label in labels}
    for section in SECTIONS:
        by_digest: dict[str, list[tuple[str, object]]] = {}
        unknown = []
        # Equal sections have equal digests, and a cluster's locks mostly hold
        # equal sections: comparing a section with one seen before is far
        # cheaper than digesting it (the loader makes identical package
        # tables one record, so the comparison is mostly by identity).
        digests: dict[object, str | None] = {}
        for label, lock in locks:
            value = getattr(lock, section)
            try:
                digest = digests[value]
            except KeyError:
                digest = digests[value] = section_digest(section, value)
            except TypeError:  # a section holding a dict (runtime.env) has no hash
                digest = section_digest(section, value)
            if digest is None:
                unknown.append(label)
                continue
            by_digest.setdefault(digest, []).append((label, value))
        # Largest group first; ties go to the group seen first, so the order is stable.
        first_seen = {digest: i for i, digest in enumerate(by_digest)}
        ordered = sorted(by_digest.items(), key=lambda kv: (-len(kv[1]), first_seen[kv[0]]))
        groups = []
        reference = ordered[0][1][0][1] if ordered else None
        for label in unknown:
            placement[label].append(-1)
        for i, (digest, members) in enumerate(ordered):
            names = tuple(label for label, _value in members)
            for name in names:
                placement[name].append(i)
            findings: tuple[Finding, ...] = ()
            if i > 0:
                found = diff_section(section, reference, members[0][1], labels=(REFERENCE, "this group"))
                findings = tuple(sorted(found, key=ranking_key))
                for name in names:
                    outliers[name].append(section)
            groups.append(Group(digest, names, findings))
        layers.append(LayerGroups(section, SECTION_LAYER[section], tuple(groups), tuple(unknown)))
    return NwayReport(
        labels, tuple(layers), {k: tuple(v) for k, v in outliers.items() if v}, _lock_groups(labels, layers, placement)
    )


def _lock_groups(
    labels: tuple[str, ...], layers: list[LayerGroups], placement: dict[str, list[int]]
) -> tuple[LockGroup, ...]:
    """Locks grouped by their place in every layer; each group's findings gathered from its layers."""
    by_place: dict[tuple[int, ...], list[str]] = {}
    for label in labels:
        by_place.setdefault(tuple(placement[label]), []).append(label)
    groups = []
    for place, members in by_place.items():
        findings: list[Finding] = []
        outside = []
        for layer, index in zip(layers, place, strict=True):
            if index > 0:
                outside.append(layer.section)
                findings.extend(layer.groups[index].findings)
        findings.sort(key=ranking_key)
        groups.append(LockGroup(tuple(members), tuple(findings), tuple(outside)))
    first = {group.members[0]: i for i, group in enumerate(groups)}

    def order(group: LockGroup) -> tuple:
        real = [f for f in group.findings if f.status != UNKNOWN]
        worst = ranking_key(real[0]) if real else ()
        # The reference group first, then the outliers by their worst difference, larger groups first on a tie.
        return (bool(group.outside), worst, -len(group.members), first[group.members[0]])

    return tuple(sorted(groups, key=order))


def real_findings(group: Group) -> list[Finding]:
    return [f for f in group.findings if f.status != UNKNOWN]
