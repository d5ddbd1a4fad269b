"""Pin the Python layer: each distribution from an index to the exact file that was installed.

The file is the one whose wheel tags and build tag are those the installed
``WHEEL`` file records (:func:`envlock.wheel_select.match_installed`), not the
one an installer would pick today; a lock without those facts (an imported
``pip freeze``) gets the best file for its interpreter and platform.  All
index pages are read in one concurrent batch (:mod:`envlock.resolve`).
"""

from __future__ import annotations

from envlock import records
from envlock.lockfile import model as m

TYPE_CHECKING = False
if TYPE_CHECKING:
    from envlock.pin import LayerPin, PinRequest
    from envlock.resolve import Pin


def _upload_time(text: str | None) -> str | None:
    """PEP 691's upload-time as the lock stores it (checked by the lockfile's field check), else None."""
    from envlock.lockfile.fields import upload_time

    if not text:
        return None
    text = text.replace("+00:00", "Z")
    return text if upload_time(text) is None else None


def _pinned_package(pkg: m.PythonPackage, pin: Pin) -> m.PythonPackage:
    from envlock.lockfile import fields as chk

    url = pin.url if pin.url and chk.url(pin.url) is None else None
    index = pin.index if pin.index and chk.url(pin.index) is None else None
    return records.replace(
        pkg,
        file=pin.filename,
        file_url=url,
        file_sha256="sha256:" + pin.sha256,
        file_size=pin.size,
        file_upload_time=_upload_time(pin.upload_time),
        file_index=index,
    )


def _unpinned(pkg: m.PythonPackage) -> m.PythonPackage:
    return records.replace(
        pkg, file=None, file_url=None, file_sha256=None, file_size=None, file_upload_time=None, file_index=None
    )


def pin_python(lock: m.Lock, request: PinRequest) -> LayerPin:
    from envlock.capture.distributions import canonical_name
    from envlock.findings import INFO, Finding
    from envlock.pin import LayerPin
    from envlock.resolve import DEFAULT_INDEX, is_pinned, resolve_lock

    python = lock.python
    if python is None or not python.packages:
        return LayerPin("python", {}, notes=("the lock has no Python packages to pin",))
    indexes = list(request.index_urls) or [DEFAULT_INDEX]
    # Conda's builds of Python packages are conda's artifacts (the conda
    # layer's), not files of a Python index: a PyPI wheel of the same version
    # is another build.
    wanted = tuple(p for p in python.packages if (p.installer or "").lower() != "conda")
    result = resolve_lock(
        records.replace(lock, python=records.replace(python, packages=wanted)),
        index_url=indexes[0],
        extra_index_urls=[*indexes[1:], *request.extra_index_urls],
        timeout=request.timeout,
        use_lock_pins=False,
    )
    by_name = {canonical_name(pin.name): pin for pin in result.pins}
    packages = []
    kept = []
    for pkg in python.packages:
        pin = by_name.get(canonical_name(pkg.name))
        if pin is not None:
            packages.append(_pinned_package(pkg, pin))
        elif is_pinned(pkg):
            # Pinned before, and no index serves a matching file now: the
            # earlier record is the only one left of which bytes were installed.
            packages.append(pkg)
            kept.append(f"{pkg.name} {pkg.version} keeps its earlier pin ({pkg.file}, {pkg.file_sha256})")
        else:
            packages.append(_unpinned(pkg))
    findings = list(result.to_findings())
    for pin in result.pins:
        if pin.why:
            findings.append(
                Finding(
                    layer="python",
                    path=f"python.packages[{pin.name}]",
                    severity=INFO,
                    message=f"{pin.name} {pin.version}: {pin.why}",
                    locked=pin.version,
                    actual=pin.filename,
                    status="exact",
                    rank=150,
                )
            )
    from_index = {canonical_name(p.name) for p in wanted if p.source in ("index", "unknown")}
    return LayerPin(
        "python",
        {"python": records.replace(python, packages=tuple(packages))},
        findings=tuple(findings),
        notes=(*result.notes, *kept),
        pinned=sum(1 for pin in result.pins if canonical_name(pin.name) in from_index),
        total=len(from_index),
    )
