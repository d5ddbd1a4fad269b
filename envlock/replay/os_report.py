"""Read the OS-package report that the replay build writes into the image.

``templates/os_packages.py`` writes ``/opt/envlock/os-report.json`` while the
image is built: for each hand-installed package, the locked version, the
versions the mirror offered and what was installed.  ``envlock verify`` reads
the file out of the image and calls :func:`os_report_findings` (pure) to turn
it into findings; a version the mirror no longer has names the Debian
snapshot archive as the fix (CUDA.md 3.5).  The report comes from inside an
image, so it is untrusted input: every value is checked before it is shown.
"""

from __future__ import annotations

import json
import re

from envlock.errors import ReplayError
from envlock.findings import CHANGED, DIFFERS, EXACT, INFO, NOT_REPRODUCIBLE, Finding

REPORT_SCHEMA = 1
MAX_REPORT_BYTES = 4 * 1024 * 1024
_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*")
SNAPSHOT = "https://snapshot.debian.org"


def parse_os_report(text: str | bytes) -> dict:
    """The report as checked data (pure); ``ReplayError`` when it is not a report this envlock wrote."""
    if isinstance(text, bytes):
        if len(text) > MAX_REPORT_BYTES:
            raise ReplayError("the OS package report in the image is too large")
        text = text.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ReplayError(f"the OS package report in the image is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA or not isinstance(data.get("packages"), list):
        raise ReplayError(
            "the OS package report in the image has an unknown format", hint="replay the lock again with this envlock"
        )
    packages = []
    for item in data["packages"]:
        if not isinstance(item, dict):
            continue
        name, locked, installed = item.get("name"), item.get("locked"), item.get("installed")
        if not (
            isinstance(name, str) and _NAME.fullmatch(name) and isinstance(locked, str) and _VERSION.fullmatch(locked)
        ):
            continue
        if installed is not None and not (isinstance(installed, str) and _VERSION.fullmatch(installed)):
            installed = None
        available = [v for v in item.get("available") or [] if isinstance(v, str) and _VERSION.fullmatch(v)][:5]
        status = item.get("status") if item.get("status") in ("exact", "differs", "missing", "failed") else "failed"
        origin = item.get("origin") if item.get("origin") in ("mirror", "snapshot", "pack") else None
        packages.append(
            {
                "name": name,
                "locked": locked,
                "installed": installed,
                "available": available,
                "status": status,
                "origin": origin,
            }
        )
    errors = [str(e)[:500] for e in data.get("errors") or [] if isinstance(e, str)]
    fallbacks = [str(e)[:300] for e in data.get("fallbacks") or [] if isinstance(e, str)]
    return {"packages": packages, "errors": errors, "fallbacks": fallbacks}


def os_report_findings(text: str | bytes, codename: str | None = None) -> list[Finding]:
    """One finding per locked OS package, from the report's text (pure)."""
    report = parse_os_report(text)
    distro_hint = f"the {codename} " if codename else "the "
    out = []
    for pkg in report["packages"]:
        path = f"os.packages[{pkg['name']}]"
        # One fix for every package (the finding's message and `locked` name the package and
        # version): findings with one cause and one fix are reported as one group (envlock.verdict),
        # and a fix naming each package kept 28 missing packages apart in `make demo`'s report.
        fix = (
            f"install the locked version from {SNAPSHOT} (add "
            f"`deb {SNAPSHOT}/archive/debian/<YYYYMMDDTHHMMSSZ>/ {codename or '<release>'} main` for a date when "
            f"{distro_hint}archive still had it)"
        )
        if pkg["status"] == "exact":
            where = {
                "snapshot": " from the snapshot archive (the mirror no longer has it)",
                "pack": " from the pack",
            }.get(pkg["origin"] or "", "")
            out.append(
                Finding(
                    "os",
                    path,
                    INFO,
                    f"{pkg['name']} {pkg['locked']} installed exactly{where}",
                    locked=pkg["locked"],
                    actual=pkg["locked"],
                    status=EXACT,
                    rank=200,
                )
            )
        elif pkg["status"] == "differs":
            if pkg["locked"] in pkg["available"]:
                what = f"{pkg['locked']} could not be installed (the versions it depends on are gone from the mirror)"
            else:
                what = f"the mirror no longer has {pkg['locked']}"
            out.append(
                Finding(
                    "os",
                    path,
                    DIFFERS,
                    f"{pkg['name']}: {what}; installed {pkg['installed']}",
                    why="distribution mirrors keep only the current version of each package",
                    fix=fix,
                    locked=pkg["locked"],
                    actual=pkg["installed"],
                    status=CHANGED,
                    rank=160,
                )
            )
        else:
            if pkg["status"] == "failed":
                what = "apt-get could not install it"
            elif report["fallbacks"]:
                what = "neither the mirror nor the snapshot archive at the lock's time has it"
            else:
                what = "the mirror no longer has it"
            fix = (
                "anchor the lock in time with `envlock pin` (it records when the archive first saw each version), "
                "replay from an `envlock pack`, or point --snapshot-url at an archive that has it; " + fix
            )
            out.append(
                Finding(
                    "os",
                    path,
                    DIFFERS,
                    f"{pkg['name']} {pkg['locked']} is not installed: {what}",
                    fix=fix,
                    locked=pkg["locked"],
                    status=NOT_REPRODUCIBLE,
                    rank=160,
                )
            )
    for error in report["errors"]:
        out.append(Finding("os", "os.packages", INFO, f"apt reported: {error}", status=CHANGED, rank=190))
    return out
