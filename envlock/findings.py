"""``Finding``: the one currency of every report (replay, verify, doctor, diff, check).

A finding says what differs, where (a path such as ``cuda.cudnn`` or
``python.packages[torch]``), how bad it is, why it can matter and how to fix it.
"""

from __future__ import annotations

from operator import attrgetter

from envlock.records import fields, record

# Severity, most serious first.
BLOCKER = "blocker"  # will not run
NUMERIC = "numeric"  # will run, numbers may differ
DIFFERS = "differs"  # differs, with no known effect on numbers
INFO = "info"

SEVERITY_ORDER = {BLOCKER: 0, NUMERIC: 1, DIFFERS: 2, INFO: 3}

# Status of a locked item after a replay or a check.
EXACT = "exact"
CHANGED = "differs"
NOT_REPRODUCIBLE = "not-reproducible"
UNKNOWN = "unknown"

# Layers in order of how likely a difference there is to change the numbers.
LAYER_ORDER = (
    "gpu",
    "driver",
    "cuda",
    "blas",
    "cpu",
    "runtime",
    "framework",
    "python",
    "conda",
    "os",
    "project",
    "host",
)


@record
class Finding:
    layer: str
    path: str
    severity: str
    message: str
    why: str | None = None
    fix: str | None = None
    locked: str | None = None
    actual: str | None = None
    status: str = CHANGED
    # Lower ranks first within a report: how likely this is to change numbers.
    rank: int = 100

    def to_dict(self) -> dict:
        return {name: value for name, value in zip(_FIELD_NAMES, _field_values(self), strict=True) if value is not None}


# All fields at once, in declaration order: a JSON report of 5,000 findings
# calls to_dict 5,000 times (18 ms with records.values, 12 ms this way).
_FIELD_NAMES = tuple(f.name for f in fields(Finding))
_field_values = attrgetter(*_FIELD_NAMES)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    def key(item: Finding) -> tuple:
        layer = LAYER_ORDER.index(item.layer) if item.layer in LAYER_ORDER else len(LAYER_ORDER)
        return (SEVERITY_ORDER.get(item.severity, 9), item.rank, layer, item.path)

    return sorted(findings, key=key)


def worst_severity(findings: list[Finding]) -> str | None:
    if not findings:
        return None
    return min((f.severity for f in findings), key=lambda s: SEVERITY_ORDER.get(s, 9))
