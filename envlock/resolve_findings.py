"""What a resolved (or pinned) Python layer means for a report: one Finding per package not installed exactly.

Kept apart from the resolver so that ``envlock pin``, ``replay`` and ``export``
word the same facts the same way.
"""

from __future__ import annotations

from envlock.findings import BLOCKER, CHANGED, INFO, NOT_REPRODUCIBLE, NUMERIC, Finding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from envlock.resolve import PinSet, Problem


def problem_finding(problem: Problem) -> Finding:
    if problem.kind == "gone":
        return Finding(
            layer="python",
            path=f"python.packages[{problem.name}]",
            severity=BLOCKER,
            message=(
                f"{problem.name} {problem.version}: the pinned file {problem.filename} "
                f"(sha256:{problem.sha256}) is no longer served: {problem.reason}"
            ),
            why="replay installs only the file the lock pins; another file of this version may hold other bytes",
            fix=problem.fix,
            locked=problem.version,
            status=NOT_REPRODUCIBLE,
            rank=70,
        )
    return Finding(
        layer="python",
        path=f"python.packages[{problem.name}]",
        severity=NUMERIC,
        message=f"{problem.name} {problem.version} cannot be pinned: {problem.reason}",
        why="the package would have to come from somewhere envlock cannot check, or be left out",
        fix=problem.fix,
        locked=problem.version,
        status=NOT_REPRODUCIBLE,
        rank=80,
    )


def pinset_findings(pins: PinSet) -> list[Finding]:
    """Problems, VCS checkouts and yanked releases, as findings."""
    out = [problem_finding(problem) for problem in pins.problems]
    for ref in pins.vcs:
        out.append(
            Finding(
                layer="python",
                path=f"python.packages[{ref.name}]",
                severity=INFO,
                message=f"{ref.name} {ref.version} comes from {ref.vcs} commit {ref.commit[:12]}; pip cannot hash-check a VCS checkout",
                why="the commit pins the source, but the build from it is not verified by a file hash",
                fix="build a wheel from that commit and pass its directory with --find-links",
                locked=ref.commit,
                status=CHANGED,
                rank=80,
            )
        )
    for pin in pins.pins:
        if pin.yanked:
            reason = f": {pin.yanked_reason}" if pin.yanked_reason else " (no reason given)"
            out.append(
                Finding(
                    layer="python",
                    path=f"python.packages[{pin.name}]",
                    severity=INFO,
                    message=f"{pin.name} {pin.version} is yanked on its index{reason}; the pinned file is installed anyway",
                    why="a yanked release was withdrawn by its authors, often for a bug that can affect results",
                    locked=pin.version,
                    status="exact",
                    rank=80,
                )
            )
    return out
