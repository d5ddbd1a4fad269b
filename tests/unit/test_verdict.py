"""The verdict lines and finding groups every report opens with (envlock.verdict).

The property tests build a lock and findings whose true counts the test knows
(it chose which item is changed, missing or added), then check that every
count the verdict prints equals the number of items it summarises.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from envlock.findings import DIFFERS, EXACT, INFO, NOT_REPRODUCIBLE, NUMERIC, Finding
from envlock.lockfile import model as m
from envlock.verdict import compute_verdict, group_findings, item_label, layer_line

WORDS = ("differ", "not reproduced", "not in the lock", "identical")
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=2, max_size=8)


def _lock(python: list[str], os_packages: list[tuple[str, bool]]) -> m.Lock:
    return m.Lock(
        python=m.PythonSection(
            version="3.11.7", packages=tuple(m.PythonPackage(name=n, version="1.0") for n in python)
        ),
        os=m.OsSection(
            id="debian",
            version_id="12",
            packages=tuple(m.OsPackage(name=n, version="1-1", manual=manual) for n, manual in os_packages),
        ),
    )


def _numbers(line: str) -> tuple[int, int, dict[str, int]]:
    """(identical, denominator, {word: count}) as printed, parsed back from the text."""
    head = re.search(r": (\d+)/(\d+) ", line)
    assert head, line
    parts = {}
    inside = re.search(r"\(([^)]*)\)", line)
    if inside:
        for part in inside.group(1).split(", "):
            count, word = part.split(" ", 1)
            parts[word] = int(count)
    added = re.search(r"; \+(\d+) not in the lock", line)
    if added:
        parts["+not in the lock"] = int(added.group(1))
    return int(head.group(1)), int(head.group(2)), parts


@st.composite
def scenarios(draw):
    python = sorted(draw(st.sets(NAMES, max_size=12)))
    os_names = sorted(draw(st.sets(NAMES, max_size=30)))
    os_packages = [(n, draw(st.booleans())) for n in os_names]
    fate = st.sampled_from(("same", "changed", "missing"))
    python_fate = {n: draw(fate) for n in python}
    os_fate = {n: draw(fate) for n, manual in os_packages if manual}
    extra = sorted(draw(st.sets(NAMES, max_size=4)) - set(python))
    return python, os_packages, python_fate, os_fate, extra, draw(st.booleans())


def _findings(python_fate, os_fate, extra, interpreter_differs):
    out = []
    for name, fate in python_fate.items():
        if fate == "changed":
            out.append(
                Finding(
                    "python",
                    f"python.packages[{name}]",
                    NUMERIC,
                    f"{name} 2.0 instead of 1.0",
                    locked="1.0",
                    actual="2.0",
                )
            )
        elif fate == "missing":
            out.append(
                Finding(
                    "python",
                    f"python.packages[{name}]",
                    NUMERIC,
                    f"{name} is missing",
                    locked="1.0",
                    status=NOT_REPRODUCIBLE,
                )
            )
    for name, fate in os_fate.items():
        if fate == "missing":
            # the planner and the diff both report it, under two spellings of one place
            out.append(
                Finding(
                    "os",
                    f"os.packages[{name}]",
                    DIFFERS,
                    f"{name} 1-1 is not installed: other release",
                    locked="1-1",
                    status=NOT_REPRODUCIBLE,
                )
            )
            out.append(
                Finding("os", f"os.packages[{name}:amd64]", DIFFERS, f"{name}:amd64 1-1 only in lock", locked="1-1")
            )
        elif fate == "changed":
            out.append(
                Finding(
                    "os",
                    f"os.packages[{name}:amd64]",
                    DIFFERS,
                    f"{name} 1-2 instead of 1-1",
                    locked="1-1",
                    actual="1-2",
                )
            )
    for name in extra:
        out.append(
            Finding("python", f"python.packages[{name}]", DIFFERS, f"{name} is installed but not locked", actual="0.1")
        )
    # findings about a layer as a whole are remarks, never items
    out.append(
        Finding("os", "os.release", DIFFERS, "OS release: ubuntu 22.04", locked="debian 12", actual="ubuntu 22.04")
    )
    out.append(Finding("os", "os.packages", INFO, "3 packages come with the base image", status="differs"))
    if interpreter_differs:
        out.append(Finding("python", "python.version", DIFFERS, "interpreter 3.11.2", locked="3.11.7", actual="3.11.2"))
    out.append(Finding("python", "python.packages", INFO, "installed hash-pinned", status=EXACT))
    return out


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_every_count_equals_the_number_of_items_it_summarises(scenario):
    python, os_packages, python_fate, os_fate, extra, interpreter_differs = scenario
    lock = _lock(python, os_packages)
    verdict = compute_verdict(lock, _findings(python_fate, os_fate, extra, interpreter_differs))
    layers = {lv.layer: lv for lv in verdict.layers}
    for layer, fates in (("python", python_fate), ("os", os_fate)):
        lv = layers[layer]
        expected = {kind: sorted(n for n, f in fates.items() if f == kind) for kind in ("same", "changed", "missing")}
        assert list(lv.identical) == expected["same"]
        assert list(lv.changed) == expected["changed"]
        assert list(lv.missing) == expected["missing"]
        line = layer_line(lv, WORDS)
        if not fates:
            assert ": no " in line
            continue
        identical, denominator, parts = _numbers(line)
        assert identical == len(expected["same"])
        assert denominator == len(fates)  # the OS line counts hand-installed packages only
        assert parts.get("differ", 0) == len(expected["changed"])
        assert parts.get("not reproduced", 0) == len(expected["missing"])
        assert identical + parts.get("differ", 0) + parts.get("not reproduced", 0) == denominator
    assert list(layers["python"].added) == extra
    assert _numbers(layer_line(layers["python"], WORDS))[2].get("+not in the lock", 0) == len(extra) if python else True
    assert ("interpreter 3.11.2, locked 3.11.7" in layers["python"].remarks) == interpreter_differs
    assert layers["os"].remarks == ("release ubuntu 22.04, locked debian 12",)


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_every_group_count_equals_its_items(scenario):
    python, os_packages, python_fate, os_fate, extra, interpreter_differs = scenario
    findings = _findings(python_fate, os_fate, extra, interpreter_differs)
    groups = group_findings(findings)
    members = [item for group in groups for item in group.items]
    assert sorted(members, key=repr) == sorted(findings, key=repr)  # each finding in exactly one group
    for group in groups:
        assert group.count == len(group.items) == len(group.names)
        if group.count > 1:
            assert group.title.startswith(f"{group.count} ")
            assert len({(f.severity, f.status, f.why, f.fix) for f in group.items}) == 1
    missing_os = [g for g in groups if g.title.endswith("not installed: other release")]
    want = sum(1 for f in os_fate.values() if f == "missing")
    if want >= 2:
        assert [g.count for g in missing_os] == [want]


def test_ninety_eight_packages_of_one_cause_are_one_group_and_never_99_of_98():
    # issue 19: a --base-image whose release was not known reported "99 of 98" and 98 findings.
    names = [f"pkg{i:03d}" for i in range(98)]
    lock = _lock([], [(n, True) for n in names])
    why_not = "the OS release of the --base-image could not be read before planning"
    findings = [
        Finding(
            "os",
            f"os.packages[{n}]",
            DIFFERS,
            f"{n} 1-1 is not installed: {why_not}",
            fix="install it in a Dockerfile FROM the replayed image",
            locked="1-1",
            status=NOT_REPRODUCIBLE,
            rank=160,
        )
        for n in names
    ]
    findings.append(Finding("os", "os.glibc", DIFFERS, "glibc of the base image", locked="2.36", status="differs"))
    os_line = layer_line(next(lv for lv in compute_verdict(lock, findings).layers if lv.layer == "os"), WORDS)
    assert os_line.startswith("OS: 0/98 hand-installed packages identical (98 not reproduced); glibc")
    groups = group_findings(findings)
    assert len(groups) == 2
    big = next(g for g in groups if g.count > 1)
    assert big.title == f"98 OS packages not installed: {why_not}"
    assert big.names == tuple(names)
    assert item_label(big.items[0], big.names[0]) == "pkg000 1-1"


def test_a_diff_counts_both_sides_and_layers_one_side_lacks():
    a = _lock(["numpy", "six", "idna"], [("curl", True)])
    b = m.Lock(
        python=m.PythonSection(
            version="3.11.7",
            packages=(m.PythonPackage(name="numpy", version="2.0"), m.PythonPackage(name="torch", version="2.3")),
        )
    )
    findings = [
        Finding(
            "framework", "python.packages[numpy]", NUMERIC, "numpy: 1.0 in A, 2.0 in B", locked="1.0", actual="2.0"
        ),
        Finding("python", "python.packages[six]", DIFFERS, "six 1.0 only in A", locked="1.0"),
        Finding("python", "python.packages[idna]", DIFFERS, "idna 1.0 only in A", locked="1.0"),
        Finding("framework", "python.packages[torch]", NUMERIC, "torch 2.3 only in B", actual="2.3"),
    ]
    words = ("differ", "only in A", "only in B", "identical")
    verdict = compute_verdict(a, findings, other=b, os_scope="all", words=words)
    lines = {lv.layer: layer_line(lv, words, symmetric=True) for lv in verdict.layers}
    assert lines["python"] == "Python: 0/4 packages identical (1 differ, 2 only in A, 1 only in B); interpreter 3.11.7"
    assert lines["os"] == "OS: recorded only in A, not compared"


def test_missing_os_packages_from_the_image_report_are_one_group():
    """`make demo` listed 28 OS packages the archives no longer have one by one: each fix named its package."""
    import json

    from envlock.replay.os_report import REPORT_SCHEMA, os_report_findings

    missing = [("curl", "7.88.1-10+deb12u14"), ("jq", "1.6-2.1+deb12u1"), ("xz-utils", "5.4.1-1")]
    report = {
        "schema": REPORT_SCHEMA,
        "packages": [
            {"name": n, "locked": v, "installed": None, "available": [], "status": "missing"} for n, v in missing
        ]
        + [{"name": "tree", "locked": "2.1.0-1", "installed": "2.1.0-1", "available": [], "status": "exact"}],
        "errors": [],
        "fallbacks": ["snapshot"],
    }
    findings = os_report_findings(json.dumps(report), "bookworm")
    groups = [g for g in group_findings(findings) if g.count > 1]
    assert len(groups) == 1
    assert groups[0].names == ("curl", "jq", "xz-utils")
    assert groups[0].title == (
        "3 OS packages not installed: neither the mirror nor the snapshot archive at the lock's time has it"
    )
