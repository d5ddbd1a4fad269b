"""The verdict of a report, computed before anything is drawn (pure).

Every report (replay, verify, check, doctor, diff) opens with one line per
layer whose counts add up: ``Python: 14/14 packages identical; interpreter
3.11.2, locked 3.11.7``.  The counts are of *items* (packages, CUDA
components, variables), found from the findings' paths, never of findings:
a layer with 98 packages can never report "99 of 98", however many findings
name the same package or talk about the layer as a whole (its release, its
glibc), which go into the line's remarks instead.

Findings with one cause and one fix (98 OS packages "not installed: the OS
release of the base image differs") become one :class:`FindingGroup` that
lists its items; a terminal shows the count and the first few names, JSON
and Markdown list every item.
"""

from __future__ import annotations

import re

from envlock.findings import (
    BLOCKER,
    EXACT,
    INFO,
    NOT_REPRODUCIBLE,
    NUMERIC,
    UNKNOWN,
    Finding,
    sort_findings,
)
from envlock.names import canonical_name
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable, Sequence

    from envlock.lockfile import model as m

# Report layers, the lock section each counts, what its items are called.
ITEM_LAYERS = (
    ("python", "Python", "packages"),
    ("conda", "conda", "packages"),
    ("os", "OS", "packages"),
    ("cuda", "CUDA", "components"),
    ("runtime", "runtime", "variables"),
)
HOST_LAYERS = ("gpu", "driver", "cpu", "host")

# A finding's path names one item of a layer ...
# One pattern for all of them (one match per finding: a diff can have 5,000).
_ITEM_PATH = re.compile(
    r"(?:python\.packages\[|conda\.packages\[|os\.packages\[|cuda\.components\[|runtime\.env[.\[])"
    r"(?P<name>[^\]:]+)"
)
_CUDA_SHORT = re.compile(r"cuda\.([A-Za-z0-9_+-]+)")
# ... or speaks of the layer as a whole (its interpreter, release, glibc).
_LAYER_OF_PATH = {
    "python": "python",
    "conda": "conda",
    "os": "os",
    "cuda": "cuda",
    "runtime": "runtime",
}
_REMARK_NAMES = {
    "python.version": "interpreter",
    "python.implementation": "implementation",
    "os.release": "release",
    "os.glibc": "glibc",
    "os.libstdcxx": "libstdc++",
    "os.id": "distribution",
    "os.version-id": "release",
}


def item_of(path: str, cuda_names: frozenset[str] = frozenset()) -> tuple[str, str] | None:
    """(layer, item name) for a finding's path that names one item, else None (pure).

    The planner writes ``os.packages[jq]`` and ``cuda.cudart``, the diff
    ``os.packages[jq:amd64]`` and ``cuda.components[cudart]``: both name the
    same item.  Anything after the item (``python.packages[numpy].files``) is
    a detail of that item.
    """
    found = _ITEM_PATH.match(path)
    if found:
        layer = path[: path.index(".")]  # the section the path starts with is the layer
        name = found.group("name")
        if layer == "runtime":
            name = name.split(".", 1)[0]
        return layer, canonical_name(name) if layer in ("python", "conda") else name
    found = _CUDA_SHORT.fullmatch(path)
    if found and found.group(1) in cuda_names:
        return "cuda", found.group(1)
    return None


def is_mismatch(item: Finding) -> bool:
    """A finding that keeps two sides from being the same (info notes and unknowns do not)."""
    return item.status not in (EXACT, UNKNOWN) and item.severity != INFO


# --- layer lines ---------------------------------------------------------------------


@record
class LayerVerdict:
    """One layer's line: its items sorted into buckets that add up to ``total``."""

    layer: str  # python / conda / os / cuda / runtime
    title: str  # Python / conda / OS / CUDA / runtime
    noun: str  # packages / components / variables
    locked: bool  # the (first) lock records this layer
    identical: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # on both sides, different
    missing: tuple[str, ...] = ()  # locked (A), not on the other side
    added: tuple[str, ...] = ()  # on the other side only
    remarks: tuple[str, ...] = ()  # about the layer as a whole: "interpreter 3.11.2, locked 3.11.7"
    remark_mismatch: bool = False
    only_in: str | None = None  # a diff where one side does not record the layer: not compared

    @property
    def total(self) -> int:
        return len(self.identical) + len(self.changed) + len(self.missing)

    @property
    def status(self) -> str:
        if not self.locked:
            return "not-locked"
        if self.only_in is not None:
            return UNKNOWN
        if self.missing:
            return NOT_REPRODUCIBLE
        if self.changed or self.added or self.remark_mismatch:
            return "differs"
        return EXACT


@record
class HostVerdict:
    """The hardware line: checks of this host against the lock (``checked`` False: none were made)."""

    checked: bool
    problems: tuple[Finding, ...] = ()
    passed: int | None = None  # number of checks that passed, where the checker counts them
    locked: bool = True


@record
class Verdict:
    layers: tuple[LayerVerdict, ...]
    host: HostVerdict | None = None
    words: tuple[str, str, str, str] = ("differ", "not reproduced", "not in the lock", "identical")
    absent: str = "not in the lock"  # how layers no side records are listed

    @property
    def exact(self) -> bool:
        return all(lv.status in (EXACT, "not-locked", UNKNOWN) for lv in self.layers) and not (
            self.host is not None and self.host.problems
        )


def layer_items(lock: m.Lock | None, layer: str, os_scope: str = "manual") -> list[str]:
    """The item names a lock records in ``layer`` (normalised like ``item_of``)."""
    if lock is None:
        return []
    section = getattr(lock, layer, None)
    if section is None:
        return []
    if layer == "python":
        return sorted({canonical_name(p.name) for p in section.packages})
    if layer == "conda":
        return sorted({canonical_name(p.name) for p in section.packages})
    if layer == "os":
        packages = section.packages if os_scope == "all" else [p for p in section.packages if p.manual]
        return sorted({p.name for p in packages})
    if layer == "cuda":
        return sorted({c.name for c in section.components})
    if layer == "runtime":
        return sorted(section.env)
    return []


def compute_verdict(
    lock: m.Lock,
    findings: Iterable[Finding],
    *,
    other: m.Lock | None = None,
    os_scope: str = "manual",
    host: HostVerdict | None = None,
    words: tuple[str, str, str, str] = ("differ", "not reproduced", "not in the lock", "identical"),
    sides: tuple[str, str] = ("A", "B"),
) -> Verdict:
    """Layer lines for ``lock`` (side A) against what ``findings`` say about the other side (pure).

    ``other`` (side B, when there is one: a diff's second lock) adds its items
    to the universe, so that "only in B" items are counted too.  Host-layer
    findings are not counted here; ``host`` carries them.
    """
    findings = [f for f in findings if f.layer not in HOST_LAYERS]
    cuda_names = frozenset(layer_items(lock, "cuda")) | frozenset(layer_items(other, "cuda"))
    per_layer: dict[str, dict[str, Finding]] = {}
    remarks: dict[str, list[Finding]] = {}
    for item in findings:
        if not is_mismatch(item):
            continue
        found = item_of(item.path, cuda_names)
        if found is None:
            layer = _LAYER_OF_PATH.get(item.path.split(".", 1)[0].split("[", 1)[0])
            if layer is not None:
                remarks.setdefault(layer, []).append(item)
            continue
        layer, name = found
        per_layer.setdefault(layer, {}).setdefault(name, item)
    out = []
    for layer, title, noun in ITEM_LAYERS:
        mine = set(layer_items(lock, layer, os_scope))
        theirs = set(layer_items(other, layer, os_scope)) if other is not None else set()
        bad = per_layer.get(layer, {})
        changed: list[str] = []
        missing: list[str] = []
        added: list[str] = []
        for name, item in sorted(bad.items()):
            if name in mine:
                gone = item.status == NOT_REPRODUCIBLE or (
                    item.actual is None and (other is None or name not in theirs)
                )
                (missing if gone else changed).append(name)
            else:
                added.append(name)
        added += sorted(theirs - mine - set(bad)) if other is not None else []
        identical = sorted(mine - set(changed) - set(missing))
        layer_remarks = remarks.get(layer, [])
        section_locked = getattr(lock, layer, None) is not None
        if other is not None and section_locked != (getattr(other, layer, None) is not None):
            side = sides[0] if section_locked else sides[1]
            out.append(LayerVerdict(layer=layer, title=title, noun=noun, locked=True, only_in=side))
            continue
        out.append(
            LayerVerdict(
                layer=layer,
                title=title,
                noun="hand-installed packages" if layer == "os" and os_scope == "manual" else noun,
                locked=section_locked or (other is not None and getattr(other, layer, None) is not None),
                identical=tuple(identical),
                changed=tuple(changed),
                missing=tuple(missing),
                added=tuple(sorted(set(added))),
                remarks=tuple(_remark(f) for f in layer_remarks) or _quiet_remarks(lock, layer),
                remark_mismatch=bool(layer_remarks),
            )
        )
    return Verdict(
        layers=tuple(out), host=host, words=words, absent="in neither lock" if other is not None else "not in the lock"
    )


def _remark(item: Finding) -> str:
    name = _REMARK_NAMES.get(item.path, item.path.split(".", 1)[-1])
    if item.actual and item.locked:
        return f"{name} {item.actual}, locked {item.locked}"
    if item.locked:
        return f"{name} {item.locked} locked, not reproduced"
    if item.actual:
        return f"{name} {item.actual}, not in the lock"
    return f"{name}: {item.message}"


def _quiet_remarks(lock: m.Lock, layer: str) -> tuple[str, ...]:
    """What a matching layer's line still says: the interpreter, the release."""
    if layer == "python" and lock.python is not None and lock.python.version:
        return (f"interpreter {lock.python.version}",)
    if layer == "os" and lock.os is not None and (lock.os.id or lock.os.version_id):
        return (f"release {' '.join(x for x in (lock.os.id, lock.os.version_id) if x)}",)
    return ()


def layer_line(lv: LayerVerdict, words: Sequence[str], *, symmetric: bool = False) -> str:
    """``Python: 14/14 packages identical; interpreter 3.11.7`` (the counts add up to the denominator).

    ``symmetric`` (a diff of two locks): the denominator is every item either
    side has, so "only in B" is one of the parts; otherwise items the other
    side adds are counted after the line ("+2 not in the lock").
    """
    differ, missing_word, added_word, same_word = words
    if not lv.locked:
        return f"{lv.title}: not in the lock"
    if lv.only_in is not None:
        return f"{lv.title}: recorded only in {lv.only_in}, not compared"
    total = lv.total + (len(lv.added) if symmetric else 0)
    if total == 0:
        text = f"{lv.title}: no {lv.noun}"
    else:
        text = f"{lv.title}: {len(lv.identical)}/{total} {lv.noun} {same_word}"
    parts = []
    if lv.changed:
        parts.append(f"{len(lv.changed)} {differ}")
    if lv.missing:
        parts.append(f"{len(lv.missing)} {missing_word}")
    if lv.added and symmetric:
        parts.append(f"{len(lv.added)} {added_word}")
    if parts:
        text += f" ({', '.join(parts)})"
    if lv.added and not symmetric:
        text += f"; +{len(lv.added)} {added_word}"
    if lv.remarks:
        text += "; " + "; ".join(lv.remarks)
    return text


def host_line(host: HostVerdict) -> str:
    if not host.locked:
        return "host: the lock records no hardware"
    if not host.checked:
        return "host: not checked yet (verify compares this host's driver, GPUs and CPU with the lock)"
    where = ", ".join(sorted({f.layer for f in host.problems}))
    if host.passed is not None:
        total = host.passed + len(host.problems)
        text = f"host: {host.passed}/{total} checks passed"
        return text + (f" ({len(host.problems)} failed: {where})" if host.problems else "")
    if not host.problems:
        return "host: driver, GPUs and CPU flags match the lock"
    count = len(host.problems)
    return f"host: {count} hardware difference{'s' if count != 1 else ''} ({where})"


def headline(verdict: Verdict, subject: str, *, exact_text: str, planned: bool = False) -> str:
    """One sentence: does it match, and where not (the layer lines give the counts)."""
    off = [lv.title for lv in verdict.layers if lv.status not in (EXACT, "not-locked")]
    if verdict.host is not None and verdict.host.problems:
        off.append("host")
    if not off:
        return f"verdict: {exact_text}"
    verb = "will differ" if planned else "differ"
    return f"verdict: {subject} {verb} in {len(off)} layer{'s' if len(off) != 1 else ''} ({', '.join(off)})"


# --- grouping ------------------------------------------------------------------------


@record
class FindingGroup:
    """Findings with one cause and one fix, told once; ``items`` are the findings it stands for."""

    head: Finding  # the first item; its severity, why and fix are the group's
    items: tuple[Finding, ...]
    title: str  # "98 OS packages not installed: the lock is from debian 12 and the base image is ubuntu 22.04"
    names: tuple[str, ...]  # one per item, in order

    @property
    def count(self) -> int:
        return len(self.items)


_FAMILY_NOUN = {
    "python": "Python packages",
    "conda": "conda packages",
    "os": "OS packages",
    "cuda": "CUDA components",
    "runtime": "variables",
}
_LEADING_VERB = re.compile(r"(?:is|are|was|were)\s+")


# What may stand around an item's own words in a message: "numpy:", "'8'", "(curl)".
_AROUND = ",;()[]'\""


def _cause(item: Finding, name: str) -> str:
    """The message with the item's own words (its name, versions) taken out: what items of one cause share.

    Only whole words are taken out: the package ``ed`` must not take the "ed"
    out of "installed".  Most messages begin with the item's name, which is
    cut off; its versions are then replaced as text (C-speed ``str.replace``:
    a diff of 5,000 changed packages groups in a few milliseconds).  Other
    messages are looked at word by word.
    """
    raw = item.path[item.path.find("[") + 1 : item.path.find("]")] if "[" in item.path else None
    text = item.message
    for word in sorted({w for w in (raw, name) if w}, key=len, reverse=True):
        if text.startswith(word) and not text[len(word) : len(word) + 1].isalnum():
            text = "\x00" + text[len(word) :]
            for value in sorted({v for v in (item.locked, item.actual) if v}, key=len, reverse=True):
                text = text.replace(value, "\x00")
            return text
    words = {w for w in (raw, name, item.locked, item.actual) if w}
    for word in sorted((w for w in words if " " in w), key=len, reverse=True):
        text = text.replace(word, "\x00")
    parts = text.split(" ")
    for index, part in enumerate(parts):
        for core in (part.strip(_AROUND), part.strip(_AROUND + ":.")):
            if core in words:
                parts[index] = part.replace(core, "\x00", 1)
                break
    return " ".join(parts)


def group_findings(
    findings: Iterable[Finding],
    *,
    minimum: int = 2,
    sides: tuple[str, str] | None = None,
    ordered: bool = False,
) -> list[FindingGroup]:
    """Findings in report order, those with one cause and one fix merged into groups (pure).

    Two findings share a cause when they are about items of the same layer,
    with the same severity, status, rank, why and fix, and their messages are
    the same once the item's name and versions are taken out.  Every finding
    ends up in exactly one group; a group of one is the finding itself.
    """
    # ``ordered``: the caller's order is the report's (a diff's ranking); else the findings' own.
    ordered_findings = list(findings) if ordered else sort_findings(list(findings))
    buckets: dict[tuple, list[tuple[Finding, str]]] = {}
    order: list[tuple] = []
    for index, item in enumerate(ordered_findings):
        found = item_of(
            item.path, frozenset({item.path.split(".", 1)[-1]}) if item.path.startswith("cuda.") else frozenset()
        )
        if found is None:
            key: tuple = ("single", index)
            name = item.path
        else:
            layer, name = found
            family = item.path.split("[", 1)[0] if "[" in item.path else layer
            key = (family, item.layer, item.severity, item.status, item.rank, item.why, item.fix, _cause(item, name))
        if key not in buckets:
            buckets[key] = []
            order.append(key)
        buckets[key].append((item, name))
    groups: list[FindingGroup] = []
    for key in order:
        members = buckets[key]
        if len(members) < minimum:
            groups.extend(_single(item, name) for item, name in members)
            continue
        items = tuple(item for item, _ in members)
        names = tuple(name for _, name in members)
        title = _group_title(items[0], key, len(items), sides)
        groups.append(FindingGroup(head=items[0], items=items, title=title, names=names))
    return groups


def _single(item: Finding, name: str) -> FindingGroup:
    return FindingGroup(head=item, items=(item,), title=item.message, names=(name,))


def _group_title(head: Finding, key: tuple, count: int, sides: tuple[str, str] | None = None) -> str:
    found = item_of(head.path, frozenset({head.path.split(".", 1)[-1]}))
    noun = _FAMILY_NOUN.get(found[0] if found else "", "items")
    cause = key[-1].replace("\x00 ", "\x00").lstrip("\x00 ")
    cause = _LEADING_VERB.sub("", cause, count=1) if _LEADING_VERB.match(cause) else cause
    if "\x00" in cause or not cause:
        # The message still needs each item's own values: say what kind of difference it is.
        if head.locked and head.actual:
            cause = "at other versions" if "packages" in key[0] else "with other values"
        elif head.locked:
            cause = f"only in {sides[0]}" if sides else "missing"
        else:
            cause = f"only in {sides[1]}" if sides else "not in the lock"
    return f"{count} {noun} {cause}"


def item_label(item: Finding, name: str) -> str:
    """One item of a group as a reader wants it: ``curl 7.88.1-10`` or ``numpy 1.26.4 → 1.25.2``."""
    if item.locked and item.actual and item.locked != item.actual:
        return f"{name} {item.locked} → {item.actual}"
    value = item.locked or item.actual
    return f"{name} {value}" if value else name


def split_by_impact(
    groups: Sequence[FindingGroup],
) -> tuple[list[FindingGroup], list[FindingGroup], list[FindingGroup]]:
    """(those that may change numbers, the other mismatches, notes): the report's three parts after the verdict."""
    numbers, rest, notes = [], [], []
    for group in groups:
        head = group.head
        if head.severity == INFO or head.status in (EXACT, UNKNOWN):
            notes.append(group)
        elif head.severity in (BLOCKER, NUMERIC):
            numbers.append(group)
        else:
            rest.append(group)
    return numbers, rest, notes


# --- checks (doctor) ---------------------------------------------------------------------

_CHECK_LAYER_TITLES = {
    "driver": "driver",
    "gpu": "GPUs",
    "cpu": "CPU",
    "cuda": "CUDA",
    "os": "C runtimes",
    "host": "host",
}


def check_lines(findings: Iterable[Finding]) -> list[str]:
    """One line per layer of rule checks: ``GPUs: 1/2 checks passed (1 blocker)`` (pure).

    A check passed when its finding is exact; the failed ones are counted by
    severity, so the parts add up to the checks that did not pass.
    """
    per_layer: dict[str, list[Finding]] = {}
    for item in findings:
        if item.status != EXACT and item.severity == INFO:
            continue  # a note (a file that could not be read), not a check
        per_layer.setdefault(item.layer, []).append(item)
    lines = []
    order = {name: index for index, name in enumerate(_CHECK_LAYER_TITLES)}
    for layer, items in sorted(per_layer.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])):
        passed = sum(1 for f in items if f.status == EXACT)
        failed: dict[str, int] = {}
        for f in items:
            if f.status != EXACT:
                failed[f.severity] = failed.get(f.severity, 0) + 1
        text = f"{_CHECK_LAYER_TITLES.get(layer, layer)}: {passed}/{len(items)} checks passed"
        if failed:
            parts = sorted(failed.items(), key=lambda kv: _SEVERITY_RANK.get(kv[0], 9))
            text += " (" + ", ".join(f"{n} {severity}" for severity, n in parts) + ")"
        lines.append(text)
    return lines


_SEVERITY_RANK = {BLOCKER: 0, NUMERIC: 1, "differs": 2, INFO: 3}
