"""Import ``nvidia-smi`` output: the default table, or the ``nvidia-smi -q`` report.

Both give the driver version, the CUDA version the driver supports, and per
GPU its name, total memory and modes.  Neither prints the compute capability,
so it is filled in only for GPU names in ``COMPUTE_CAPABILITIES``.  UUIDs,
serial numbers, bus ids, process lists and timestamps are never read: they
identify a machine, not an environment.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.importers import ImportContext, checked, shown, split_lines
from envlock.formats.paste import unwrap_table_rows
from envlock.lockfile import model as m

# GPU name patterns -> compute capability, checked in order.  Sources:
# ../shared/facts/CUDA.md §3.3 (V100, T4, A100, A10/A40, RTX 3090, L4/L40,
# RTX 4090, H100, H200/GH200, B200) and NVIDIA's list at
# developer.nvidia.com/cuda-gpus for the older and workstation parts seen in
# the import corpus (P100 6.0; TITAN Xp, GTX 10x0, MX250, P40, P4 6.1;
# TITAN V 7.0; RTX 20x0, TITAN RTX 7.5; RTX A2000-A6000, RTX 30x0 8.6).
# A name matching nothing gets no compute capability: unknown, not guessed.
COMPUTE_CAPABILITIES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), cc)
    for pattern, cc in (
        (r"\bG?B200\b", "10.0"),
        (r"\bG?B300\b", "10.3"),
        (r"\bRTX 50[6-9]0\b", "12.0"),
        (r"\bGH200\b", "9.0"),
        (r"\bH[12]00\b", "9.0"),
        (r"\bH800\b", "9.0"),
        (r"\bL40S?\b|\bL4\b", "8.9"),
        (r"\bRTX 40[5-9]0\b", "8.9"),
        (r"\bA100\b|\bA800\b|\bA30\b", "8.0"),
        (r"\bA10G?\b|\bA40\b|\bA16\b|\bA2\b", "8.6"),
        (r"\bRTX A[2-6]000\b", "8.6"),
        (r"\bRTX 30[5-9]0\b", "8.6"),
        (r"\bT4\b", "7.5"),
        (r"\bRTX 20[6-8]0\b|\bTITAN RTX\b", "7.5"),
        (r"\bV100S?\b|\bTITAN V\b", "7.0"),
        (r"\bP100\b", "6.0"),
        (r"\bTITAN Xp?\b|\bGTX 10[5-8]0\b|\bMX[1-3]50\b|\bP40\b|\bP4\b", "6.1"),
    )
)


def compute_capability(name: str) -> str | None:
    """The compute capability of a GPU known by its marketing name, or ``None``."""
    if not re.search(r"NVIDIA|Tesla|GeForce|Quadro|TITAN|RTX|GTX|\b[ABHLT][0-9]", name):
        return None
    for pattern, cc in COMPUTE_CAPABILITIES:
        if pattern.search(name):
            return cc
    return None


# What nvidia-smi prints instead of a table when there is no driver, or no GPU.
_NO_DRIVER = "couldn't communicate with the NVIDIA driver"
_NO_DEVICES = "No devices were found"


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    lines = split_lines(text, ctx)
    head = [line.strip() for line in lines[:5]]
    if any(_NO_DRIVER in line for line in head):
        return {"nvidia": m.NvidiaSection(driver_present=False, source="import")}
    if any(line == _NO_DEVICES for line in head):
        ctx.warn("nvidia-smi found no GPU; the driver version is not in its output")
        return {"nvidia": m.NvidiaSection(driver_present=True, source="import")}
    for line in lines[:10]:
        if "NVSMI LOG" in line:
            return {"nvidia": parse_query(lines, ctx, ended=text.endswith("\n"))}
    if _looks_like_csv(lines):
        from envlock.formats import nvidia_smi_csv

        return nvidia_smi_csv.parse(text, ctx)
    lines, joined = unwrap_table_rows(lines)
    if joined:
        ctx.warn(
            f"{len(joined)} table rows were folded onto several lines (an e-mail client wraps long lines); "
            f"rejoined rows at lines {', '.join(map(str, joined[:10]))}"
        )
    return {"nvidia": parse_table(lines, ctx, joined_rows=bool(joined))}


def _looks_like_csv(lines: list[str]) -> bool:
    """``nvidia-smi --query-gpu=... --format=csv``: a header of query names separated by commas."""
    from envlock.formats.nvidia_smi_csv import _header_cells

    return not any("NVIDIA-SMI" in line for line in lines[:10]) and any(_header_cells(line) for line in lines[:20])


def gpu(ctx: ImportContext, index: int, name: str, line: int, **values: Any) -> m.Gpu | None:
    name = " ".join(name.split())
    if name.endswith("..."):
        ctx.warn(f"GPU {index}: nvidia-smi cut its name short ({shown(name)}); the name is recorded as printed", line)
    return checked(
        m.Gpu,
        {"index": index, "name": name, "compute_capability": compute_capability(name), **values},
        f"GPU {index}",
        ctx,
        line,
    )


# --- the table ----------------------------------------------------------------------

_HEADER = re.compile(
    r"NVIDIA-SMI\s+(?P<smi>\S+)\s+Driver Version:\s*(?P<driver>\S+)(?:\s+CUDA Version:\s*(?P<cuda>\S+))?"
)
# |   0  NVIDIA A100-SXM4-40GB          Off |   00000000:81:00.0 Off |                    0 |
_ROW1 = re.compile(
    r"^\|\s*(?P<index>\d+)\s+(?P<name>.+?)\s+(?P<mode>On|Off|WDDM|TCC|MCDM|N/A)\s*"
    r"\|\s*(?P<bus>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s+\S+\s*"
    r"\|\s*(?P<ecc>[^|]*?)\s*\|$"
)
# | N/A   32C    P0             52W /  400W |       1MiB /  40960MiB |      0%      Default |
_ROW2 = re.compile(
    r"^\|\s*\S+\s+\S+\s+\S+\s+(?P<power>\S+)\s*/\s*(?P<cap>\S+)\s*"
    r"\|\s*(?P<used>\d+)MiB\s*/\s*(?P<total>\d+)MiB\s*"
    r"\|\s*\S+\s+(?P<compute>[^|]+?)\s*\|$"
)
# The start of a GPU row: "|   0  NVIDIA ..." (a process row starts with "|    0   N/A  N/A").
_GPU_ROW_START = re.compile(r"^\|\s{1,4}[0-9]{1,2}\s{1,3}(?!N/A)[A-Za-z]")
# |                                         |                        |             Disabled |
_ROW3 = re.compile(r"^\|\s*\|\s*\|\s*(?P<mig>[^|]*?)\s*\|$")

_COMPUTE_MODES = {
    "Default": "default",
    "E. Thread": "exclusive-thread",
    "E. Process": "exclusive-process",
    "Prohibited": "prohibited",
}


def parse_table(lines: list[str], ctx: ImportContext, joined_rows: bool = False) -> m.NvidiaSection:
    header = None
    for number, line in enumerate(lines, 1):
        found = _HEADER.search(line)
        if found:
            header = (number, found)
            break
    if header is None:
        raise ctx.fail(
            "not nvidia-smi output: no 'NVIDIA-SMI ... Driver Version: ...' header line",
            1,
            hint="import the output of `nvidia-smi` or `nvidia-smi -q`",
        )
    header_line, found = header
    driver = found.group("driver")
    cuda = found.group("cuda")
    values: dict[str, Any] = {
        "driver_present": True,
        "driver_version": driver,
        "cuda_driver_version": cuda if cuda and cuda != "N/A" else None,
        "source": "import",
    }
    gpus: list[m.Gpu] = []
    number = header_line
    while number < len(lines):
        line = lines[number].rstrip()
        number += 1
        if line.lstrip().startswith("| Processes") or "MIG devices" in line:
            break
        row1 = _ROW1.match(line)
        if not row1:
            if _GPU_ROW_START.match(line):
                ctx.warn(
                    f"this looks like a GPU's row but its columns cannot be read ({shown(line)}); that GPU is not recorded",
                    number,
                )
            continue
        row1_line = number
        while number < len(lines) and not lines[number].strip() and joined_rows:
            number += 1  # the folded part of a rejoined row
        row2_text = lines[number].rstrip() if number < len(lines) else ""
        row2 = _ROW2.match(row2_text)
        if not row2 and number >= len(lines) - 1 and not row2_text.startswith("|"):
            # The paste ends inside this GPU's row: its name is known, the rest is not.
            ctx.warn(
                f"GPU {row1.group('index')}: the table ends inside its row (cut off?); only its name is recorded",
                row1_line,
            )
            item = gpu(ctx, int(row1.group("index")), row1.group("name"), row1_line)
            if item is not None:
                gpus.append(item)
            break
        if not row2:
            raise ctx.fail(
                f"GPU {row1.group('index')}: the second line of its table row is missing or cut off "
                f"({shown(row2_text) if row2_text else 'end of file'})",
                number + 1,
                hint="paste the whole nvidia-smi table; it looks truncated",
            )
        number += 1
        mig = None
        while number < len(lines) and not lines[number].strip() and joined_rows:
            number += 1
        if number < len(lines):
            row3 = _ROW3.match(lines[number].rstrip())
            if row3:
                mig = row3.group("mig")
                number += 1
        index = int(row1.group("index"))
        mode = row1.group("mode")
        ecc = row1.group("ecc")
        cap = row2.group("cap")
        item = gpu(
            ctx,
            index,
            row1.group("name"),
            row1_line,
            memory_total_mib=int(row2.group("total")),
            persistence_mode={"On": "enabled", "Off": "disabled"}.get(mode),
            # "Volatile Uncorr. ECC" shows an error count when ECC is on and "Off" when it is off;
            # "N/A" when the board has no ECC or the value is unknown.
            ecc_mode="enabled" if ecc.isdigit() else ("disabled" if ecc == "Off" else None),
            compute_mode=_COMPUTE_MODES.get(row2.group("compute")),
            mig_mode={"Enabled": "enabled", "Disabled": "disabled"}.get(mig or ""),
            power_limit_w=_watts(cap),
        )
        if item is not None:
            gpus.append(item)
    if not gpus:
        ctx.warn("nvidia-smi listed no GPUs")
    return m.NvidiaSection(**_valid_section(values, ctx, header_line), gpus=tuple(gpus))


def _watts(text: str | None) -> int | None:
    if not text:
        return None
    found = re.fullmatch(r"([0-9]+)(?:\.[0-9]+)?\s*W", text.strip())
    return int(found.group(1)) if found else None


def _valid_section(values: dict[str, Any], ctx: ImportContext, line: int) -> dict[str, Any]:
    section = checked(m.NvidiaSection, values, "nvidia", ctx, line)
    assert section is not None  # no required fields
    return {k: getattr(section, k) for k in ("driver_present", "driver_version", "cuda_driver_version", "source")}


# --- nvidia-smi -q -----------------------------------------------------------------------

# "GPU 00000000:07:00.0" opens each GPU's section; the bus id itself is not kept.
_GPU_BLOCK = re.compile(r"GPU [0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]")
_QUERY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[^:]*?)\s*(?::\s*(?P<value>.*?))?\s*$")


def parse_query(lines: list[str], ctx: ImportContext, ended: bool = True) -> m.NvidiaSection:
    """``nvidia-smi -q``: a header of ``Key : Value`` lines, then one indented block per GPU.

    Every view of it is complete input: ``-q -d MEMORY,CLOCK`` prints only
    some sections of each GPU, ``-q -i 1`` only one GPU's block.  A report
    that stops mid-line (no line end after its last line) keeps everything
    before that line, with a warning.
    """
    if not ended and lines and lines[-1].strip():
        ctx.warn(
            "the report ends in the middle of a line: it looks cut off; what comes before that line is kept",
            len(lines),
        )
        lines = lines[:-1]
    top: dict[str, tuple[str, int]] = {}
    blocks: list[tuple[int, dict[tuple[str, ...], tuple[str, int]]]] = []
    current: dict[tuple[str, ...], tuple[str, int]] | None = None
    path: list[tuple[int, str]] = []  # (indent, key) of the open sections
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("====="):
            continue
        if _GPU_BLOCK.fullmatch(line.rstrip()):
            current = {}
            blocks.append((number, current))
            path = []
            continue
        found = _QUERY_LINE.match(line)
        if not found:  # pragma: no cover - the pattern matches every line
            continue
        indent = len(found.group("indent"))
        key = found.group("key").strip()
        value = found.group("value")
        if indent == 0:
            if value is not None and current is None:
                top[key] = (value, number)
            continue
        if current is None:
            continue
        while path and path[-1][0] >= indent:
            path.pop()
        if value is None:
            path.append((indent, key))
        else:
            current[tuple(p[1] for p in path) + (key,)] = (value, number)
    if "Driver Version" not in top:
        raise ctx.fail(
            "not `nvidia-smi -q` output: no 'Driver Version :' line in its header",
            1,
            hint="import the output of `nvidia-smi` or `nvidia-smi -q`",
        )
    driver, driver_line = top["Driver Version"]
    cuda = top.get("CUDA Version", (None, 0))[0]
    values = {
        "driver_present": True,
        "driver_version": driver,
        "cuda_driver_version": cuda if cuda and cuda != "N/A" else None,
        "source": "import",
    }
    attached = top.get("Attached GPUs")
    shown_only_some = bool(attached and attached[0].isdigit() and int(attached[0]) > len(blocks))
    if shown_only_some:
        assert attached is not None
        ctx.warn(
            f"the report shows {len(blocks)} of the {attached[0]} attached GPUs (an `nvidia-smi -q -i` view, or "
            "a report cut short); only those are recorded",
            attached[1],
        )
    gpus = []
    unnamed = []
    for position, (block_line, fields) in enumerate(blocks):
        index = position
        minor = _field(fields, ("Minor Number",))
        if shown_only_some and minor and minor.isdigit():
            index = int(minor)  # `-i 1` shows GPU 1 alone
        name = _field(fields, ("Product Name",))
        if name is None:
            unnamed.append(block_line)
            continue
        power = (
            _field(fields, ("GPU Power Readings", "Current Power Limit"))
            or _field(fields, ("Power Readings", "Enforced Power Limit"))
            or _field(fields, ("Power Readings", "Power Limit"))
        )
        item = gpu(
            ctx,
            index,
            name,
            fields[("Product Name",)][1],
            memory_total_mib=_number(_field(fields, ("FB Memory Usage", "Total")), "MiB"),
            persistence_mode=_on_off(_field(fields, ("Persistence Mode",))),
            mig_mode=_on_off(_field(fields, ("MIG Mode", "Current"))),
            ecc_mode=_on_off(_field(fields, ("ECC Mode", "Current"))),
            compute_mode={
                "Default": "default",
                "Exclusive_Thread": "exclusive-thread",
                "Exclusive_Process": "exclusive-process",
                "Prohibited": "prohibited",
            }.get(_field(fields, ("Compute Mode",)) or ""),
            power_limit_w=_watts(power),
            max_sm_clock_mhz=_number(_field(fields, ("Max Clocks", "SM")), "MHz"),
            max_memory_clock_mhz=_number(_field(fields, ("Max Clocks", "Memory")), "MHz"),
            pci_device_id=_device_id(_field(fields, ("PCI", "Device Id"))),
        )
        if item is not None:
            gpus.append(item)
    if unnamed:
        ctx.warn(
            f"{len(unnamed)} GPU sections name no model (an `nvidia-smi -q -d ...` view prints only the sections "
            "asked for); those GPUs are not recorded: import `nvidia-smi -q` without -d to record them",
            unnamed[0],
        )
    return m.NvidiaSection(**_valid_section(values, ctx, driver_line), gpus=tuple(gpus))


def _field(fields: dict[tuple[str, ...], tuple[str, int]], key: tuple[str, ...]) -> str | None:
    found = fields.get(key)
    if found is None or found[0] in ("N/A", "", "Unknown Error", "Not Supported"):
        return None
    return found[0]


def _number(text: str | None, unit: str) -> int | None:
    if not text:
        return None
    found = re.fullmatch(rf"([0-9]+)\s*{unit}", text.strip())
    return int(found.group(1)) if found else None


def _on_off(text: str | None) -> str | None:
    return {"Enabled": "enabled", "Disabled": "disabled"}.get(text or "")


def _device_id(text: str | None) -> str | None:
    # "0x223610DE": the PCI device and vendor id of the board model, the same
    # for every A10; it identifies the model, not the machine.
    if text and re.fullmatch(r"0x[0-9A-Fa-f]{8}", text):
        return text
    return None
