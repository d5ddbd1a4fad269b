"""``envlock doctor``: will this lock run on this host, and what will differ?

A composition, kept out of both halves it joins (DESIGN.md): capture the
layers of this host that the hardware rules read (NVIDIA driver and GPUs, CPU,
the C runtimes), then apply :func:`envlock.compat.rules.host_findings` with the
lock as A and this host as B.  The locked software is judged from the lock
alone (its CUDA runtimes, its packages' recorded kernel architectures, its
wheels' tags), so nothing of the current Python environment is scanned for
the rules.

Only the OS fields the rules use are read (glibc, libstdc++, machine): the OS
package list would cost most of the time and is not needed here.

``ENVLOCK_HOST_ROOT`` (a test hook shared with the NVML fallback in
:mod:`envlock.capture.nvml`) moves the ``/proc`` and ``/sys`` reads below a
recorded host folder, so a recorded ``proc/cpuinfo`` stands in for this CPU.
"""

from __future__ import annotations

import os

from envlock import records
from envlock.compat.rules import host_findings
from envlock.findings import BLOCKER, EXACT, INFO, UNKNOWN, Finding
from envlock.lockfile import model as m
from envlock.records import record

HOST_LAYERS = ("nvidia", "cpu")


@record
class DoctorReport:
    findings: tuple[Finding, ...]
    host: m.Lock

    @property
    def blocked(self) -> bool:
        return any(f.severity == BLOCKER for f in self.findings)

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status != EXACT)

    @property
    def passed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status == EXACT)

    @property
    def exit_code(self) -> int:
        return 1 if self.blocked else 0


def capture_host() -> m.Lock:
    """This host's driver, GPUs, CPU and C runtimes, as a partial lock."""
    from envlock.capture import os_info
    from envlock.capture.collect import capture_lock

    warnings: list[str] = []
    host = capture_lock(layers=HOST_LAYERS)
    root = os.environ.get("ENVLOCK_HOST_ROOT")
    if root:
        from envlock.capture.cpu import collect_cpu

        host = records.replace(host, cpu=collect_cpu(root, warn=warnings.append))
    os_section = m.OsSection(
        architecture=os_info.read_machine("/"),
        glibc=os_info.read_glibc_version("/"),
        libstdcxx=os_info.read_libstdcxx_version("/"),
    )
    return records.replace(
        host, os=os_section, capture_warnings=tuple(sorted(set(host.capture_warnings) | set(warnings)))
    )


def diagnose(lock: m.Lock, host: m.Lock) -> DoctorReport:
    """Pure: the findings for running ``lock`` on ``host`` (every passed check included)."""
    findings = list(host_findings(lock, host, include_passed=True))
    for warning in host.capture_warnings:
        findings.append(
            Finding("host", "capture", INFO, f"while reading this host: {warning}", status=UNKNOWN, rank=990)
        )
    if lock.origin and lock.origin.startswith("import:"):
        findings.append(
            Finding(
                "host",
                "lock",
                INFO,
                f"the lock was imported ({lock.origin}); layers it does not record were not checked",
                status=UNKNOWN,
                rank=980,
            )
        )
    return DoctorReport(tuple(findings), host)


def run_doctor(lock: m.Lock) -> DoctorReport:
    return diagnose(lock, capture_host())
