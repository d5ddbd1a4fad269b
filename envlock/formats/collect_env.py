"""Import the text of ``python -m torch.utils.collect_env``, in every shape it has had.

The report is prose, so it is read in two steps: ``parse_report`` turns the
text into a ``CollectEnvReport`` holding every field the report prints, and
``report_sections`` maps that onto lock sections.  Shapes handled (each one
seen in ../shared/corpus/collect_env): the 2019 format with Yes/No booleans
and ``[pip]`` rows; 1.x and 2.x formats with and without ROCm, HIP,
XNNPACK, ``CUDA_MODULE_LOADING`` and the lscpu ``CPU:`` block; Windows and
macOS reports; the "Probably one of the following:" cuDNN list; pastes that
start with a shell prompt or a RuntimeWarning; blocks wrapped in backticks;
e-mail replies whose long lines were folded onto the next line; and variants
that add lines of their own (OneDiff, vLLM-Ascend with ``ENV Variables:``,
``NPU:`` and ``CANN:`` blocks).

What collect_env measures, and so where each value goes in the lock:
"CUDA runtime version" is ``nvcc --version`` (a system component), "cuDNN
version" is whatever ``libcudnn`` files it found on the system, "HIP/MIOpen
runtime version" come from torch's own build configuration, and the library
list holds only the packages whose names collect_env considers relevant
(torch, numpy, mypy, triton, ...).  So the Python and conda package lists of
an imported report are partial; a warning in the lock says so.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.capture.cpu import recorded_flags
from envlock.capture.cpu_microarch import x86_microarchitecture
from envlock.formats.importers import ImportContext, checked, shown, split_lines, unique
from envlock.formats.nvidia_smi import compute_capability
from envlock.lockfile import model as m
from envlock.lockfile.allowed_env import is_allowed_env_name
from envlock.names import canonical_name
from envlock.records import field, record

# The labels collect_env prints, and the report attribute each one fills.
LABELS = {
    "PyTorch version": "torch_version",
    "Is debug build": "debug_build",
    "CUDA used to build PyTorch": "cuda_build",
    "ROCM used to build PyTorch": "rocm_build",
    "OS": "os",
    "GCC version": "gcc",
    "Clang version": "clang",
    "CMake version": "cmake",
    "Libc version": "libc",
    "Python version": "python_version",
    "Python platform": "python_platform",
    "Is CUDA available": "cuda_available",
    "CUDA runtime version": "cuda_runtime",
    "CUDA_MODULE_LOADING set to": "cuda_module_loading",
    "GPU models and configuration": "gpu_config",
    "Nvidia driver version": "driver_version",
    "cuDNN version": "cudnn",
    "HIP runtime version": "hip_runtime",
    "MIOpen runtime version": "miopen_runtime",
    "Is XNNPACK available": "xnnpack",
    "Is XPU available": "xpu_available",  # torch 2.9+
}
# Fields whose value may continue on the following lines (a list of GPUs, of cuDNN files).
LIST_FIELDS = ("gpu_config", "cudnn")
SECTION_CPU = "CPU"
SECTION_LIBRARIES = "Versions of relevant libraries"
SECTION_ENV = "ENV Variables"

# "Could not collect", "N/A", "No CUDA", "None": collect_env's ways of saying it does not know.
_NOT_KNOWN = {"could not collect", "n/a", "no cuda", "none", "", "unknown"}


@record(frozen=False)
class LibraryRow:
    kind: str  # "pip" or "conda"
    name: str
    version: str
    build: str | None
    channel: str | None
    line: int


@record(frozen=False)
class CollectEnvReport:
    """Every field of one collect_env report, as printed (``None`` when absent)."""

    fields: dict[str, str] = field(default_factory=dict)  # attr -> raw value (LABELS)
    field_lines: dict[str, int] = field(default_factory=dict)
    gpus: list[tuple[str, int]] = field(default_factory=list)  # (name, line)
    cudnn_files: list[tuple[str, int]] = field(default_factory=list)  # (path or version, line)
    cpu: dict[str, str] = field(default_factory=dict)  # lscpu / wmic key -> value
    cpu_text: list[str] = field(default_factory=list)  # lines of a CPU block that are not key: value (macOS)
    libraries: list[LibraryRow] = field(default_factory=list)
    env: dict[str, tuple[str, int]] = field(default_factory=dict)
    extra_labels: list[str] = field(default_factory=list)  # lines of variants envlock does not read
    # Lines of the variants' own blocks ("NPU:", "CANN:"), by label: read for non-NVIDIA accelerators.
    blocks: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


_LABEL_LINE = re.compile(r"^(?P<label>[A-Za-z][A-Za-z0-9 _().'/-]{0,60}?):(?:\s(?P<value>.*))?$")
_LIBRARY_ROW = re.compile(r"^\[(?P<kind>pip3?|conda)\]\s+(?P<rest>.*)$")


def _strip_wrapping(lines: list[str]) -> list[str]:
    """Remove what a paste wraps around the block: backticks, code fences."""
    out = []
    for line in lines:
        if line.strip().startswith("```"):
            out.append("")
            continue
        out.append(line)
    if out:
        if out[0].startswith("`"):
            out[0] = out[0][1:]
        if out[-1].rstrip().endswith("`"):
            out[-1] = out[-1].rstrip()[:-1]
    return out


def parse_report(text: str, ctx: ImportContext) -> CollectEnvReport:
    """The text of one report to a ``CollectEnvReport`` (pure)."""
    lines = _strip_wrapping(split_lines(text, ctx))
    report = CollectEnvReport()
    start = None
    for number, line in enumerate(lines, 1):
        if line.strip().startswith("PyTorch version:"):
            start = number
            break
    if start is None:
        raise ctx.fail(
            "not collect_env output: it has no 'PyTorch version:' line",
            1,
            hint="import the output of `python -m torch.utils.collect_env`",
        )
    section = "header"
    last_field: str | None = None  # the field a folded line continues
    last_row: LibraryRow | None = None
    block_label = ""
    saw_libraries = False
    for number in range(start, len(lines) + 1):
        raw = lines[number - 1]
        line = raw.strip()
        if not line:
            if section in ("cpu", "env", "other-block") and not (
                section == "other-block" and report.blocks.get(block_label) == []
            ):
                section = "header"
            last_field = None
            continue
        label_match = _LABEL_LINE.match(line)
        label = label_match.group("label") if label_match else None
        value = (label_match.group("value") or "").strip() if label_match else ""

        if label in LABELS and section != "cpu":
            attr = LABELS[label]
            report.fields[attr] = value
            report.field_lines[attr] = number
            section = "header"
            last_field = attr
            if attr == "gpu_config" and value and value.lower() not in _NOT_KNOWN:
                report.gpus.append((value, number))
            if (
                attr == "cudnn"
                and value
                and value.lower() not in _NOT_KNOWN
                and not value.startswith("Probably one of")
            ):
                report.cudnn_files.append((value, number))
            continue
        if line == f"{SECTION_CPU}:" and section != "libraries":
            section = "cpu"
            last_field = None
            continue
        if line == f"{SECTION_LIBRARIES}:":
            section = "libraries"
            saw_libraries = True
            last_field = None
            continue
        if line == f"{SECTION_ENV}:":
            section = "env"
            continue

        if section == "cpu":
            pair = re.match(r"^([^:=]+?)\s*[:=]\s*(.*)$", line)
            if pair:
                key = pair.group(1).strip()
                report.cpu[key] = pair.group(2).strip()
                last_field = f"cpu:{key}"
            elif last_field and last_field.startswith("cpu:"):
                key = last_field[4:]
                report.cpu[key] = f"{report.cpu[key]} {line}"  # a folded line
            else:
                report.cpu_text.append(line)
            continue
        if section == "env":
            pair = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
            if pair:
                report.env[pair.group(1)] = (pair.group(2), number)
            continue
        if section == "libraries":
            row = _LIBRARY_ROW.match(line)
            if row:
                last_row = _library_row(row.group("kind"), row.group("rest"), number, ctx)
                if last_row is not None:
                    report.libraries.append(last_row)
                continue
            if line.startswith("[") and not _LIBRARY_ROW.match(line):
                ctx.warn(f"{shown(line)} is a library row cut short; it is not recorded", number)
                continue
            if label is None and last_row is not None and not line.startswith("["):
                # An e-mail client folded a long row: the rest belongs to the row above.
                joined = _library_row(last_row.kind, _row_text(last_row) + " " + line, last_row.line, ctx)
                if joined is not None:
                    report.libraries[-1] = last_row = joined
                continue
            section = "other"
        # Lines of the header or of a variant's extra blocks.
        if section == "header" and last_field in LIST_FIELDS and (label is None or re.match(r"GPU [0-9]+$", label)):
            if last_field == "gpu_config":
                report.gpus.append((line, number))
            else:
                report.cudnn_files.append((line, number))
            continue
        if label is not None and label_match and label_match.group("value") is not None:
            if label not in report.extra_labels:
                report.extra_labels.append(label)
            last_field = None
            continue
        if label is not None and value == "":
            # "NPU:", "CANN:", "free -h"-style blocks of variants: skipped up to the next blank line.
            if label not in report.extra_labels:
                report.extra_labels.append(label)
            section = "other-block"
            block_label = label
            report.blocks.setdefault(label, [])
            continue
        if section == "other-block":
            report.blocks[block_label].append((line, number))
            continue
        if section == "header" and last_field is not None and last_field not in LIST_FIELDS:
            # A long line folded by an e-mail client, e.g. "Python version: ... [Clang 15.0.0"
            # followed by "(clang-1500.1.0.2.5)] (64-bit runtime)".
            report.fields[last_field] = f"{report.fields[last_field]} {line}"
            continue
        # Anything else (vLLM's "free -h" table, npu-smi boxes) is not collect_env's and is ignored.
    if not saw_libraries:
        # A paste that ends early: what it has is imported; the library list is unknown, and said so.
        ctx.warn(
            f"the report stops before its '{SECTION_LIBRARIES}:' section: it looks cut off; "
            "what comes before is imported, the library list is unknown",
            len(lines),
        )
    return report


def _row_text(row: LibraryRow) -> str:
    if row.kind == "pip":
        return f"{row.name}=={row.version}"
    return " ".join(x for x in (row.name, row.version, row.build, row.channel) if x)


def _library_row(kind: str, rest: str, number: int, ctx: ImportContext) -> LibraryRow | None:
    rest = rest.strip()
    if rest.lower() == "could not collect":
        return None
    if kind.startswith("pip"):
        found = re.fullmatch(r"(\S+?)==(\S+)", rest)
        if not found:
            ctx.warn(f"skipped library row {shown(rest)}: not name==version", number)
            return None
        return LibraryRow("pip", found.group(1), found.group(2), None, None, number)
    parts = rest.split()
    if len(parts) < 2 or len(parts) > 4:
        ctx.warn(f"skipped conda row {shown(rest)}: not 'name version build [channel]'", number)
        return None
    name, version, *tail = parts
    build = tail[0] if tail else None
    channel = tail[1] if len(tail) > 1 else None
    return LibraryRow("conda", name, version, build, channel, number)


# --- report -> lock sections -------------------------------------------------------------


def _known(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in _NOT_KNOWN else value


def _yes_no(value: str | None) -> bool | None:
    return {"true": True, "yes": True, "false": False, "no": False}.get((value or "").strip().lower())


def _version_prefix(value: str | None) -> str | None:
    """The version a field starts with: ``3.9.16`` of ``3.9.16 (main, ...) [GCC]``."""
    found = re.match(r"\s*([0-9]+(?:\.[0-9]+)*)", value or "")
    return found.group(1) if found else None


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    return report_sections(parse_report(text, ctx), ctx)


def report_sections(report: CollectEnvReport, ctx: ImportContext) -> dict[str, Any]:
    sections = {
        "python": _python(report, ctx),
        "conda": _conda(report, ctx),
        "os": _os(report, ctx),
        "cuda": _cuda(report, ctx),
        "nvidia": _nvidia(report, ctx),
        "accelerators": _accelerators(report, ctx),
        "cpu": _cpu(report, ctx),
        "runtime": _runtime(report, ctx),
    }
    _note_unmapped(report, ctx)
    return sections


def _python(report: CollectEnvReport, ctx: ImportContext) -> m.PythonSection | None:
    version = _version_prefix(report.fields.get("python_version"))
    packages = []
    for row in report.libraries:
        if row.kind != "pip":
            continue
        pkg = checked(
            m.PythonPackage,
            {
                "name": canonical_name(row.name) if re.fullmatch(r"[A-Za-z0-9._-]+", row.name) else row.name,
                "version": row.version,
                "source": "unknown",
            },
            f"[pip] {shown(row.name)}",
            ctx,
            row.line,
        )
        if pkg is not None:
            packages.append(pkg)
    if version is None and not packages:
        return None
    if packages:
        ctx.warn(
            "python.packages: collect_env lists only the libraries it considers relevant (torch, numpy, ...); other packages are unknown"
        )
    return checked(
        m.PythonSection,
        {"version": version, "packages": unique(packages, lambda p: p.name, ctx, "Python package")},
        "python",
        ctx,
        report.field_lines.get("python_version"),
    )


def _conda(report: CollectEnvReport, ctx: ImportContext) -> m.CondaSection | None:
    packages = []
    for row in report.libraries:
        if row.kind != "conda":
            continue
        # pip-installed packages as conda sees them ("pypi_0 pypi", "<pip>", "dev_0 <develop>")
        # are already in the [pip] rows; they are not conda packages.
        if (
            row.channel in ("pypi", "<develop>")
            or row.build in ("<pip>", "pypi_0")
            or (row.build or "").startswith("dev_")
        ):
            continue
        pkg = checked(
            m.CondaPackage,
            {"name": row.name, "version": row.version, "build": row.build, "channel": row.channel},
            f"[conda] {shown(row.name)}",
            ctx,
            row.line,
        )
        if pkg is not None:
            packages.append(pkg)
    if not packages:
        return None
    ctx.warn("conda.packages: collect_env lists only the conda packages it considers relevant; the others are unknown")
    return m.CondaSection(packages=unique(packages, lambda p: p.name, ctx, "conda package"))


# Distribution names as collect_env prints them (platform.linux_distribution /
# /etc/os-release PRETTY_NAME) -> os-release ID.
_OS_IDS = (
    (r"^Ubuntu (?P<v>[0-9]+\.[0-9]+)", "ubuntu"),
    (r"^Debian GNU/Linux (?P<v>[0-9]+)", "debian"),
    (r"^CentOS Stream (?P<v>[0-9]+)", "centos"),
    (r"^CentOS Linux (?:release )?(?P<v>[0-9]+)", "centos"),
    (r"^Red Hat Enterprise Linux(?: Server)?(?: release)? (?P<v>[0-9]+(?:\.[0-9]+)?)", "rhel"),
    (r"^Rocky Linux (?:release )?(?P<v>[0-9]+(?:\.[0-9]+)?)", "rocky"),
    (r"^AlmaLinux (?:release )?(?P<v>[0-9]+(?:\.[0-9]+)?)", "almalinux"),
    (r"^Fedora (?:release |Linux )?(?P<v>[0-9]+)", "fedora"),
    (r"^Arch Linux", "arch"),
    (r"^(?:macOS|Mac OSX|Mac OS X) (?P<v>[0-9]+(?:\.[0-9]+)*)", "macos"),
    (r"Windows (?P<v>[0-9]+)\b", "windows"),
    (r"Windows", "windows"),
)


def _os(report: CollectEnvReport, ctx: ImportContext) -> m.OsSection | None:
    f = report.fields
    raw = _known(f.get("os"))
    values: dict[str, Any] = {}
    if raw:
        arch = re.search(r"\s\((x86_64|aarch64|arm64|ppc64le|s390x|i386|i686|armv7l|AMD64)\)$", raw)
        name = _repair_mojibake(raw[: arch.start()].strip() if arch else raw, ctx, report.field_lines.get("os"))
        values["name"] = name
        if arch:
            values["architecture"] = arch.group(1)
        for pattern, os_id in _OS_IDS:
            found = re.search(pattern, name)
            if found:
                values["id"] = os_id
                if "v" in found.groupdict() and found.group("v"):
                    values["version_id"] = found.group("v")
                break
    libc = _known(f.get("libc"))
    if libc:
        found = re.fullmatch(r"glibc-([0-9]+\.[0-9]+(?:\.[0-9]+)?)", libc)
        if found:
            values["glibc"] = found.group(1)
    platform_text = _known(f.get("python_platform"))
    if platform_text:
        # platform.platform(): "Linux-5.15.0-46-generic-x86_64-with-glibc2.29"
        found = re.match(
            r"^Linux-(?P<kernel>.+?)-(?P<arch>x86_64|aarch64|ppc64le|s390x|armv7l|i686)(?:-with-.*)?$", platform_text
        )
        if found:
            values["kernel"] = found.group("kernel")
            values.setdefault("architecture", found.group("arch"))
    if not values:
        return None
    return checked(m.OsSection, values, "os", ctx, report.field_lines.get("os"))


# cp866 (the Russian Windows console code page) read as cp1251 turns "Майкрософт"
# into "Њ ©Єа®б®дв" (corpus collect_env/11.txt): these letters give it away.
_CP866_AS_CP1251 = re.compile("[©®Є¤Ґ Њ]")


def _repair_mojibake(text: str, ctx: ImportContext, line: int | None) -> str:
    """Undo cp866-read-as-cp1251 mojibake when the result is plain Cyrillic; otherwise keep the text."""
    if not _CP866_AS_CP1251.search(text):
        return text
    try:
        repaired = text.encode("cp1251").decode("cp866")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
    if all(ord(c) < 0x80 or "\u0400" <= c <= "\u04ff" for c in repaired):
        ctx.warn(f"OS name was mojibake (cp866 text read as cp1251); recorded as {shown(repaired)}", line)
        return repaired
    return text


def _cuda(report: CollectEnvReport, ctx: ImportContext) -> m.CudaSection | None:
    f = report.fields
    components: list[m.CudaComponent] = []
    nvcc = _known(f.get("cuda_runtime"))
    if nvcc:
        item = checked(
            m.CudaComponent,
            {"name": "nvcc", "version": nvcc, "source": "system"},
            "CUDA runtime version",
            ctx,
            report.field_lines.get("cuda_runtime"),
        )
        if item:
            components.append(item)
    seen_cudnn: set[tuple[str, str]] = set()
    entries = [(text, number, *_cudnn_entry(text)) for text, number in report.cudnn_files]
    full_versions = [v for _t, _n, v, _l in entries if v]
    for text, number, version, location in entries:
        if version and any(other.startswith(version + ".") for other in full_versions):
            continue  # libcudnn.so.7 is the symlink to libcudnn.so.7.6.5: the same library, once
        if version is None:
            ctx.warn(f"cuDNN {shown(text)}: no version in the file name; left unknown", number)
            continue
        if (version, location or "") in seen_cudnn:
            continue
        # Every libcudnn_*.so.X.Y.Z of one install names the same version: keep the main library.
        if location and re.search(r"libcudnn_[a-z_]+\.so", location) and any(v == version for v, _ in seen_cudnn):
            continue
        seen_cudnn.add((version, location or ""))
        item = checked(
            m.CudaComponent,
            {"name": "cudnn", "version": version, "source": "system", "location": location},
            "cuDNN version",
            ctx,
            number,
        )
        if item:
            components.append(item)
    for attr, name in (("hip_runtime", "hip"), ("miopen_runtime", "miopen")):
        value = _known(f.get(attr))
        if value:
            item = checked(
                m.CudaComponent,
                {"name": name, "version": value, "source": "framework", "location": "torch"},
                attr,
                ctx,
                report.field_lines.get(attr),
            )
            if item:
                components.append(item)
    frameworks = []
    torch_version = _known(f.get("torch_version"))
    if torch_version:
        build = checked(
            m.FrameworkBuild,
            {
                "name": "torch",
                "version": torch_version,
                "cuda": _known(f.get("cuda_build")),
                "cudnn": _conda_torch_cudnn(report, torch_version),
                "rocm": _known(f.get("rocm_build")),
            },
            "PyTorch version",
            ctx,
            report.field_lines.get("torch_version"),
        )
        if build:
            frameworks.append(build)
    if not components and not frameworks:
        return None
    return m.CudaSection(components=tuple(components), frameworks=tuple(frameworks))


def _conda_torch_cudnn(report: CollectEnvReport, torch_version: str) -> str | None:
    """The cuDNN a conda pytorch build names (``py3.12_cuda12.1_cudnn8.9.2_0``), when it is this torch."""
    for row in report.libraries:
        if row.kind == "conda" and row.name in ("pytorch", "pytorch-nightly") and row.version == torch_version:
            found = re.search(r"_cudnn([0-9]+(?:\.[0-9]+)*)_", row.build or "")
            if found:
                return found.group(1)
    return None


def _cudnn_entry(text: str) -> tuple[str | None, str | None]:
    """``(version, location)`` of one cuDNN line: a bare version, or a library path with its version."""
    text = text.strip()
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)*", text):
        return text, None
    from envlock.formats.importers import scrub

    location = scrub(text)
    name = re.split(r"[\\/]", text)[-1]
    found = re.search(r"\.so\.([0-9]+(?:\.[0-9]+)*)$", name) or re.search(
        r"cudnn(?:_[a-z_]+?)?(?:64)?_([0-9]+)\.dll$", name, re.IGNORECASE
    )
    if found:
        return found.group(1), location
    return None, location


def _nvidia(report: CollectEnvReport, ctx: ImportContext) -> m.NvidiaSection | None:
    f = report.fields
    driver = _known(f.get("driver_version"))
    gpus: list[m.Gpu] = []
    for position, (text, number) in enumerate(report.gpus):
        found = re.match(r"^GPU (?P<index>[0-9]+): (?P<name>.+)$", text)
        index, name = (int(found.group("index")), found.group("name")) if found else (position, text)
        name = name.strip()
        if gpu_vendor(name, report) is not None:
            continue  # recorded under [accelerators]
        item = checked(
            m.Gpu,
            {"index": index, "name": name, "compute_capability": compute_capability(name)},
            f"GPU {index}",
            ctx,
            number,
        )
        if item:
            gpus.append(item)
    if driver is None and not gpus:
        return None
    values = {"driver_present": True, "driver_version": driver, "source": "import"}
    section = checked(m.NvidiaSection, values, "nvidia", ctx, report.field_lines.get("driver_version"))
    if section is None:  # pragma: no cover - no required fields
        return None
    return m.NvidiaSection(
        driver_present=True,
        driver_version=section.driver_version,
        source="import",
        gpus=unique(gpus, lambda g: g.index, ctx, "GPU"),
    )


_AMD_NAME = re.compile(r"\bAMD\b|Radeon|Instinct|\bgfx[0-9]|\bMI[0-9]{2,3}X?\b|\bVega\b|\bNavi\b")
_INTEL_NAME = re.compile(r"\bIntel\b|\bArc\b|Data Center GPU")
_NVIDIA_NAME = re.compile(r"NVIDIA|Tesla|GeForce|Quadro|TITAN|\bRTX\b|\bGTX\b")


def gpu_vendor(name: str, report: CollectEnvReport) -> str | None:
    """``amd``/``intel`` for a GPU that is not NVIDIA's, ``None`` for an NVIDIA one.

    The name decides when it says; otherwise a ROCm build of torch with no
    NVIDIA driver is reporting an AMD device (older ROCm reports print bare
    marketing or board names such as "Device 66af").
    """
    if _NVIDIA_NAME.search(name):
        return None
    if _AMD_NAME.search(name):
        return "amd"
    if _INTEL_NAME.search(name):
        return "intel"
    rocm = _known(report.fields.get("rocm_build")) or _known(report.fields.get("hip_runtime"))
    if rocm and _known(report.fields.get("driver_version")) is None:
        return "amd"
    return None


# | 0     910B2               | OK            | 99.0        44                0    / 0             |
_NPU_ROW = re.compile(
    r"^\|\s*(?P<index>[0-9]+)\s+(?P<name>[A-Za-z0-9][A-Za-z0-9 ._-]*?)\s*\|\s*(?:OK|Warning|Alarm|Critical)\b"
)
# |                           | 0000:C1:00.0  | 0           0    / 0          63074/ 65536         |
_NPU_HBM = re.compile(r"([0-9]+)\s*/\s*([0-9]+)\s*\|\s*$")


# * [0] _XpuDeviceProperties(name='Intel(R) Data Center GPU Max 1550', ..., total_memory=65536MB, ...
_XPU_DEVICE = re.compile(r"^\*\s*\[(?P<index>[0-9]+)\]\s*_XpuDeviceProperties\(name='(?P<name>[^']+)'")
_XPU_MEMORY = re.compile(r"\btotal_memory=(?P<mib>[0-9]+)MB\b")


def _intel_gpus(report: CollectEnvReport, ctx: ImportContext) -> list[m.Accelerator]:
    """torch 2.8+ prints "Intel GPU models onboard:" (names) and "... detected:" (index, memory) blocks."""
    detected: dict[int, tuple[str, int | None, int]] = {}
    for line, number in report.blocks.get("Intel GPU models detected", []):
        found = _XPU_DEVICE.match(line)
        if found:
            memory = _XPU_MEMORY.search(line)
            detected[int(found.group("index"))] = (
                found.group("name"),
                int(memory.group("mib")) if memory else None,
                number,
            )
    onboard = [
        (line[1:].strip(), number)
        for line, number in report.blocks.get("Intel GPU models onboard", [])
        if line.startswith("*") and line[1:].strip()
    ]
    listed = [(i, name, number) for i, (name, number) in enumerate(onboard)] or [
        (i, name, number) for i, (name, _mib, number) in sorted(detected.items())
    ]
    items = []
    for index, name, number in listed:
        seen = detected.get(index)
        item = checked(
            m.Accelerator,
            {
                "index": index,
                "vendor": "intel",
                "name": name,
                "memory_total_mib": seen[1] if seen and seen[0] == name else None,
            },
            f"Intel GPU {index}",
            ctx,
            number,
        )
        if item is not None:
            items.append(item)
    return items


def _accelerators(report: CollectEnvReport, ctx: ImportContext) -> m.AcceleratorSection | None:
    """AMD/Intel GPUs named under "GPU models and configuration", and Ascend NPUs from vLLM-Ascend's npu-smi block."""
    devices: list[m.Accelerator] = []
    vendors: set[str] = set()
    for position, (text, number) in enumerate(report.gpus):
        found = re.match(r"^GPU (?P<index>[0-9]+): (?P<name>.+)$", text)
        index, name = (int(found.group("index")), found.group("name")) if found else (position, text)
        vendor = gpu_vendor(name.strip(), report)
        if vendor is None:
            continue
        arch = re.search(r"\s*\((gfx[0-9a-f]+)(?::[^)]*)?\)\s*$", name)
        item = checked(
            m.Accelerator,
            {
                "index": index,
                "vendor": vendor,
                "name": name[: arch.start()].strip() if arch else name.strip(),
                "architecture": arch.group(1) if arch else None,
            },
            f"GPU {index}",
            ctx,
            number,
        )
        if item is not None:
            devices.append(item)
            vendors.add(vendor)
    for item in _intel_gpus(report, ctx):
        devices.append(item)
        vendors.add("intel")
    npu_lines = report.blocks.get("NPU", [])
    for position, (line, number) in enumerate(npu_lines):
        row = _NPU_ROW.match(line)
        if not row:
            continue
        following = npu_lines[position + 1][0] if position + 1 < len(npu_lines) else ""
        hbm = _NPU_HBM.search(following)
        name = row.group("name").strip()
        item = checked(
            m.Accelerator,
            {
                "index": int(row.group("index")),
                "vendor": "huawei",
                "name": name if name.startswith("Ascend") else f"Ascend {name}",
                "architecture": ("Ascend" + name) if re.fullmatch(r"[0-9]{3}[A-Z0-9]*", name) else None,
                "memory_total_mib": int(hbm.group(2)) if hbm else None,
            },
            f"NPU {row.group('index')}",
            ctx,
            number,
        )
        if item is not None:
            devices.append(item)
            vendors.add("huawei")
    if not devices:
        return None
    runtime, version = None, None
    if vendors == {"amd"}:
        runtime = "rocm"
        version = _known(report.fields.get("hip_runtime")) or _known(report.fields.get("rocm_build"))
    elif vendors == {"intel"}:
        runtime = "oneapi"
    elif vendors == {"huawei"}:
        runtime = "cann"
        for line, _number in report.blocks.get("CANN", []):
            found = re.fullmatch(r"version=(\S+)", line.strip())
            if found:
                version = found.group(1)
                break
    section = checked(
        m.AcceleratorSection,
        {"runtime": runtime, "runtime_version": version, "source": "import"},
        "accelerators",
        ctx,
    )
    assert section is not None  # no required fields
    return m.AcceleratorSection(
        runtime=section.runtime,
        runtime_version=section.runtime_version,
        source="import",
        devices=unique(devices, lambda d: d.index, ctx, "accelerator"),
    )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    try:
        return int(value, 0) if re.fullmatch(r"0x[0-9a-fA-F]+|[0-9]+", value) else None
    except ValueError:  # pragma: no cover - the pattern rules this out
        return None


def _cpu(report: CollectEnvReport, ctx: ImportContext) -> m.CpuSection | None:
    cpu = report.cpu
    values: dict[str, Any] = {}
    if cpu:
        # lscpu on Linux; wmic-style Name/Manufacturer on Windows.
        values["architecture"] = cpu.get("Architecture") if "Vendor ID" in cpu or "Model name" in cpu else None
        values["vendor"] = cpu.get("Vendor ID") or cpu.get("Manufacturer")
        values["model_name"] = cpu.get("Model name") or cpu.get("Name")
        values["family"] = _int(cpu.get("CPU family"))
        values["model"] = _int(cpu.get("Model"))
        values["stepping"] = _int(cpu.get("Stepping"))
        values["logical_cores"] = _int(cpu.get("CPU(s)"))
        sockets = _int(cpu.get("Socket(s)"))
        per_socket = _int(cpu.get("Core(s) per socket"))
        values["sockets"] = sockets
        values["physical_cores"] = sockets * per_socket if sockets and per_socket else None
        values["numa_nodes"] = _int(cpu.get("NUMA node(s)"))
        flags = frozenset((cpu.get("Flags") or "").split())
        if flags:
            # The same flag selection and microarchitecture rules as `envlock capture`,
            # so an imported CPU and a captured one compare field by field.
            values["flags"] = recorded_flags(flags)
        if values["architecture"] in ("x86_64", "i686") or (
            values["vendor"] in ("GenuineIntel", "AuthenticAMD") and flags
        ):
            values["microarchitecture"] = x86_microarchitecture(
                values["vendor"], values["family"], values["model"], flags
            )
    elif report.cpu_text:
        values["model_name"] = report.cpu_text[0]  # macOS: the brand string alone
    values = {k: v for k, v in values.items() if v not in (None, "", ())}
    if not values:
        return None
    return checked(m.CpuSection, values, "cpu", ctx)


def _runtime(report: CollectEnvReport, ctx: ImportContext) -> m.RuntimeSection | None:
    env: dict[str, str] = {}
    loading = _known(report.fields.get("cuda_module_loading"))
    if loading:
        env["CUDA_MODULE_LOADING"] = loading
    for name, (value, _number) in sorted(report.env.items()):
        if is_allowed_env_name(name):
            env[name] = value
    from envlock.lockfile import fields as chk

    kept = {}
    for name, value in env.items():
        problem = chk.long_text(value)
        if problem:
            ctx.warn(f"runtime.env.{name}: left unknown: {problem}")
            continue
        kept[name] = value
    if not kept:
        return None
    ctx.warn("runtime.env: the report shows only " + ", ".join(sorted(kept)) + "; other numerics variables are unknown")
    return m.RuntimeSection(env=kept)


def _note_unmapped(report: CollectEnvReport, ctx: ImportContext) -> None:
    """Fields the lock has no place for are kept as one note, so nothing the report said is silently lost."""
    f = report.fields
    parts = []
    for attr, label in (
        ("debug_build", "debug build"),
        ("cuda_available", "CUDA available"),
        ("xnnpack", "XNNPACK available"),
        ("xpu_available", "XPU available"),
        ("gcc", "GCC"),
        ("clang", "Clang"),
        ("cmake", "CMake"),
    ):
        value = f.get(attr)
        if value is None:
            continue
        flag = _yes_no(value)
        parts.append(f"{label}: {('yes' if flag else 'no') if flag is not None else (_known(value) or 'unknown')}")
    bits = re.search(r"\((\d+)-bit runtime\)", f.get("python_version", ""))
    if bits:
        parts.append(f"Python {bits.group(1)}-bit")
    if parts:
        ctx.warn("collect_env also reported (no lock field): " + "; ".join(parts))
    if report.extra_labels:
        ctx.warn(
            "lines this variant of collect_env adds were not read: "
            + ", ".join(shown(x, 40) for x in report.extra_labels)
        )
