"""Same bytes, not only the same version strings: per-distribution verdicts from content digests (issue 11).

Pure: two Python sections in, one verdict per locked distribution out.

- ``identical bytes``: the content digest (a sha256 over the files RECORD
  lists, :mod:`envlock.capture.artifact`) is the lock's;
- ``same version, different bytes``: the version matches, the digest does
  not: another build of the release (a re-upload with a build tag, another
  platform's wheel, a local build) or files changed after installing;
- ``different version`` and ``missing``;
- ``no digest``: one side has no digest (an egg-info install, an imported
  ``pip freeze``), so bytes cannot be compared.
"""

from __future__ import annotations

from envlock.findings import CHANGED, NUMERIC, Finding
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from envlock.lockfile import model as m

IDENTICAL = "identical bytes"
DIFFERENT_BYTES = "same version, different bytes"
DIFFERENT_VERSION = "different version"
MISSING = "missing"
NO_DIGEST = "no digest"


@record
class ByteVerdict:
    name: str
    verdict: str
    locked_version: str
    actual_version: str | None = None
    locked_digest: str | None = None
    actual_digest: str | None = None
    # For different bytes: what else the two installs' WHEEL files say.
    detail: str | None = None
    # Files whose bytes differ, when something could list them.
    files: tuple[str, ...] = ()


def _canonical(name: str) -> str:
    from envlock.capture.distributions import canonical_name

    return canonical_name(name)


def _same_version(a: str, b: str) -> bool:
    if a == b:
        return True
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return False


def _build_detail(locked: m.PythonPackage, actual: m.PythonPackage) -> str | None:
    parts = []
    if (locked.build_tag or None) != (actual.build_tag or None):
        parts.append(f"build tag {actual.build_tag or 'none'} instead of {locked.build_tag or 'none'}")
    if locked.wheel_tags and actual.wheel_tags and set(locked.wheel_tags) != set(actual.wheel_tags):
        parts.append(f"wheel tags {', '.join(actual.wheel_tags)} instead of {', '.join(locked.wheel_tags)}")
    return "; ".join(parts) or None


def byte_verdicts(locked: m.PythonSection | None, actual: m.PythonSection | None) -> list[ByteVerdict]:
    """One verdict per distribution of ``locked``, sorted by name."""
    if locked is None:
        return []
    have = {_canonical(p.name): p for p in (actual.packages if actual is not None else ())}
    out = []
    for pkg in sorted(locked.packages, key=lambda p: _canonical(p.name)):
        other = have.get(_canonical(pkg.name))
        if other is None:
            out.append(ByteVerdict(pkg.name, MISSING, pkg.version, locked_digest=pkg.content_digest))
            continue
        locked_version, actual_version = pkg.version, other.version
        digests = (pkg.content_digest, other.content_digest)
        if not _same_version(locked_version, actual_version):
            verdict, detail = DIFFERENT_VERSION, None
        elif not digests[0] or not digests[1]:
            verdict, detail = NO_DIGEST, None
        elif digests[0] == digests[1]:
            verdict, detail = IDENTICAL, None
        else:
            verdict, detail = DIFFERENT_BYTES, _build_detail(pkg, other)
        out.append(ByteVerdict(pkg.name, verdict, locked_version, actual_version, digests[0], digests[1], detail))
    return out


def summary_line(verdicts: list[ByteVerdict]) -> str | None:
    """``12 of 14 Python distributions byte-identical (1 same version with different bytes, ...)``.

    None when the lock holds no content digest at all (an imported freeze, a
    lock from before digests): there are no bytes to speak of, and saying
    "0 of N" would read as a failure.
    """
    if not any(item.locked_digest for item in verdicts):
        return None
    counts: dict[str, int] = {}
    for item in verdicts:
        counts[item.verdict] = counts.get(item.verdict, 0) + 1
    rest = [
        f"{counts[kind]} {label}"
        for kind, label in (
            (DIFFERENT_BYTES, "same version with different bytes"),
            (DIFFERENT_VERSION, "different version"),
            (MISSING, "missing"),
            (NO_DIGEST, "without a digest to compare"),
        )
        if counts.get(kind)
    ]
    line = f"{counts.get(IDENTICAL, 0)} of {len(verdicts)} Python distributions byte-identical"
    return line + (f" ({', '.join(rest)})" if rest else "")


def counts(verdicts: list[ByteVerdict]) -> dict[str, int]:
    out = {kind: 0 for kind in (IDENTICAL, DIFFERENT_BYTES, DIFFERENT_VERSION, MISSING, NO_DIGEST)}
    for item in verdicts:
        out[item.verdict] += 1
    return out


def needing_files(verdicts: list[ByteVerdict], locked: m.PythonSection | None) -> list[m.PythonPackage]:
    """The locked packages whose bytes differ: those whose differing files are worth listing."""
    names = {_canonical(v.name) for v in verdicts if v.verdict == DIFFERENT_BYTES}
    return [p for p in (locked.packages if locked is not None else ()) if _canonical(p.name) in names]


def without_diff_bytes(findings: list[Finding]) -> list[Finding]:
    """``findings`` less the diff's own "same version, different bytes" findings.

    :func:`envlock.diff.diff` reports different content digests too (between
    two locks); where :func:`byte_findings` is added, it says the same with
    the build detail and the files, so the diff's one would repeat it.
    """
    from envlock.diff import BYTES_WHY

    return [f for f in findings if f.why is not BYTES_WHY]


def byte_findings(verdicts: list[ByteVerdict], files: dict[str, tuple[str, ...]] | None = None) -> list[Finding]:
    """A finding for each distribution whose version matches but whose bytes do not.

    Different versions and missing distributions are the version comparison's
    findings already; this adds what a version comparison cannot see.
    ``files`` (:func:`envlock.byte_files.files_that_differ`) names the files
    that differ where the pinned wheel could be read.
    """
    from envlock import records

    out = []
    for item in verdicts:
        if item.verdict != DIFFERENT_BYTES:
            continue
        if files and item.name in files:
            item = records.replace(item, files=files[item.name])
        message = f"{item.name} {item.locked_version}: {DIFFERENT_BYTES}"
        if item.detail:
            message += f" ({item.detail})"
        if item.files:
            shown = ", ".join(item.files[:8]) + (f" and {len(item.files) - 8} more" if len(item.files) > 8 else "")
            message += f"; files that differ: {shown}"
        out.append(
            Finding(
                layer="python",
                path=f"python.packages[{item.name}]",
                severity=NUMERIC,
                message=message,
                why="another build of the same release can be compiled differently or hold other code",
                fix="pin the lock (envlock pin) so replay installs the locked file, or replay from a pack",
                locked=(item.locked_digest or "")[:19],
                actual=(item.actual_digest or "")[:19],
                status=CHANGED,
                rank=45,
            )
        )
    return out
