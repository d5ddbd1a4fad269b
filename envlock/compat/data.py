"""Compatibility knowledge as data: loaders and pure lookups over ``compat/data/*.csv``.

The CSV files are transcribed from ``shared/facts/CUDA.md`` (NVIDIA's release
notes, compatibility guide and GPU list, each row with its source column) and
kept sorted; refresh them from the same public sources, never by guessing.
Tests compare every row with the facts file.

Nothing here probes the machine or imports ``envlock.capture``: the rules in
:mod:`envlock.compat.rules` apply these tables to two ``Lock`` objects.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from pathlib import Path
from typing import NamedTuple

from envlock.versions import major_minor, release_tuple

# envlock/compat/data/, shipped inside the wheel.  Read by path rather than
# through importlib.resources: envlock is never imported from a zip, and the
# import of importlib.resources was a measurable part of doctor's start-up.
DATA_DIR = Path(__file__).resolve().parent / "data"

# --- versions ------------------------------------------------------------------


def cuda_major_minor(text: str | None) -> tuple[int, int] | None:
    """The CUDA ``major.minor`` of a version text (``"12.1.105"``, ``"12.1"``, ``"121"`` is not accepted)."""
    return major_minor(text)


def format_cuda(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def cc_tuple(text: str | None) -> tuple[int, int] | None:
    """A compute capability ``"8.6"`` -> ``(8, 6)``."""
    parts = release_tuple(text)
    if not parts or len(parts) != 2:
        return None
    return parts[0], parts[1]


# --- loading -------------------------------------------------------------------


def read_rows(name: str) -> list[dict[str, str]]:
    """The rows of one data file as dicts (header names as keys, empty cells as ``""``)."""
    text = (DATA_DIR / name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


class DriverMinimum(NamedTuple):
    """One row of NVIDIA's "CUDA Toolkit and Corresponding Driver Versions" table."""

    cuda: tuple[int, int]
    update: int  # 0 = GA, 1.. = updates, -1 = release candidate
    toolkit: str  # the row's label as NVIDIA prints it
    linux: str
    windows: str | None
    source: str

    def driver_for(self, platform: str) -> str | None:
        return self.windows if platform == "windows" else self.linux


class MinorCompat(NamedTuple):
    """Minor-version compatibility: the lowest driver that runs any ``cuda_major.x`` runtime (with limits)."""

    cuda_major: int
    linux: str
    windows: str | None
    source: str

    def driver_for(self, platform: str) -> str | None:
        return self.windows if platform == "windows" else self.linux


class GpuModel(NamedTuple):
    gpu: str  # canonical model name, e.g. "A100", "RTX PRO 6000 Blackwell"
    compute_capability: tuple[int, int]
    architecture: str
    first_cuda: tuple[int, int] | None
    segment: str  # datacenter, consumer, workstation, embedded
    source: str

    @property
    def cc_text(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"

    @property
    def forward_compat_possible(self) -> bool:
        """CUDA forward compatibility (``cuda-compat``) is only for data-center GPUs and Jetson (CUDA.md 3.2.3)."""
        return self.segment in ("datacenter", "embedded")


class ArchChange(NamedTuple):
    cuda: tuple[int, int]
    status: str  # last-supported, removed, deprecated
    patterns: tuple[str, ...]  # "3.5", "5.*"
    architecture: str
    source: str

    def covers(self, cc: tuple[int, int]) -> bool:
        for pattern in self.patterns:
            major, _, minor = pattern.partition(".")
            if int(major) == cc[0] and (minor == "*" or int(minor) == cc[1]):
                return True
        return False


class TorchArchList(NamedTuple):
    torch: str  # "2.7.0" (exact) or "2.8" (every 2.8.x)
    cuda: tuple[int, int]
    sass: tuple[str, ...]
    ptx: tuple[str, ...]
    source: str


@functools.cache
def driver_minimums() -> tuple[DriverMinimum, ...]:
    rows = []
    for row in read_rows("driver_minimums.csv"):
        cuda = cuda_major_minor(row["cuda"])
        assert cuda is not None, row
        rows.append(
            DriverMinimum(
                cuda=cuda,
                update=int(row["update"]),
                toolkit=row["toolkit"],
                linux=row["linux_x86_64"],
                windows=row["windows_x86_64"] or None,
                source=row["source"],
            )
        )
    return tuple(rows)


@functools.cache
def minor_version_compat() -> tuple[MinorCompat, ...]:
    return tuple(
        MinorCompat(int(r["cuda_major"]), r["linux_x86_64"], r["windows_x86_64"] or None, r["source"])
        for r in read_rows("minor_version_compat.csv")
    )


@functools.cache
def gpu_models() -> tuple[GpuModel, ...]:
    rows = []
    for r in read_rows("compute_capabilities.csv"):
        cc = cc_tuple(r["compute_capability"])
        assert cc is not None, r
        rows.append(
            GpuModel(r["gpu"], cc, r["architecture"], cuda_major_minor(r["first_cuda"]), r["segment"], r["source"])
        )
    return tuple(rows)


@functools.cache
def arch_changes() -> tuple[ArchChange, ...]:
    rows = []
    for r in read_rows("dropped_architectures.csv"):
        cuda = cuda_major_minor(r["cuda"])
        assert cuda is not None, r
        rows.append(
            ArchChange(cuda, r["status"], tuple(r["compute_capabilities"].split()), r["architecture"], r["source"])
        )
    return tuple(rows)


@functools.cache
def torch_arch_lists() -> tuple[TorchArchList, ...]:
    rows = []
    for r in read_rows("torch_arch_lists.csv"):
        cuda = cuda_major_minor(r["cuda"])
        assert cuda is not None, r
        rows.append(TorchArchList(r["torch"], cuda, tuple(r["sass"].split()), tuple(r["ptx"].split()), r["source"]))
    return tuple(rows)


# --- lookups -------------------------------------------------------------------


def minimum_driver(cuda: str | tuple[int, int], platform: str = "linux") -> DriverMinimum | None:
    """The GA row for a CUDA runtime ``major.minor``: the first driver that supports it fully.

    A runtime reports only ``major.minor`` (``cudaRuntimeGetVersion``), and the
    driver of the GA release is the first to report that version, so update
    rows (which name the driver bundled with that update) are not minimums
    for the runtime.  ``None`` when the release is not in the table.
    """
    version = cuda if isinstance(cuda, tuple) else cuda_major_minor(cuda)
    if version is None:
        return None
    for row in driver_minimums():
        if row.cuda == version and row.update == 0:
            return row if row.driver_for(platform) else None
    return None


def driver_row(toolkit: str) -> DriverMinimum | None:
    """The row whose label is exactly ``toolkit`` (``"12.8 Update 1"``)."""
    for row in driver_minimums():
        if row.toolkit == toolkit:
            return row
    return None


def newest_known_cuda() -> tuple[int, int]:
    return max(row.cuda for row in driver_minimums())


def minor_compat_floor(cuda_major: int) -> MinorCompat | None:
    """Minor-version compatibility for a CUDA major (11 and later); ``None`` before CUDA 11."""
    for row in minor_version_compat():
        if row.cuda_major == cuda_major:
            return row
    return None


def driver_at_least(driver: str | None, minimum: str | None) -> bool | None:
    """``driver >= minimum`` as NVIDIA versions; ``None`` when either cannot be read."""
    have, need = release_tuple(driver), release_tuple(minimum)
    if have is None or need is None:
        return None
    return have >= need


_VENDOR_WORDS = {"NVIDIA", "TESLA", "GEFORCE", "QUADRO"}
_SPLIT = re.compile(r"[\s\-_/]+")


def _model_tokens(name: str) -> list[str]:
    tokens = [t for t in _SPLIT.split(name.upper()) if t]
    while tokens and tokens[0] in _VENDOR_WORDS:
        tokens.pop(0)
    return tokens


@functools.cache
def _models_by_length() -> tuple[tuple[tuple[str, ...], GpuModel], ...]:
    keyed = [(tuple(_model_tokens(model.gpu)), model) for model in gpu_models()]
    # Longest names first, so "RTX PRO 6000 Blackwell" wins over any shorter prefix.
    return tuple(sorted(keyed, key=lambda item: -len(item[0])))


def gpu_model(name: str | None) -> GpuModel | None:
    """The table row for an NVML board name (``"NVIDIA A100-SXM4-80GB"``, ``"Tesla V100-SXM2-16GB"``).

    The name is split into words (spaces, ``-``, ``_``, ``/``), vendor words
    (NVIDIA, Tesla, GeForce, Quadro) are dropped from its start, and a row
    matches when its words begin the name: ``A100`` matches ``A100 SXM4 80GB``
    but ``A10`` does not, and ``L40`` does not match ``L40S``.
    """
    if not name:
        return None
    tokens = tuple(_model_tokens(name))
    for key, model in _models_by_length():
        if tokens[: len(key)] == key:
            return model
    return None


def compute_capability_for(name: str | None) -> str | None:
    model = gpu_model(name)
    return model.cc_text if model else None


def architecture_name(cc: tuple[int, int]) -> str | None:
    """The architecture family of a compute capability when the table knows a GPU with that exact value."""
    names = {model.architecture for model in gpu_models() if model.compute_capability == cc}
    return sorted(names)[0] if len(names) == 1 else None


def unsupported_by_cuda(cuda: tuple[int, int], cc: tuple[int, int]) -> ArchChange | None:
    """The release change that took ``cc`` out of CUDA ``cuda``'s toolkit and libraries, if any.

    ``removed`` at release R applies to R and later; ``last-supported`` at R to
    releases after R.  ``deprecated`` never makes a GPU unsupported.
    """
    for change in arch_changes():
        if not change.covers(cc):
            continue
        if change.status == "removed" and cuda >= change.cuda:
            return change
        if change.status == "last-supported" and cuda > change.cuda:
            return change
    return None


def deprecated_in_cuda(cuda: tuple[int, int], cc: tuple[int, int]) -> ArchChange | None:
    for change in arch_changes():
        if change.status == "deprecated" and change.covers(cc) and cuda >= change.cuda:
            return change
    return None


def torch_arch_list(torch_version: str, cuda: tuple[int, int]) -> TorchArchList | None:
    """The published arch list of a PyTorch CUDA wheel: an exact version row first, then a ``major.minor`` row."""
    public = torch_version.split("+", 1)[0]
    parts = release_tuple(public)
    major_minor = f"{parts[0]}.{parts[1]}" if parts and len(parts) >= 2 else None
    for wanted in (public, major_minor):
        for row in torch_arch_lists():
            if row.torch == wanted and row.cuda == cuda:
                return row
    return None
