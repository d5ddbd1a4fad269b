"""Import ``nvidia-smi --query-gpu=FIELD,... --format=csv`` (with or without ``nounits``).

The header names the fields asked for (``index, name, driver_version,
memory.total [MiB]``), so it is needed: ``--format=csv,noheader`` output is
refused (which column is which would be a guess).  Fields that identify a
machine (``uuid``, ``serial``, ``pci.bus_id``) and readings that change by
the second (temperature, utilisation, memory used) are not recorded.
"""

from __future__ import annotations

import csv
import re
from typing import Any

from envlock.formats.importers import ImportContext, split_lines
from envlock.lockfile import model as m
from envlock.records import replace

_NOT_KNOWN = {"", "[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]"}
_MODES = {"Enabled": "enabled", "Disabled": "disabled"}
_COMPUTE = {
    "Default": "default",
    "Exclusive_Thread": "exclusive-thread",
    "Exclusive_Process": "exclusive-process",
    "Prohibited": "prohibited",
}
# Query names whose values describe the machine's hardware and setup (not identify it, not change by the second).
_READ = {
    "index", "name", "gpu_name", "driver_version", "memory.total", "compute_cap", "pci.device_id",
    "persistence_mode", "mig.mode.current", "ecc.mode.current", "compute_mode", "power.limit",
    "enforced.power.limit", "power.default_limit", "clocks.max.sm", "clocks.max.memory",
}  # fmt: skip


_HEADER_CELL = re.compile(r"[a-z][a-z0-9_.]*(?: \[[^\]]+\])?")


def _header_cells(line: str) -> list[str] | None:
    """The query names of a CSV header line (units dropped), or ``None`` if the line is not one."""
    cells = [cell.strip() for cell in line.split(",")]
    if len(cells) < 1 or not all(_HEADER_CELL.fullmatch(cell) for cell in cells):
        return None
    names = [re.sub(r"\s*\[[^\]]*\]$", "", cell) for cell in cells]
    return names if "name" in names or "gpu_name" in names else None


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    lines = [(n, line) for n, line in enumerate(split_lines(text, ctx), 1) if line.strip()]
    if not lines:
        raise ctx.fail("empty", 1, hint="import the output of `nvidia-smi --query-gpu=... --format=csv`")
    # The header may follow other lines of a paste (a command, `nvidia-smi -L`, a title): the first
    # line that is a list of query names is it.
    start = next((i for i, (_n, line) in enumerate(lines) if _header_cells(line) is not None), None)
    if start is None:
        header_line, header_text = lines[0]
        if re.match(r"^\s*[0-9]", header_text) or re.match(r"^[^,]+,", header_text):
            raise ctx.fail(
                "the CSV has no header line naming a `name` column, so which column is which is not known",
                header_line,
                hint="run nvidia-smi with --format=csv (without noheader), and query name too",
            )
        raise ctx.fail(
            "not `nvidia-smi --query-gpu` CSV: no header line such as 'name, driver_version, memory.total [MiB]'",
            header_line,
            hint="import the output of `nvidia-smi --query-gpu=name,... --format=csv`",
        )
    header_line, header_text = lines[start]
    header = _header_cells(header_text) or []
    rows: list[tuple[int, str]] = []
    for number, line in lines[start + 1 :]:
        if "," not in line:
            ctx.warn("lines after the CSV table are not part of it and were not read", number)
            break
        rows.append((number, line))
    ignored = [name for name in header if name not in _READ]
    if ignored:
        ctx.warn("columns not recorded (they identify the machine or change by the second): " + ", ".join(ignored))
    from envlock.formats.nvidia_smi import gpu

    gpus = []
    drivers: set[str] = set()
    for position, (number, line) in enumerate(rows):
        cells = [cell.strip() for cell in next(csv.reader([line]))]
        if len(cells) != len(header):
            raise ctx.fail(
                f"this row has {len(cells)} columns but the header has {len(header)}",
                number,
                hint="the paste may be cut off or wrapped: import the output as printed",
            )
        row = {key: value for key, value in zip(header, cells, strict=True) if value not in _NOT_KNOWN}
        if row.get("driver_version"):
            drivers.add(row["driver_version"])
        index = int(row["index"]) if row.get("index", "").isdigit() else position
        power = row.get("enforced.power.limit") or row.get("power.limit")
        cc = row.get("compute_cap")
        item = gpu(
            ctx,
            index,
            row.get("name") or row.get("gpu_name") or "",
            number,
            memory_total_mib=_number(row.get("memory.total")),
            persistence_mode=_MODES.get(row.get("persistence_mode", "")),
            mig_mode=_MODES.get(row.get("mig.mode.current", "")),
            ecc_mode=_MODES.get(row.get("ecc.mode.current", "")),
            compute_mode=_COMPUTE.get(row.get("compute_mode", "")),
            power_limit_w=_number(power),
            max_sm_clock_mhz=_number(row.get("clocks.max.sm")),
            max_memory_clock_mhz=_number(row.get("clocks.max.memory")),
            pci_device_id=row.get("pci.device_id")
            if re.fullmatch(r"0x[0-9A-Fa-f]{8}", row.get("pci.device_id", ""))
            else None,
        )
        if item is not None and cc and re.fullmatch(r"[0-9]{1,2}\.[0-9]{1,2}", cc):
            item = replace(item, compute_capability=cc)  # the driver's own answer beats the name table
        if item is not None:
            gpus.append(item)
    if len(drivers) > 1:
        ctx.warn(f"rows name different driver versions ({', '.join(sorted(drivers))}); the first is recorded")
    driver = next(iter(sorted(drivers)), None) if drivers else None
    from envlock.formats.nvidia_smi import _valid_section

    values = {"driver_present": True, "driver_version": driver, "source": "import"}
    return {"nvidia": m.NvidiaSection(**_valid_section(values, ctx, header_line), gpus=tuple(gpus))}


def _number(text: str | None) -> int | None:
    if not text:
        return None
    found = re.fullmatch(r"([0-9]+)(?:\.[0-9]+)?\s*(?:MiB|MHz|W)?", text.strip())
    return int(found.group(1)) if found else None
