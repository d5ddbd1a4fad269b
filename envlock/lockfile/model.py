"""The lockfile as frozen records (:mod:`envlock.records`).

Every layer is optional: ``None`` means *unknown* (an imported ``pip freeze``
knows nothing about GPUs), while a captured layer that found nothing says so
explicitly (``nvidia.driver-present = false``, an empty package list).

On disk, keys are kebab-case; attributes are snake_case.  ``to_dict`` and
``from_dict`` (in :mod:`envlock.lockfile.codec`) convert in one place, driven
by the field types and the ``check`` metadata declared here.
"""

from __future__ import annotations

from envlock.lockfile import fields as chk
from envlock.records import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import Any

LOCK_VERSION = "1.0"


def f(
    check: chk.Check | None = None, default: Any = None, *, private: bool = False, sort_key: str | None = None
) -> Any:
    """A record field with its validation check.

    ``private`` marks values that capture omits unless ``--include-private``.
    ``sort_key`` names the attribute a tuple of models is sorted by when written.
    """
    meta = {"check": check, "private": private, "sort_key": sort_key}
    if isinstance(default, (list, dict, tuple)) and default != ():
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


# --- Python -----------------------------------------------------------------

PACKAGE_SOURCES = ("index", "url", "vcs", "directory", "editable", "unknown")


@record
class CudaLibrary:
    """One shared library of a package and the kernel architectures its fat binaries carry (issue 16)."""

    package: str = f(chk.python_name, "")
    # Relative to the site directory, as the package's RECORD lists it.
    file: str = f(chk.relative_path, "")
    sass: tuple[str, ...] = f(chk.arch_name, ())
    ptx: tuple[str, ...] = f(chk.arch_name, ())


@record
class PythonPackage:
    name: str = f(chk.python_name, "")
    version: str = f(chk.version, "")
    installer: str | None = f(chk.token)
    requested: bool | None = f()
    # Where the distribution came from (PEP 610 direct_url.json): ``index``
    # when there is no direct_url.json.
    source: str = f(chk.one_of(*PACKAGE_SOURCES), "index")
    url: str | None = f(chk.url)
    vcs: str | None = f(chk.one_of("git", "hg", "svn", "bzr"))
    commit: str | None = f(chk.pattern(r"[0-9a-f]{7,64}", "VCS commit id", 64))
    subdirectory: str | None = f(chk.relative_path)
    archive_hash: str | None = f(chk.sha256)
    # Kernel architectures embedded in the package's CUDA libraries (issue 4):
    # the union over its libraries; each library's own lists are in
    # PythonSection.cuda_libraries.
    cuda_sass: tuple[str, ...] = f(chk.arch_name, ())
    cuda_ptx: tuple[str, ...] = f(chk.arch_name, ())
    # What identifies the installed artifact, read offline by capture (issue 11):
    # the wheel tags and build tag from its WHEEL file, and the content digest
    # over the files its RECORD lists (defined in docs/lockfile.md and
    # envlock.capture.content_digest).
    wheel_tags: tuple[str, ...] = f(chk.wheel_tag, ())
    build_tag: str | None = f(chk.build_tag)
    content_digest: str | None = f(chk.sha256)
    # The exact file on its index, recorded by ``envlock pin`` (the one
    # deliberate network step); replay installs this file and no other.
    file: str | None = f(chk.dist_filename)
    file_url: str | None = f(chk.url)
    file_sha256: str | None = f(chk.sha256)
    file_size: int | None = f()
    file_upload_time: str | None = f(chk.upload_time)
    file_index: str | None = f(chk.url)


@record
class PythonSection:
    implementation: str | None = f(chk.token)
    version: str | None = f(chk.version)
    abi_tag: str | None = f(chk.token)
    platform_tag: str | None = f(chk.token)
    environment_kind: str | None = f(chk.one_of("venv", "conda", "system", "unknown"))
    packages: tuple[PythonPackage, ...] = f(None, (), sort_key="name")
    # Per library, the kernels behind each package's cuda-sass/cuda-ptx union, so a
    # host check can say which library lacks which kernels (issue 16).  A table of
    # its own rather than one nested in each package: packages stay flat records.
    cuda_libraries: tuple[CudaLibrary, ...] = f(None, (), sort_key="file")


# --- conda ------------------------------------------------------------------


@record
class CondaPackage:
    name: str = f(chk.conda_name, "")
    version: str = f(chk.version, "")
    build: str | None = f(chk.conda_build)
    channel: str | None = f(chk.path_text)
    subdir: str | None = f(chk.token)
    url: str | None = f(chk.url)
    md5: str | None = f(chk.md5)
    sha256: str | None = f(chk.sha256)


@record
class CondaSection:
    packages: tuple[CondaPackage, ...] = f(None, (), sort_key="name")


# --- OS ---------------------------------------------------------------------


@record
class OsPackage:
    name: str = f(chk.os_package_name, "")
    version: str = f(chk.os_version, "")
    architecture: str | None = f(chk.token)
    manual: bool | None = f()
    # When the snapshot archive first saw this version (``envlock pin``): a
    # version superseded before the capture is in the archive at this time,
    # not at the capture time.
    first_seen: str | None = f(chk.timestamp)


@record
class OsSection:
    id: str | None = f(chk.token)
    version_id: str | None = f(chk.version)
    codename: str | None = f(chk.token)
    name: str | None = f(chk.text)
    kernel: str | None = f(chk.text)
    architecture: str | None = f(chk.token)
    glibc: str | None = f(chk.version)
    libstdcxx: str | None = f(chk.version)
    package_manager: str | None = f(chk.one_of("dpkg", "rpm", "apk"))
    # The time anchor of the OS layer (``envlock pin``): the snapshot archive
    # at this time holds what the mirror served when the lock was made.
    snapshot_time: str | None = f(chk.timestamp)
    packages: tuple[OsPackage, ...] = f(None, (), sort_key="name")


@record
class BaseImageSection:
    """The container image the environment ran in, when known: replay starts from these bytes."""

    reference: str | None = f(chk.text)  # name:tag as it was pulled
    digest: str | None = f(chk.sha256)  # the registry (manifest) digest


# --- CUDA -------------------------------------------------------------------

CUDA_SOURCES = ("system", "pip", "conda", "framework")


@record
class CudaComponent:
    """One CUDA library or tool, and where it was found."""

    name: str = f(chk.token, "")  # cudart, nvcc, cudnn, cublas, nccl, ...
    version: str = f(chk.version, "")
    source: str = f(chk.one_of(*CUDA_SOURCES), "system")
    # A path (home written as ~) or, for pip/conda, the package that ships it.
    location: str | None = f(chk.path_text)


@record
class FrameworkBuild:
    """The CUDA/cuDNN versions a framework was built against, read from its files."""

    name: str = f(chk.python_name, "")
    version: str = f(chk.version, "")
    cuda: str | None = f(chk.version)
    cudnn: str | None = f(chk.version)
    rocm: str | None = f(chk.version)


@record
class CudaSection:
    components: tuple[CudaComponent, ...] = f(None, (), sort_key="name")
    frameworks: tuple[FrameworkBuild, ...] = f(None, (), sort_key="name")


# --- NVIDIA driver and GPUs ---------------------------------------------------


@record
class Gpu:
    index: int = f(None, 0)
    name: str = f(chk.text, "")
    compute_capability: str | None = f(chk.compute_capability)
    memory_total_mib: int | None = f()
    mig_mode: str | None = f(chk.one_of("enabled", "disabled", "pending-enable", "pending-disable"))
    ecc_mode: str | None = f(chk.one_of("enabled", "disabled"))
    compute_mode: str | None = f(chk.one_of("default", "exclusive-thread", "prohibited", "exclusive-process"))
    persistence_mode: str | None = f(chk.one_of("enabled", "disabled"))
    power_limit_w: int | None = f()
    max_sm_clock_mhz: int | None = f()
    max_memory_clock_mhz: int | None = f()
    pci_device_id: str | None = f(chk.pattern(r"0x[0-9A-Fa-f]{8}", "PCI device id", 10))
    multiprocessors: int | None = f()
    uuid: str | None = f(chk.token, private=True)
    serial: str | None = f(chk.token, private=True)


@record
class NvidiaSection:
    driver_present: bool = f(None, False)
    driver_version: str | None = f(chk.version)
    # The highest CUDA version the driver supports (cuDriverGetVersion), as
    # nvidia-smi prints it; not the toolkit in use.
    cuda_driver_version: str | None = f(chk.version)
    nvml_version: str | None = f(chk.version)
    source: str | None = f(chk.one_of("nvml", "procfs", "sysfs", "import"))
    gpus: tuple[Gpu, ...] = f(None, (), sort_key="index")


# --- accelerators that are not NVIDIA GPUs -------------------------------------------
# An AMD GPU seen in a ROCm build's report, an Intel GPU or a Huawei Ascend NPU is
# recorded as what it is: listing it under [nvidia] would claim a CUDA driver and
# compute capability it does not have.

ACCELERATOR_VENDORS = ("amd", "intel", "huawei", "apple", "other")


@record
class Accelerator:
    index: int = f(None, 0)
    vendor: str = f(chk.one_of(*ACCELERATOR_VENDORS), "other")
    name: str = f(chk.text, "")
    # The vendor's own architecture name: gfx90a (AMD), Ascend910B (Huawei).
    architecture: str | None = f(chk.token)
    memory_total_mib: int | None = f()


@record
class AcceleratorSection:
    # The vendor's compute stack and its version: ROCm/HIP, Ascend CANN, Intel oneAPI.
    runtime: str | None = f(chk.one_of("rocm", "cann", "oneapi", "mps", "other"))
    runtime_version: str | None = f(chk.version)
    driver_version: str | None = f(chk.version)
    source: str | None = f(chk.one_of("import"))
    devices: tuple[Accelerator, ...] = f(None, (), sort_key="index")


# --- CPU --------------------------------------------------------------------


@record
class CpuSection:
    architecture: str | None = f(chk.token)
    vendor: str | None = f(chk.text)
    model_name: str | None = f(chk.text)
    family: int | None = f()
    model: int | None = f()
    stepping: int | None = f()
    microarchitecture: str | None = f(chk.token)
    # Only the ISA flags that change numerics or kernel choice.
    flags: tuple[str, ...] = f(chk.token, ())
    logical_cores: int | None = f()
    physical_cores: int | None = f()
    sockets: int | None = f()
    numa_nodes: int | None = f()


# --- numerics-relevant runtime ---------------------------------------------------


@record
class NativeLibrary:
    """A BLAS/LAPACK/OpenMP library bundled by an installed package, found from its files."""

    package: str = f(chk.python_name, "")
    kind: str = f(chk.one_of("blas", "openmp", "lapack", "fft", "dnn"), "blas")
    name: str = f(chk.token, "")  # openblas, mkl, blis, gomp, iomp, ...
    file: str = f(chk.path_text, "")
    version: str | None = f(chk.version)


@record
class RuntimeSection:
    env: dict[str, str] = f(chk.long_text, {})
    libraries: tuple[NativeLibrary, ...] = f(None, (), sort_key="file")


# --- project ------------------------------------------------------------------


@record
class ProjectSection:
    commit: str | None = f(chk.git_commit)
    branch: str | None = f(chk.path_text)
    dirty: bool | None = f()
    diff_hash: str | None = f(chk.sha256)
    remote: str | None = f(chk.url)


# --- the lock -----------------------------------------------------------------


@record
class Lock:
    lock_version: str = f(chk.pattern(r"[0-9]+\.[0-9]+", "lock version (MAJOR.MINOR)", 16), LOCK_VERSION)
    created_by: str | None = f(chk.text)
    created_at: str | None = f(chk.timestamp)
    fingerprint: str | None = f(chk.sha256)
    # "capture", or "import:<format>" for a partial lock read from another tool's file.
    origin: str | None = f(chk.pattern(r"capture|import:[a-z-]+", "origin", 32))
    capture_warnings: tuple[str, ...] = f(chk.long_text, ())
    python: PythonSection | None = f()
    conda: CondaSection | None = f()
    os: OsSection | None = f()
    base_image: BaseImageSection | None = f()
    cuda: CudaSection | None = f()
    nvidia: NvidiaSection | None = f()
    accelerators: AcceleratorSection | None = f()
    cpu: CpuSection | None = f()
    runtime: RuntimeSection | None = f()
    project: ProjectSection | None = f()


# Fields that describe the file, not the environment: left out of the fingerprint.
FINGERPRINT_EXCLUDED = ("created_at", "fingerprint")
