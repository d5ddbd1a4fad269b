"""NVIDIA driver and GPUs, through the ``nvidia-ml-py`` binding (``pynvml``).

This is the only module that talks to NVML.  Following gpustat's practice:

* ``nvmlInit`` is always paired with ``nvmlShutdown`` (``try/finally``);
* every field is read on its own: ``NVMLError_NotSupported`` (a GeForce board
  has no ECC or MIG; ``nvmlDeviceGetAttributes`` answers only for MIG
  instances) costs that field alone and is not worth a warning; any other
  NVML error costs that field and is recorded as a capture warning naming it
  (``FunctionNotFound``, a driver older than the binding, counts as not supported).

When NVML is missing (``NVMLError_LibraryNotFound``, the driver not loaded)
the kernel module's version files are the fallback
(:mod:`envlock.capture.nvidia_procfs`), else the driver is recorded absent.

Speed: a host without a driver (most CI runners, this project's development
machine) must not pay for importing ``pynvml`` (29-39 ms measured with
``-X importtime``, most of it ``ctypes.util``/``subprocess``/``shutil``).
``pynvml`` itself opens ``libnvidia-ml.so.1`` with ``ctypes.CDLL``; doing the
same first (0.2 ms when the library is absent) decides whether to import it.

``ENVLOCK_HOST_ROOT`` moves the ``/proc`` and ``/sys`` reads below another
directory; tests use it to replay recorded hosts and to keep a real host's
files out of simulated-host scenarios.
"""

from __future__ import annotations

import os

from envlock.capture import nvidia_procfs
from envlock.lockfile import fields as chk
from envlock.lockfile import model as m

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable
    from typing import Any

    from envlock.capture.collect import CaptureContext

HOST_ROOT_ENV = "ENVLOCK_HOST_ROOT"
NVML_LIBRARY = "libnvidia-ml.so.1"
MIB = 2**20

_ENABLE_STATE = {0: "disabled", 1: "enabled"}
_COMPUTE_MODES = {0: "default", 1: "exclusive-thread", 2: "prohibited", 3: "exclusive-process"}


def host_root() -> str:
    return os.environ.get(HOST_ROOT_ENV) or "/"


def probe_nvidia(ctx: CaptureContext) -> m.NvidiaSection:
    section = probe_nvml(include_private=ctx.include_private, warn=ctx.warn)
    if section is not None:
        return section
    return probe_module_files(host_root()) or m.NvidiaSection(driver_present=False)


# --- the kernel module's files ------------------------------------------------------


def probe_module_files(root: str | os.PathLike) -> m.NvidiaSection | None:
    """The driver version from /proc, else /sys; ``None`` when neither exists."""
    text = nvidia_procfs.read_proc_driver_version(root)
    version = nvidia_procfs.parse_proc_driver_version(text) if text else None
    if version and _valid(chk.version, version):
        return m.NvidiaSection(driver_present=True, driver_version=version, source="procfs")
    text = nvidia_procfs.read_sys_module_version(root)
    version = nvidia_procfs.parse_sys_module_version(text) if text else None
    if version and _valid(chk.version, version):
        return m.NvidiaSection(driver_present=True, driver_version=version, source="sysfs")
    return None


# --- NVML -------------------------------------------------------------------------------


def nvml_library_loadable() -> bool:
    """Whether ``libnvidia-ml.so.1`` can be opened, exactly as ``pynvml`` will open it.

    ``ctypes.CDLL`` calls ``_ctypes.dlopen`` (``dlopen(3)`` with
    ``RTLD_NOW``, added in C); calling it directly spares a host without a
    driver the import of the ``ctypes`` package (6-8 ms measured here, against
    1 ms for ``_ctypes``).
    """
    try:
        from _ctypes import dlopen
    except ImportError:  # not a POSIX build of CPython
        import ctypes

        def dlopen(name: str, mode: int) -> object:  # type: ignore[misc]  # returns the CDLL, not a handle: unused
            return ctypes.CDLL(name, mode)

    try:
        dlopen(NVML_LIBRARY, 0)  # ctypes.DEFAULT_MODE: RTLD_LOCAL on Linux
    except OSError:
        return False
    return True


def probe_nvml(
    *, include_private: bool = False, warn: Callable[[str], None] = lambda _m: None
) -> m.NvidiaSection | None:
    """Driver and GPUs from NVML; ``None`` when NVML is unavailable (so the caller falls back)."""
    if not nvml_library_loadable():
        return None
    try:
        import pynvml
    except ImportError:
        warn("nvidia: libnvidia-ml.so.1 is present but the nvidia-ml-py package is not importable; GPUs not recorded")
        return None
    try:
        pynvml.nvmlInit()
    except (pynvml.NVMLError_LibraryNotFound, pynvml.NVMLError_DriverNotLoaded):
        return None
    except pynvml.NVMLError as exc:
        warn(
            f"nvidia: nvmlInit failed ({_describe(exc)}); driver version taken from /proc if present, GPUs not recorded"
        )
        return None
    try:
        return _read_host(pynvml, _FieldReader(pynvml, warn), include_private)
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as exc:
            warn(f"nvidia: nvmlShutdown failed ({_describe(exc)})")


class _FieldReader:
    """Calls one NVML function; any failure costs only that field."""

    def __init__(self, pynvml: Any, warn: Callable[[str], None]):
        self.pynvml = pynvml
        self.warn = warn

    def __call__(self, where: str, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except (self.pynvml.NVMLError_NotSupported, self.pynvml.NVMLError_FunctionNotFound):
            # The board lacks the feature, or the binding is newer than the driver
            # and asks for an entry point the driver's library does not export:
            # unknown, and nothing the user can fix.
            return None
        except self.pynvml.NVMLError as exc:
            self.warn(f"nvidia: {where}: NVML answered {_describe(exc)}; left unknown")
        except (UnicodeError, ValueError, TypeError, AttributeError) as exc:
            # A binding older than the driver, or bytes the binding cannot decode.
            self.warn(f"nvidia: {where}: {type(exc).__name__}: {exc}; left unknown")
        return None

    def text(self, where: str, check: chk.Check, function: Callable[..., Any], *args: Any) -> str | None:
        """A string field, kept only if it passes the lockfile's own check (NVML's answers are untrusted too)."""
        value = self(where, function, *args)
        if value is None:
            return None
        cleaned = _text(value, check)
        if cleaned is None:
            from envlock.capture.privacy import shown

            self.warn(f"nvidia: {where}: NVML answered {shown(value)}, which a lockfile cannot hold; left unknown")
        return cleaned


def _describe(exc: Exception) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:  # NVMLError.__str__ itself calls into the library
        return type(exc).__name__


def _read_host(pynvml: Any, read: _FieldReader, include_private: bool) -> m.NvidiaSection:
    driver = read.text("driver-version", chk.version, pynvml.nvmlSystemGetDriverVersion)
    cuda_raw = read("cuda-driver-version", _cuda_driver_version, pynvml)
    nvml_version = read.text("nvml-version", chk.version, pynvml.nvmlSystemGetNVMLVersion)
    count = read("gpu count", pynvml.nvmlDeviceGetCount)
    gpus = []
    for index in range(count or 0):
        gpus.append(_read_gpu(pynvml, read, index, include_private))
    return m.NvidiaSection(
        driver_present=True,
        driver_version=driver,
        cuda_driver_version=format_cuda_version(cuda_raw) if isinstance(cuda_raw, int) else None,
        nvml_version=nvml_version,
        source="nvml",
        gpus=tuple(gpus),
    )


def _cuda_driver_version(pynvml: Any) -> int:
    try:
        return pynvml.nvmlSystemGetCudaDriverVersion_v2()
    except pynvml.NVMLError_FunctionNotFound:  # drivers before the _v2 entry point
        return pynvml.nvmlSystemGetCudaDriverVersion()


def format_cuda_version(raw: int) -> str | None:
    """``13000`` -> ``"13.0"``, ``12020`` -> ``"12.2"`` (CUDA's 1000*major + 10*minor encoding)."""
    if raw <= 0:
        return None
    return f"{raw // 1000}.{(raw % 1000) // 10}"


def _read_gpu(pynvml: Any, read: _FieldReader, index: int, include_private: bool) -> m.Gpu:
    where = f"gpu {index}"
    handle = read(f"{where} handle", pynvml.nvmlDeviceGetHandleByIndex, index)
    if handle is None:
        return m.Gpu(index=index)

    def field(name: str, function: Callable[..., Any], *args: Any) -> Any:
        return read(f"{where} {name}", function, handle, *args)

    capability = field("compute-capability", pynvml.nvmlDeviceGetCudaComputeCapability)
    memory = field("memory-total", pynvml.nvmlDeviceGetMemoryInfo)
    mig = field("mig-mode", pynvml.nvmlDeviceGetMigMode)
    ecc = field("ecc-mode", pynvml.nvmlDeviceGetEccMode)
    pci = field("pci-device-id", pynvml.nvmlDeviceGetPciInfo)
    attributes = field("multiprocessors", pynvml.nvmlDeviceGetAttributes)
    power_mw = field("power-limit", pynvml.nvmlDeviceGetEnforcedPowerLimit)
    uuid = serial = None
    if include_private:
        uuid = read.text(f"{where} uuid", chk.token, pynvml.nvmlDeviceGetUUID, handle)
        serial = read.text(f"{where} serial", chk.token, pynvml.nvmlDeviceGetSerial, handle)
    return m.Gpu(
        index=index,
        name=read.text(f"{where} name", chk.text, pynvml.nvmlDeviceGetName, handle) or "",
        compute_capability=_capability(capability),
        memory_total_mib=_mebibytes(getattr(memory, "total", None)),
        mig_mode=parse_mig_mode(mig),
        ecc_mode=_ENABLE_STATE.get(ecc[0]) if _is_pair(ecc) else None,
        compute_mode=_COMPUTE_MODES.get(field("compute-mode", pynvml.nvmlDeviceGetComputeMode)),
        persistence_mode=_ENABLE_STATE.get(field("persistence-mode", pynvml.nvmlDeviceGetPersistenceMode)),
        power_limit_w=_int(power_mw, 1000),
        max_sm_clock_mhz=_int(field("max-sm-clock", pynvml.nvmlDeviceGetMaxClockInfo, pynvml.NVML_CLOCK_SM)),
        max_memory_clock_mhz=_int(field("max-memory-clock", pynvml.nvmlDeviceGetMaxClockInfo, pynvml.NVML_CLOCK_MEM)),
        pci_device_id=_pci_device_id(getattr(pci, "pciDeviceId", None)),
        multiprocessors=_int(getattr(attributes, "multiprocessorCount", None)) or None,
        uuid=uuid,
        serial=serial,
    )


def parse_mig_mode(pair: Any) -> str | None:
    """NVML's (current, pending) MIG modes as one word."""
    if not _is_pair(pair):
        return None
    current, pending = (_ENABLE_STATE.get(value) for value in pair[:2])
    if current is None or pending is None:
        return None
    if current == pending:
        return current
    return "pending-enable" if pending == "enabled" else "pending-disable"


def _is_pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) >= 2


def _capability(value: Any) -> str | None:
    if not _is_pair(value) or not all(isinstance(part, int) and part >= 0 for part in value[:2]):
        return None
    return _text(f"{value[0]}.{value[1]}", chk.compute_capability)


def _pci_device_id(value: Any) -> str | None:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        return None
    return f"0x{value:08X}"


def _mebibytes(value: Any) -> int | None:
    """Bytes to MiB, rounded down as nvidia-smi prints them (143771 MiB for an H200)."""
    value = _int(value)
    return None if value is None else value // MIB


def _int(value: Any, divisor: int = 1) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return None
    return round(value / divisor) if divisor != 1 else value


def _text(value: Any, check: chk.Check) -> str | None:
    """A string NVML gave, if it passes the lockfile's own check for that field."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value and _valid(check, value) else None


def _valid(check: chk.Check, value: str) -> bool:
    return check(value) is None
