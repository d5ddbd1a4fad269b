"""A simulated NVIDIA host for tests: a fake ``libnvidia-ml.so.1`` built from C.

No GPU here, so the lowest boundary is replaced: ``fake_nvml.c`` (beside this
file) is compiled with gcc into a shared library named ``libnvidia-ml.so.1``;
the real ``nvidia-ml-py`` binding loads it through ``LD_LIBRARY_PATH`` in a
subprocess (the real ``envlock`` CLI), so envlock's NVML code runs unchanged.
The values come from a ``key=value`` file written from a :class:`FakeHost`.

Use from a test (issue 2 capture tests, issue 4 doctor host scenarios)::

    from tests.fakes.nvml import H200, FakeHost  # the fake_nvml fixture comes from tests/conftest.py
    from tests.conftest import run_envlock

    def test_h200_host(fake_nvml, tmp_path):
        env = fake_nvml.env(FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(H200,)))
        result = run_envlock("capture", "-o", str(tmp_path / "h.lock"), env=env)

``fake_nvml`` is a function-scoped fixture; the library itself is compiled
once per session (``fake_nvml_library``) and cached by source hash.
``fake_nvml.env(host)`` returns the environment additions for a subprocess:
``LD_LIBRARY_PATH`` (the fake first), ``FAKE_NVML_CONFIG`` (the values),
``FAKE_NVML_LOG`` (init/shutdown calls, read back with
``fake_nvml.calls()``) and ``ENVLOCK_HOST_ROOT`` (an empty directory, so the
``/proc`` and ``/sys`` fallback never reads the real host; pass
``host_root=`` to replay a recorded host instead).

Scenarios:

* ``FakeHost(...)`` with GPUs built from the presets below
  (``H200``, ``H100_SXM``, ``A100_SXM4_80GB``, ``A100_SXM4_40GB``, ``T4``,
  ``V100_SXM2_16GB``, ``RTX_3090``), adjusted with ``dataclasses.replace``
  (``replace(A100_SXM4_80GB, mig_mode=(1, 1))``).
* a field the board does not support: ``FakeGpu.unsupported=("ecc_mode",)``
  (NVML_ERROR_NOT_SUPPORTED), or any NVML error with ``errors={"name": 999}``.
* ``FakeHost.driver_not_loaded()``: the library loads but ``nvmlInit`` answers
  NVML_ERROR_DRIVER_NOT_LOADED (9), as on a host whose kernel module is absent.
* ``fake_nvml.no_library_env()``: no ``libnvidia-ml.so.1`` on the search path
  at all (``NVMLError_LibraryNotFound``).  On a machine with a real driver the
  system library would still be found, so that test is only exact on hosts
  without one; ``driver_not_loaded`` is exact everywhere.

Preset values are real boards' NVML answers where a public recording exists
(named per preset); memory is in bytes as NVML reports it (MiB x 2**20).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FAKE_SOURCE = Path(__file__).resolve().parent / "fake_nvml.c"
LIBRARY_NAME = "libnvidia-ml.so.1"

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2

MIB = 2**20


@dataclass(frozen=True)
class FakeGpu:
    """One GPU as NVML would describe it.  ``None`` or ``unsupported`` -> NOT_SUPPORTED."""

    name: str
    compute_capability: str | None
    memory_total_mib: int | None
    pci_device_id: int | None = None
    multiprocessors: int | None = None
    mig_mode: tuple[int, int] | None = (0, 0)  # current, pending (1 = enabled)
    ecc_mode: tuple[int, int] | None = (1, 1)
    compute_mode: int | None = 0  # NVML_COMPUTEMODE_DEFAULT
    persistence_mode: int | None = 1
    power_limit_w: int | None = None
    max_sm_clock_mhz: int | None = None
    max_memory_clock_mhz: int | None = None
    uuid: str | None = None
    serial: str | None = None
    unsupported: tuple[str, ...] = ()
    errors: dict[str, int] = field(default_factory=dict)

    def config_lines(self, index: int) -> list[str]:
        values = {
            "name": self.name,
            "compute_capability": self.compute_capability,
            "memory_total_bytes": None if self.memory_total_mib is None else self.memory_total_mib * MIB,
            "pci_device_id": None if self.pci_device_id is None else f"0x{self.pci_device_id:08X}",
            "multiprocessors": self.multiprocessors,
            "mig_mode": _pair(self.mig_mode),
            "ecc_mode": _pair(self.ecc_mode),
            "compute_mode": self.compute_mode,
            "persistence_mode": self.persistence_mode,
            "power_limit_mw": None if self.power_limit_w is None else self.power_limit_w * 1000,
            f"max_clock.{NVML_CLOCK_SM}": self.max_sm_clock_mhz,
            f"max_clock.{NVML_CLOCK_MEM}": self.max_memory_clock_mhz,
            "uuid": self.uuid,
            "serial": self.serial,
        }
        aliases = {
            "memory_total_mib": "memory_total_bytes",
            "power_limit_w": "power_limit_mw",
            "max_sm_clock_mhz": f"max_clock.{NVML_CLOCK_SM}",
            "max_memory_clock_mhz": f"max_clock.{NVML_CLOCK_MEM}",
        }
        for name in self.unsupported:
            values[aliases.get(name, name)] = f"!{NVML_ERROR_NOT_SUPPORTED}"
        for name, code in self.errors.items():
            values[aliases.get(name, name)] = f"!{code}"
        # An absent key is what the C side answers NOT_SUPPORTED for.
        return [f"gpu.{index}.{key}={value}" for key, value in values.items() if value is not None]


def _pair(pair: tuple[int, int] | None) -> str | None:
    return None if pair is None else f"{pair[0]},{pair[1]}"


@dataclass(frozen=True)
class FakeHost:
    """A driver and its GPUs; ``init_error`` makes ``nvmlInit`` fail with that NVML code."""

    driver_version: str | None = "580.65.06"
    cuda_driver_version: int | None = 13000  # 1000*major + 10*minor, as NVML returns it
    nvml_version: str | None = None
    gpus: tuple[FakeGpu, ...] = ()
    init_error: int | None = None

    @classmethod
    def driver_not_loaded(cls) -> FakeHost:
        return cls(init_error=NVML_ERROR_DRIVER_NOT_LOADED)

    def config_text(self) -> str:
        lines = ["# written by tests/fakes/nvml.py"]
        if self.init_error is not None:
            lines.append(f"init={self.init_error}")
        if self.driver_version is not None:
            lines.append(f"driver_version={self.driver_version}")
            # NVML's own version is "<CUDA major>.<driver version>" on real hosts.
            nvml = self.nvml_version
            if nvml is None and self.cuda_driver_version is not None:
                nvml = f"{self.cuda_driver_version // 1000}.{self.driver_version}"
            if nvml is not None:
                lines.append(f"nvml_version={nvml}")
        if self.cuda_driver_version is not None:
            lines.append(f"cuda_driver_version={self.cuda_driver_version}")
        lines.append(f"gpu_count={len(self.gpus)}")
        for index, gpu in enumerate(self.gpus):
            lines.extend(gpu.config_lines(index))
        return "\n".join(lines) + "\n"


# --- presets ------------------------------------------------------------------
# Memory totals are what nvidia-smi prints (MiB) for these boards; device ids,
# clocks and SM counts are the boards' published specifications.

# nvidia-smi on H200 SXM hosts (several public recordings) prints 143771MiB and a 700 W cap.
H200 = FakeGpu(
    name="NVIDIA H200",
    compute_capability="9.0",
    memory_total_mib=143771,
    pci_device_id=0x233510DE,
    multiprocessors=132,
    power_limit_w=700,
    max_sm_clock_mhz=1980,
    max_memory_clock_mhz=3201,
    uuid="GPU-5a3c1f0e-8b7d-4c2a-9e6f-0d1b2c3a4e5f",
    serial="1652724050001",
)
# From shared/corpus/nvidia_smi/13.query.h100x8.535.161.08.txt (nvidia-smi -q of a real node).
H100_SXM = FakeGpu(
    name="NVIDIA H100 80GB HBM3",
    compute_capability="9.0",
    memory_total_mib=81559,
    pci_device_id=0x233010DE,
    multiprocessors=132,
    power_limit_w=700,
    max_sm_clock_mhz=1980,
    max_memory_clock_mhz=2619,
    uuid="GPU-ee7954ec-da95-fd7a-ddfd-c6b32cc2f8aa",
    serial="1650124031592",
)
A100_SXM4_80GB = FakeGpu(
    name="NVIDIA A100-SXM4-80GB",
    compute_capability="8.0",
    memory_total_mib=81920,
    pci_device_id=0x20B210DE,
    multiprocessors=108,
    power_limit_w=400,
    max_sm_clock_mhz=1410,
    max_memory_clock_mhz=1593,
)
# 40960MiB and 400 W from shared/corpus/nvidia_smi/03.table.a100-sxm4-40gb.550.144.03.txt.
A100_SXM4_40GB = FakeGpu(
    name="NVIDIA A100-SXM4-40GB",
    compute_capability="8.0",
    memory_total_mib=40960,
    pci_device_id=0x20B010DE,
    multiprocessors=108,
    power_limit_w=400,
    max_sm_clock_mhz=1410,
    max_memory_clock_mhz=1215,
)
# A T4 reports 15360MiB, 70 W; persistence off is the common cloud default.
T4 = FakeGpu(
    name="Tesla T4",
    compute_capability="7.5",
    memory_total_mib=15360,
    pci_device_id=0x1EB810DE,
    multiprocessors=40,
    power_limit_w=70,
    max_sm_clock_mhz=1590,
    max_memory_clock_mhz=5001,
    persistence_mode=0,
)
V100_SXM2_16GB = FakeGpu(
    name="Tesla V100-SXM2-16GB",
    compute_capability="7.0",
    memory_total_mib=16384,
    pci_device_id=0x1DB110DE,
    multiprocessors=80,
    power_limit_w=300,
    max_sm_clock_mhz=1530,
    max_memory_clock_mhz=877,
)
# GeForce boards have no ECC: NVML answers NOT_SUPPORTED for it, and for MIG.
RTX_3090 = FakeGpu(
    name="NVIDIA GeForce RTX 3090",
    compute_capability="8.6",
    memory_total_mib=24576,
    pci_device_id=0x220410DE,
    multiprocessors=82,
    power_limit_w=350,
    max_sm_clock_mhz=2100,
    max_memory_clock_mhz=9751,
    mig_mode=None,
    ecc_mode=None,
    persistence_mode=0,
)
# Ada, compute capability 8.9 (NVIDIA's product specifications: 128 SMs, 24 GB, 450 W).
RTX_4090 = FakeGpu(
    name="NVIDIA GeForce RTX 4090",
    compute_capability="8.9",
    memory_total_mib=24564,
    pci_device_id=0x268410DE,
    multiprocessors=128,
    power_limit_w=450,
    max_sm_clock_mhz=3105,
    max_memory_clock_mhz=10501,
    mig_mode=None,
    ecc_mode=None,
    persistence_mode=0,
)


# --- building and running -----------------------------------------------------------


def build_fake_nvml(build_dir: Path) -> Path:
    """Compile ``fake_nvml.c`` into ``build_dir/<hash>/libnvidia-ml.so.1``; return that directory.

    Cached by the source's hash, so a session (or several) compiles it once.
    """
    source = FAKE_SOURCE.read_bytes()
    lib_dir = Path(build_dir) / hashlib.sha256(source).hexdigest()[:16]
    library = lib_dir / LIBRARY_NAME
    if library.is_file():
        return lib_dir
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.fail("gcc is needed to build the fake libnvidia-ml.so.1 (apt-get install gcc; .ci/run does)")
    lib_dir.mkdir(parents=True, exist_ok=True)
    partial = lib_dir / f".{LIBRARY_NAME}.{os.getpid()}"
    result = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(partial), str(FAKE_SOURCE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        pytest.fail(f"compiling {FAKE_SOURCE} failed:\n{result.stderr}")
    os.replace(partial, library)  # atomic: a parallel session never loads a half-written file
    return lib_dir


def fake_nvml_env(
    lib_dir: Path, config_path: Path, *, log_path: Path | None = None, host_root: Path | None = None
) -> dict[str, str]:
    """Environment additions that make a subprocess load the fake library with ``config_path``'s values."""
    search = [str(lib_dir)]
    if os.environ.get("LD_LIBRARY_PATH"):
        search.append(os.environ["LD_LIBRARY_PATH"])
    env = {"LD_LIBRARY_PATH": os.pathsep.join(search), "FAKE_NVML_CONFIG": str(config_path)}
    if log_path is not None:
        env["FAKE_NVML_LOG"] = str(log_path)
    if host_root is not None:
        env["ENVLOCK_HOST_ROOT"] = str(host_root)
    return env


class FakeNvml:
    """What the ``fake_nvml`` fixture hands a test."""

    def __init__(self, lib_dir: Path, work_dir: Path):
        self.lib_dir = lib_dir
        self.work_dir = work_dir
        self.config_path = work_dir / "fake-nvml.conf"
        self.log_path = work_dir / "fake-nvml.log"
        self.empty_root = work_dir / "empty-host-root"
        self.empty_root.mkdir(exist_ok=True)

    def env(self, host: FakeHost, *, host_root: Path | None = None) -> dict[str, str]:
        self.config_path.write_text(host.config_text())
        return fake_nvml_env(
            self.lib_dir, self.config_path, log_path=self.log_path, host_root=host_root or self.empty_root
        )

    def no_library_env(self, *, host_root: Path | None = None) -> dict[str, str]:
        """No fake on the search path: NVML is missing unless the machine has a real driver."""
        return {"ENVLOCK_HOST_ROOT": str(host_root or self.empty_root)}

    def calls(self) -> list[str]:
        """The nvmlInit/nvmlShutdown calls the library saw, in order."""
        try:
            return self.log_path.read_text().split()
        except FileNotFoundError:
            return []


@pytest.fixture(scope="session")
def fake_nvml_library(tmp_path_factory) -> Path:
    """The directory holding the compiled fake ``libnvidia-ml.so.1`` (built once per session)."""
    return build_fake_nvml(tmp_path_factory.getbasetemp() / "fake-nvml")


@pytest.fixture
def fake_nvml(fake_nvml_library, tmp_path) -> FakeNvml:
    """A fake NVIDIA host for one test: ``fake_nvml.env(FakeHost(...))`` -> env for ``run_envlock``."""
    return FakeNvml(fake_nvml_library, tmp_path)


def replace_gpu(gpu: FakeGpu, **changes) -> FakeGpu:
    """``dataclasses.replace`` for presets (kept here so tests read naturally)."""
    return dataclasses.replace(gpu, **changes)
