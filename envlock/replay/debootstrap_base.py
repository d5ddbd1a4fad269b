"""A base image built from the distribution's package mirror, for sites with no image registry.

Replay normally starts from a published image (``python:3.11-slim-bookworm``,
an NVIDIA CUDA image).  Air-gapped sites, and this machine, can reach a
Debian package mirror but no registry, so nothing can be pulled.  This module
builds an equivalent base from the mirror alone, in two images:

1. ``envlock/debian-minbase:<suite>`` — ``debootstrap --variant=minbase``
   into a directory, then ``tar -C DIR -c . | docker import -``.
2. ``envlock/python:<minor>-debian-<suite>`` — derived from (1) with the
   distribution's own Python (Debian 12: ``python3.11``) and ``venv``.

Both are reused when they exist and carry the recipe label of this envlock
(a base made by an older recipe is rebuilt, never silently trusted): building
(1) costs about a minute here (debootstrap measured at 58 s on 2 cores), (2)
about thirty seconds more.

The distribution's Python is rarely the locked patch release (Debian 12 ships
3.11.2; a lock from a ``python:3.11`` image says 3.11.7 or later), so the
caller reports the difference as a finding; it is never hidden.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from envlock.errors import EngineError
from envlock.records import record
from envlock.replay.context import ContextFile
from envlock.replay.engine import BuilderChoice, BuildRequest, DockerEngine, ImageInfo
from envlock.replay.progress import Progress, run_streaming
from envlock.versions import minor

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"

# The Python each Debian release ships (package python3.X); from
# packages.debian.org: bullseye 3.9.2, bookworm 3.11.2, trixie 3.13.5.
DEBIAN_PYTHON = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}
DEBIAN_CODENAME = {"11": "bullseye", "12": "bookworm", "13": "trixie"}
DEFAULT_SUITE = "bookworm"

ROOTFS_REPOSITORY = "envlock/debian-minbase"
PYTHON_REPOSITORY = "envlock/python"

# Labels the derived image carries, read back by replay.
LABEL_PYTHON = "org.envlock.base.python"
LABEL_PYTHON_VERSION = "org.envlock.base.python-version"
LABEL_SOURCE = "org.envlock.base.source"
# An image is reused only when it was made by the same recipe: a newer envlock
# that builds its base differently rebuilds it instead of trusting an old one.
LABEL_RECIPE = "org.envlock.base.recipe"
ROOTFS_RECIPE = "rootfs-2"  # bump whenever _tidy_rootfs or the import changes


@record
class BaseImageSpec:
    suite: str
    python_minor: str
    mirror: str = DEFAULT_MIRROR
    security_mirror: str = DEFAULT_SECURITY_MIRROR

    @property
    def rootfs_ref(self) -> str:
        return f"{ROOTFS_REPOSITORY}:{self.suite}"

    @property
    def ref(self) -> str:
        return f"{PYTHON_REPOSITORY}:{self.python_minor}-debian-{self.suite}"

    @property
    def python(self) -> str:
        return f"/usr/bin/python{self.python_minor}"


@record
class BaseImage:
    ref: str
    image_id: str
    python: str  # the interpreter inside the image
    python_version: str  # its exact version, e.g. 3.11.2
    suite: str
    reused: bool  # True when it already existed
    source: str  # how it was made, for the report

    def describe(self) -> str:
        how = "reused" if self.reused else "built"
        return f"{how} own base image {self.ref} ({self.image_id[:19]}; Python {self.python_version}; {self.source})"


# --- choosing (pure) -----------------------------------------------------------------


def choose_spec(
    python_version: str | None, os_id: str | None = None, os_version_id: str | None = None
) -> BaseImageSpec:
    """The Debian release and Python for a lock.

    The Python minor decides first: a different minor cannot install the
    locked binary wheels (cp311 vs cp312), while OS package differences are
    reported one by one.  Between releases with the same Python, the lock's
    own Debian release wins (its OS packages can then be installed exactly).
    """
    python_minor = minor(python_version)
    lock_suite = DEBIAN_CODENAME.get((os_version_id or "").split(".")[0]) if os_id == "debian" else None
    if python_minor:
        matching = [suite for suite, py in DEBIAN_PYTHON.items() if py == python_minor]
        if lock_suite in matching:
            return BaseImageSpec(lock_suite, python_minor)
        if matching:
            return BaseImageSpec(matching[0], python_minor)
    suite = lock_suite or DEFAULT_SUITE
    return BaseImageSpec(suite, DEBIAN_PYTHON[suite])


def python_dockerfile(spec: BaseImageSpec) -> str:
    """The derived image: the distribution's Python, venv support and CA roots (fixed text, no lock values)."""
    packages = [f"python{spec.python_minor}", f"python{spec.python_minor}-venv", "python3-venv", "ca-certificates"]
    install = (
        "apt-get update"
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        + " ".join(packages)
        + " && apt-get clean && rm -rf /var/lib/apt/lists/*"
    )
    return "\n".join(
        [
            "# Generated by envlock: the distribution's own Python on a debootstrap root filesystem.",
            f"FROM {spec.rootfs_ref}",
            'ENV LANG="C.UTF-8"',
            f'RUN ["/bin/sh", "-c", "{install}"]',
            f'LABEL {LABEL_PYTHON}="{spec.python}" {LABEL_SOURCE}="debootstrap --variant=minbase {spec.suite} {spec.mirror}"',
            'CMD ["bash"]',
            "",
        ]
    )


def python_recipe(spec: BaseImageSpec) -> str:
    """What the derived image is made from: its Dockerfile and the root filesystem's recipe."""
    import hashlib

    digest = hashlib.sha256(
        (ROOTFS_RECIPE + "\n" + python_dockerfile(spec) + sources_deb822(spec)).encode()
    ).hexdigest()
    return f"sha256:{digest[:32]}"


def sources_deb822(spec: BaseImageSpec) -> str:
    """APT sources for the root filesystem: the release, its updates and security (as Debian's images have)."""
    return (
        f"Types: deb\nURIs: {spec.mirror}\nSuites: {spec.suite} {spec.suite}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {spec.security_mirror}\nSuites: {spec.suite}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


# --- building --------------------------------------------------------------------------


def ensure_base_image(engine: DockerEngine, spec: BaseImageSpec, progress: Progress | None = None) -> BaseImage:
    """The Python base image for ``spec``: reused when present, else built from the mirror."""
    progress = progress or Progress()
    engine.ping()
    existing = engine.image(spec.ref)
    if existing is not None and existing.labels.get(LABEL_RECIPE) == python_recipe(spec):
        return _describe(engine, spec, existing, reused=True)
    rootfs = engine.image(spec.rootfs_ref)
    if rootfs is None or rootfs.labels.get(LABEL_RECIPE) != ROOTFS_RECIPE:
        progress.step(
            f"building {spec.rootfs_ref} with debootstrap from {spec.mirror} (no registry needed; about a minute)"
        )
        build_rootfs_image(engine, spec, progress)
    progress.step(f"building {spec.ref}: Debian's python{spec.python_minor} on {spec.rootfs_ref}")
    files = (ContextFile("Dockerfile", python_dockerfile(spec).encode()),)
    result = engine.build(
        BuildRequest(files=files, tag=spec.ref, network="host", labels={LABEL_RECIPE: python_recipe(spec)}),
        BuilderChoice("sdk", None, "base images need no secrets"),
        progress,
    )
    built = engine.image(result.image_id)
    if built is None:
        raise EngineError(f"{spec.ref} was built but cannot be found")
    return _describe(engine, spec, built, reused=False)


def _describe(engine: DockerEngine, spec: BaseImageSpec, image: ImageInfo, reused: bool) -> BaseImage:
    python = image.labels.get(LABEL_PYTHON) or spec.python
    version = image.labels.get(LABEL_PYTHON_VERSION)
    if not version:
        run = engine.run(image.id, [python, "-c", "import platform; print(platform.python_version())"], timeout=60)
        version = run.stdout.decode(errors="replace").strip() if run.exit_code == 0 else ""
        if not re.fullmatch(r"\d+\.\d+\.\d+\S*", version):
            raise EngineError(
                f"{spec.ref}: {python} does not run in the image",
                hint=f"remove it with `docker rmi {spec.ref}` and retry",
            )
    source = image.labels.get(LABEL_SOURCE) or f"debootstrap --variant=minbase {spec.suite}"
    return BaseImage(
        ref=spec.ref,
        image_id=image.id,
        python=python,
        python_version=version,
        suite=spec.suite,
        reused=reused,
        source=source,
    )


def build_rootfs_image(engine: DockerEngine, spec: BaseImageSpec, progress: Progress) -> ImageInfo:
    """debootstrap a minimal root filesystem and import it as ``spec.rootfs_ref``."""
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None
    )
    if debootstrap is None:
        raise EngineError(
            "no base image can be pulled and debootstrap is not installed to build one",
            hint="install it (`sudo apt-get install debootstrap`), or pass --base-image with an image you have",
        )
    if os.geteuid() != 0:
        raise EngineError(
            "building a base image with debootstrap needs root",
            hint=f"run `sudo scripts/provision.d/docker-base.sh` once (it builds {spec.ref}), or pass --base-image",
        )
    workdir = Path(tempfile.mkdtemp(prefix="envlock-rootfs-", dir=_scratch_dir()))
    rootfs = workdir / "rootfs"
    try:
        argv = [debootstrap, "--variant=minbase", spec.suite, str(rootfs), spec.mirror]
        progress.line("$ " + " ".join(argv))
        rc = _run_streaming(argv, progress, timeout=1800)
        if rc != 0:
            raise EngineError(
                f"debootstrap {spec.suite} from {spec.mirror} failed (status {rc})",
                hint="check that the mirror is reachable (`curl -I "
                + spec.mirror
                + "/dists/"
                + spec.suite
                + "/Release`)",
            )
        _tidy_rootfs(rootfs, spec)
        progress.line(f"$ tar -C {rootfs} -c . | docker import - {spec.rootfs_ref}")
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            repository, tag = spec.rootfs_ref.split(":", 1)
            image = engine.import_rootfs(
                tar.stdout,
                repository,
                tag,
                changes=[
                    'ENV PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
                    'CMD ["bash"]',
                    f'LABEL {LABEL_RECIPE}="{ROOTFS_RECIPE}"',
                ],
            )
        finally:
            if tar.stdout:
                tar.stdout.close()
            tar_rc = tar.wait()
            error = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
            if tar.stderr:
                tar.stderr.close()
        if tar_rc != 0:
            engine.remove_image(spec.rootfs_ref, force=True)
            raise EngineError(f"tar of the root filesystem failed: {error.strip()[:300]}")
        return image
    finally:
        _unmount_below(rootfs)
        shutil.rmtree(workdir, ignore_errors=True)


def _tidy_rootfs(rootfs: Path, spec: BaseImageSpec) -> None:
    """What a container base needs and debootstrap leaves out (or leaves behind)."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()
    sources = rootfs / "etc/apt/sources.list"
    if sources.exists():
        sources.unlink()
    (rootfs / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(sources_deb822(spec))
    # Package scripts must not try to start services inside an image build.
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# envlock: no services start during image builds\nexit 101\n")
    policy.chmod(0o755)
    # apt's binary caches are rebuilt on demand and downloaded .debs are not
    # needed once installed; keeping either only grows every derived layer
    # (measured: 30 .debs, ~40 MB, left by the python3.11 install without this).
    (rootfs / "etc/apt/apt.conf.d/90envlock-slim").write_text(
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\nAPT::Keep-Downloaded-Packages "false";\n'
    )
    # Host-specific files debootstrap copies in.
    for name in ("etc/hostname", "etc/resolv.conf"):
        target = rootfs / name
        if target.is_file() and not target.is_symlink():
            target.write_text("")


def _scratch_dir() -> str:
    for candidate in (os.environ.get("ENVLOCK_SCRATCH"), "/var/tmp", tempfile.gettempdir()):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK):
            return candidate
    return tempfile.gettempdir()


def _unmount_below(root: Path) -> None:
    """Unmount anything a failed debootstrap left mounted (proc, sys) before deleting the tree."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(root.resolve()) + "/"
    points = sorted(
        {line.split()[1] for line in mounts if len(line.split()) > 1 and line.split()[1].startswith(prefix)},
        reverse=True,
    )
    for point in points:
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _run_streaming(argv: list[str], progress: Progress, timeout: float) -> int:
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    return run_streaming(argv, env, progress, timeout)
