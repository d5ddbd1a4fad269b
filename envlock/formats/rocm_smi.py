"""Import ``rocm-smi`` output: AMD GPUs, recorded under ``[accelerators]``.

Read: ``GPU[N] : Key: Value`` lines (``--showproductname``,
``--showmeminfo vram``, ``--showdriverversion``, ``-a``), ``rocm-smi --json``
(``{"card0": {...}, "system": {...}}``), and the default concise table, whose
rows name only the device id (``0x740f``): such a GPU is recorded by its
device id, with a warning.  Serial numbers, unique ids and bus ids are not read.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.importers import ImportContext, checked, shown, split_lines
from envlock.lockfile import model as m

_GPU_LINE = re.compile(r"^GPU\[(?P<index>[0-9]+)\]\s*:\s*(?P<key>[^:]+?)\s*:\s*(?P<value>.*?)\s*$")
_DRIVER = re.compile(r"^Driver version:\s*(?P<value>\S+)", re.IGNORECASE)
# 0       1     0x740f,   12345  35.0°C ...   (ROCm 6 concise table: device, node, DID, GUID, ...)
_CONCISE_ROW = re.compile(r"^(?P<index>[0-9]+)\s+[0-9]+\s+(?P<did>0x[0-9a-fA-F]{4}),")
_NAME_KEYS = ("card series", "device name", "marketing name", "card sku")


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    if text.lstrip().startswith("{"):
        devices, driver = _from_json(text, ctx)
    elif text.lstrip().startswith("device,"):
        devices, driver = _from_csv(text, ctx)
    else:
        devices, driver = _from_text(text, ctx)
    if not devices and driver is None:
        raise ctx.fail(
            "not rocm-smi output: no 'GPU[N] : ...' lines, concise table or driver version",
            1,
            hint="import the output of `rocm-smi --showproductname --showmeminfo vram --showdriverversion`",
        )
    items = []
    for index, (fields, line) in sorted(devices.items()):
        name = next((fields[k] for k in _NAME_KEYS if fields.get(k)), None)
        if name is None and fields.get("did"):
            name = f"AMD GPU device {fields['did']}"
            ctx.warn(f"GPU {index}: rocm-smi's table names no model, only its device id; run --showproductname", line)
        if name is None:
            ctx.warn(f"GPU {index}: no product name in this output; not recorded (run --showproductname)", line)
            continue
        vram = fields.get("vram total memory (b)")
        item = checked(
            m.Accelerator,
            {
                "index": index,
                "vendor": "amd",
                "name": name,
                "architecture": fields.get("gfx version")
                if re.fullmatch(r"gfx[0-9a-f]+", fields.get("gfx version", ""))
                else None,
                "memory_total_mib": int(vram) // (1024 * 1024) if vram and vram.isdigit() else None,
            },
            f"GPU {index}",
            ctx,
            line,
        )
        if item is not None:
            items.append(item)
    section = checked(
        m.AcceleratorSection, {"runtime": "rocm", "driver_version": driver, "source": "import"}, "accelerators", ctx
    )
    assert section is not None  # no required fields
    return {
        "accelerators": m.AcceleratorSection(
            runtime="rocm", driver_version=section.driver_version, source="import", devices=tuple(items)
        )
    }


def _from_text(text: str, ctx: ImportContext) -> tuple[dict[int, tuple[dict[str, str], int]], str | None]:
    devices: dict[int, tuple[dict[str, str], int]] = {}
    driver = None
    for number, raw in enumerate(split_lines(text, ctx), 1):
        line = raw.strip()
        found = _GPU_LINE.match(line)
        if found:
            fields, _ = devices.setdefault(int(found.group("index")), ({}, number))
            fields[found.group("key").strip().lower()] = found.group("value")
            continue
        found = _DRIVER.match(line)
        if found:
            driver = found.group("value")
            continue
        found = _CONCISE_ROW.match(line)
        if found:
            fields, _ = devices.setdefault(int(found.group("index")), ({}, number))
            fields.setdefault("did", found.group("did").lower())
    return devices, driver


def _from_json(text: str, ctx: ImportContext) -> tuple[dict[int, tuple[dict[str, str], int]], str | None]:
    from envlock.formats.structured import load_json

    document = load_json(text, ctx)
    if not isinstance(document, dict):
        raise ctx.fail("rocm-smi --json output is an object of cards", 1)
    devices: dict[int, tuple[dict[str, str], int]] = {}
    driver = None
    for key, value in document.items():
        if not isinstance(value, dict):
            continue
        fields = {str(k).strip().lower(): v.strip() for k, v in value.items() if isinstance(v, str)}
        card = re.fullmatch(r"card([0-9]+)", key)
        if card:
            devices[int(card.group(1))] = (fields, 1)
        elif key == "system":
            driver = fields.get("driver version")
    if driver is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+_-]*", driver):
        ctx.warn(f"driver version {shown(driver)} is not a version; left unknown")
        driver = None
    return devices, driver


def _from_csv(text: str, ctx: ImportContext) -> tuple[dict[int, tuple[dict[str, str], int]], str | None]:
    """``rocm-smi ... --csv``: a ``device,<field>,...`` header, then ``card<N>,...`` (and ``cardsystem``) rows."""
    import csv

    rows = [(n, line) for n, line in enumerate(split_lines(text, ctx), 1) if line.strip()]
    header = [cell.strip().lower() for cell in next(csv.reader([rows[0][1]]))]
    devices: dict[int, tuple[dict[str, str], int]] = {}
    driver = None
    for number, line in rows[1:]:
        cells = [cell.strip() for cell in next(csv.reader([line]))]
        if len(cells) != len(header):
            raise ctx.fail(f"this row has {len(cells)} columns but the header has {len(header)}", number)
        fields = dict(zip(header, cells, strict=True))
        card = re.fullmatch(r"card([0-9]+)", fields.get("device", ""))
        if card:
            devices[int(card.group(1))] = (fields, number)
        elif fields.get("device") == "cardsystem":
            driver = fields.get("driver version") or driver
    return devices, driver
