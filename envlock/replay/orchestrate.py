"""``envlock replay``, step by step: plan → resolve → render → build → verify → report.

Each step is one call into the module that owns it (``plan``, ``resolve``,
``render``, ``engine``, ``verify``); this module only decides the order, which
base image to start from, and how the results add up to one report and one
exit code (0: everything reproduced exactly; 1: mismatches remain, all listed;
2: bad input or an engine error, raised as ``EnvlockError``).

Choosing the base image:

The engine is asked about the base first (``find_base``); then the planner
makes the one plan from all of it; then the plan is carried out.

1. ``--base-image`` wins; its OS release and Python are read from the image
   before planning, so its OS layer is planned as for a row of the matrix.
2. Otherwise the plan's choice from the matrix (``python:3.11-slim-bookworm``
   for a plain Debian 12 / Python 3.11 lock).  If the engine has it or can pull
   it, it is used and pinned by its registry digest.
3. If it cannot be pulled (no registry: air-gapped sites, this machine), replay
   builds its own base from the Debian mirror (``debootstrap_base``), reuses it on
   later runs, and says so in the report.
"""

from __future__ import annotations

from pathlib import Path

from envlock import records
from envlock.errors import EngineError, ReplayError, UsageError
from envlock.findings import EXACT, INFO, NOT_REPRODUCIBLE, UNKNOWN, Finding, sort_findings
from envlock.lockfile import model as m
from envlock.records import record
from envlock.replay.context import ContextFile
from envlock.replay.engine import BuilderChoice, BuildRequest, BuildResult, DockerEngine
from envlock.replay.progress import Progress

# The build context's digest (build_context_digest), set on every image replay builds.
CONTEXT_LABEL = "org.envlock.build-context"

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: the planner and verify are imported when used
    from envlock.replay.conda import CondaLocal, CondaUnavailable
    from envlock.replay.engine import ImageInfo
    from envlock.replay.plan import BaseFacts, ReplayOptions, ReplayPlan
    from envlock.replay.snapshot import ArchiveOptions
    from envlock.replay.verify import VerifyReport
    from envlock.resolve import PinSet


@record
class ReplayRequest:
    tag: str | None = None
    base_image: str | None = None
    network: str | None = "host"
    ca_cert: str | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    builder: str = "auto"
    dry_run: bool = False
    output_dir: str | None = None
    no_cache: bool = False
    verify: bool = True
    allow_sdists: bool = False
    require_digest: bool = False  # refuse a base image pinned only by tag
    archive: ArchiveOptions | None = None  # where OS packages come from
    # "uv" (default where uv has a wheel for this machine) or "pip" (issue 13's comparison).
    installer: str = "auto"
    # From a pack (envlock.pack.replay): the pins, made from the pack's files (no index is read),
    # and the .deb files the OS step installs instead of reading apt sources.
    pins: PinSet | None = None
    local_debs: tuple[str, ...] = ()
    conda_channel_url: str | None = None
    # The conda layer: archive URLs their server says are gone (filled by replay() before
    # planning, envlock.replay.conda_probe), or a pack's files (nothing is fetched then).
    conda_unavailable: tuple[CondaUnavailable, ...] = ()
    conda_local: CondaLocal | None = None


@record
class ReplayOutcome:
    plan: ReplayPlan
    dockerfile: str
    files: tuple[ContextFile, ...]
    notes: tuple[str, ...] = ()
    builder: BuilderChoice | None = None
    build: BuildResult | None = None
    verify: VerifyReport | None = None
    extra_findings: tuple[Finding, ...] = ()  # from the OS package report and base-image fallbacks
    image: str | None = None

    @property
    def plan_findings(self) -> list[Finding]:
        return list(getattr(self.plan, "findings", ())) + list(self.extra_findings)

    def all_findings(self) -> list[Finding]:
        """Plan findings and verify findings, one per place.

        What the plan already knew it could not reproduce keeps the plan's
        words (they say why: "not on the index", "the mirror dropped it"),
        with what verification saw as ``actual``; otherwise verification
        wins and the plan adds its why/fix.
        """
        merged: dict[str, Finding] = {}
        for item in self.plan_findings:
            merged.setdefault(_key(item), item)
        if self.verify is not None:
            for item in (*self.verify.findings, *self.verify.host_findings):
                earlier = merged.get(_key(item))
                if earlier is not None and earlier.status == NOT_REPRODUCIBLE and earlier.severity != INFO:
                    item = records.replace(earlier, actual=earlier.actual or item.actual)
                elif earlier is not None and earlier.status != EXACT and earlier.severity != INFO:
                    item = records.replace(item, why=item.why or earlier.why, fix=item.fix or earlier.fix)
                merged[_key(item)] = item
        return sort_findings(list(merged.values()))

    def mismatches(self) -> list[Finding]:
        return [f for f in self.all_findings() if f.status not in (EXACT, UNKNOWN) and f.severity != INFO]

    @property
    def exit_code(self) -> int:
        return 1 if self.mismatches() else 0


def _key(item: Finding) -> str:
    from envlock.replay.verify import finding_place

    return finding_place(item)


# --- steps -------------------------------------------------------------------------


def resolve_pins(lock: m.Lock, request: ReplayRequest, progress: Progress):
    """Hash-pin the lock's Python packages on the indexes the user named (network).

    Packages the lock already pins (``envlock pin``) keep their files: their
    pages are read only to check the files are still served.  Files only this
    machine can reach (a mirror on localhost) are fetched here, hash-checked,
    into the build context.
    """
    from envlock import resolve

    lock = _pip_layer(lock, request)
    if lock.python is None or not lock.python.packages:
        return None
    pinned = sum(1 for p in lock.python.packages if resolve.is_pinned(p))
    progress.step(
        f"resolving {len(lock.python.packages)} Python packages to hash-pinned files on {request.index_url or resolve.DEFAULT_INDEX}"
        + (f" ({pinned} pinned in the lock)" if pinned else "")
    )
    pins = resolve.resolve_lock(
        lock,
        index_url=request.index_url or resolve.DEFAULT_INDEX,
        extra_index_urls=request.extra_index_urls,
        find_links=request.find_links,
        named_indexes=bool(request.index_url or request.extra_index_urls),
    )
    return resolve.fetch_machine_local(pins)


def _probe_conda(lock: m.Lock, request: ReplayRequest, progress: Progress) -> ReplayRequest:
    """The request with the conda archives their channel no longer serves (network; none from a pack)."""
    if lock.conda is None or not lock.conda.packages or request.conda_local is not None:
        return request
    from envlock.replay.conda_probe import probe_lock

    progress.step(f"asking the conda channels for the {len(lock.conda.packages)} locked archives")
    found = probe_lock(lock, _conda_platform(), request.conda_channel_url, request.ca_cert)
    return records.replace(request, conda_unavailable=found)


def _conda_platform() -> str:
    import platform

    from envlock.replay.conda import host_platform

    return host_platform(platform.machine())


def _pip_layer(lock: m.Lock, request: ReplayRequest) -> m.Lock:
    """What the resolver pins: without the distributions conda installs, when the conda layer is replayed."""
    from envlock.replay.conda import pip_layer_lock, plan_conda

    if lock.conda is None or not lock.conda.packages:
        return lock
    try:
        install, _ = plan_conda(
            lock, _conda_platform(), request.conda_channel_url, request.conda_unavailable, request.conda_local
        )
    except ValueError:
        return lock  # the planner reports the bad URL
    return pip_layer_lock(lock) if install is not None else lock


def _options(
    request: ReplayRequest,
    pins: PinSet | None,
    builder: str,
    base_source: str,
    base_image: str | None,
    base_digest: str | None = None,
    base_facts: BaseFacts | None = None,
    conda: bool = False,
) -> ReplayOptions:
    from envlock.replay.plan import ReplayOptions

    ca_mode, ca_bytes = "none", None
    if request.ca_cert:
        ca_bytes = read_ca_cert(request.ca_cert)
        # BuildKit mounts the certificate as a secret; the legacy builder copies
        # it into the build stage only, which is not shipped.
        ca_mode = "secret" if builder == "buildkit" else "stage"
    return ReplayOptions(
        base_image=base_image,
        base_source=base_source,
        base_digest=base_digest,
        base_facts=base_facts,
        pins=pins,
        allow_sdists=request.allow_sdists,
        require_digest=request.require_digest,
        ca_mode=ca_mode,
        ca_cert=ca_bytes if ca_mode == "stage" else None,
        archive=request.archive,
        # uv installs the pinned files, and py-rattler for a conda layer.
        uv=installer(request) if (pins is not None and pins.pins) or conda else None,
        builder=builder,
        local_debs=request.local_debs,
        conda_channel_url=request.conda_channel_url,
        conda_platform=_conda_platform(),
        conda_unavailable=request.conda_unavailable,
        conda_local=request.conda_local,
        installer_index_url=request.index_url,
    )


def installer(request: ReplayRequest):
    """The checked uv executable the image installs with, or None for pip (network on first use, then cached)."""
    from envlock.replay import uv_tool

    if request.installer == "pip":
        return None
    arch = uv_tool.host_arch()  # the engine builds for this machine's architecture
    if arch is None:
        if request.installer == "uv":
            raise UsageError("uv has no Linux wheel for this machine's architecture; use the pip installer")
        return None
    key = (arch, request.index_url, request.find_links)
    if key not in _UV_FOUND:
        try:
            _UV_FOUND[key] = uv_tool.find_uv(arch, index_url=request.index_url, local_dirs=request.find_links)
        except ReplayError as exc:
            if request.installer == "uv":
                raise
            _UV_FOUND[key] = exc  # auto: pip installs instead, and replay says why
    found = _UV_FOUND[key]
    return None if isinstance(found, ReplayError) else found


def installer_note(request: ReplayRequest, plan) -> str | None:
    """Why the image installs with pip although uv was wanted (None when it does not)."""
    if request.installer == "pip" or plan.uv is not None or not plan.install_groups:
        return None
    for found in _UV_FOUND.values():
        if isinstance(found, ReplayError):
            return f"uv could not be had ({found.message}); pip installs the packages instead (slower)"
    return "uv has no wheel for this machine's architecture; pip installs the packages instead (slower)"


_UV_FOUND: dict = {}  # one look-up per process: plan_with_base asks for the options more than once


def read_ca_cert(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"--ca-cert {path}: cannot be read ({exc.strerror})") from None
    if b"-----BEGIN CERTIFICATE-----" not in data or len(data) > 4 * 1024 * 1024:
        raise UsageError(
            f"--ca-cert {path}: not a PEM certificate bundle",
            hint="pass the proxy's CA, e.g. /etc/ssl/certs/ca-certificates.crt",
        )
    return data


def render(plan) -> tuple[str, tuple[ContextFile, ...], tuple[str, ...]]:
    """The Dockerfile, the whole build context and the BuildKit secret ids it needs."""
    from envlock.replay import render as renderer

    context = renderer.render_context(plan)
    files = [ContextFile(path, data) for path, data in context.items()]
    files += [ContextFile(path, source=source) for path, source in sorted(context.wheelhouse.items())]
    files += [ContextFile(path, source=source, mode=0o755) for path, source in sorted(context.executables.items())]
    return context.dockerfile, tuple(sorted(files, key=lambda f: f.path)), tuple(context.secret_ids)


def write_output_dir(files: tuple[ContextFile, ...], directory: str) -> None:
    """Write the build context for `docker build DIR` (refuses to mix into a non-empty directory)."""
    from envlock.replay.context import write_context_dir

    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"--output-dir {directory}: exists and is not an empty directory", hint="pick a new directory")
    target.mkdir(parents=True, exist_ok=True)
    write_context_dir(files, target)


def _base_spec_for(row):
    """The debootstrap_base spec for a ``debootstrap`` row of the matrix."""
    from envlock.replay.debootstrap_base import DEBIAN_CODENAME, BaseImageSpec

    suite = DEBIAN_CODENAME.get(str(row.distro_version))
    if row.distro != "debian" or suite is None:
        raise ReplayError(
            f"cannot build {row.image} with debootstrap: {row.distro} {row.distro_version} is not a Debian release envlock knows"
        )
    spec = BaseImageSpec(suite=suite, python_minor=row.python)
    if spec.ref != row.image:
        raise ReplayError(f"the matrix names {row.image} but envlock builds {spec.ref}")
    return spec


@record
class BaseChoice:
    """What the engine found out about the base image, before the plan is made."""

    source: str  # "user", "registry" or "debootstrap"
    image: str | None = None  # the --base-image reference (None: the matrix decides)
    digest: str | None = None
    facts: BaseFacts | None = None  # for a --base-image
    notes: tuple[str, ...] = ()


def find_base(lock: m.Lock, request: ReplayRequest, engine: DockerEngine | None, progress: Progress) -> BaseChoice:
    """Ask the engine about the base image: is it there (pulled if not), its digest, and for a
    --base-image its OS release and Python.  No plan is made here."""
    from envlock.replay.plan import choose_matrix_base

    if not request.base_image:
        request, locked_note = _with_locked_base(lock, request, engine)
        if locked_note:
            progress.step(locked_note)
    if request.base_image:
        from envlock.replay.base_matrix import check_image_ref

        ref = check_image_ref(request.base_image, "--base-image")
        if engine is None:
            return BaseChoice(
                "user",
                ref,
                notes=(f"no Docker engine: --base-image {ref} was not read; its OS and Python are unknown",),
            )
        found = engine.resolve(ref, pull=not request.dry_run)
        if found is None:
            if request.dry_run:
                return BaseChoice(
                    "user", ref, notes=(f"--base-image {ref} is not in the engine and was not pulled (dry run)",)
                )
            raise EngineError(
                f"--base-image {ref}: not in the engine and it cannot be pulled",
                hint="load it first (`docker load`, `docker build`), or leave --base-image out to let envlock build one",
            )
        notes: list[str] = []
        digest = _digest_of(ref, found, notes)
        progress.step(f"reading the OS release and Python of {ref}")
        facts = read_base_facts(engine, ref)
        notes.append(f"read from {ref} before planning: {facts.describe()}")
        return BaseChoice("user", ref, digest, facts, tuple(notes))
    row, _ = choose_matrix_base(lock, "registry")
    if engine is None:
        return BaseChoice("registry", notes=(f"no Docker engine: the Dockerfile uses {row.image} unpinned",))
    progress.step(f"base image: {row.image}")
    found = engine.resolve(row.image, pull=True)
    if found is not None:
        notes = []
        digest = _digest_of(row.image, found, notes)
        return BaseChoice("registry", digest=digest, notes=tuple(notes))
    return BaseChoice(
        "debootstrap",
        notes=(
            f"{row.image} cannot be pulled (no registry reachable); using a base image built from the Debian mirror",
        ),
    )


def _with_locked_base(lock: m.Lock, request: ReplayRequest, engine: DockerEngine | None):
    """The request starting from the lock's base image by digest, when the lock names one (see locked_base)."""
    from envlock.replay.locked_base import locked_reference, resolve_locked_base

    if engine is None:
        locked = locked_reference(lock)
        by_digest = locked[1] if locked else None
    else:
        by_digest = resolve_locked_base(lock, engine, pull=not request.dry_run)
    if by_digest is None:
        return request, None
    return records.replace(request, base_image=by_digest), f"base image from the lock, by digest: {by_digest}"


# Runs under the base image's python3 with -I -S: its version, and the os-release text.
_FACTS_SCRIPT = (
    "import sys\n"
    "print('%d.%d.%d' % sys.version_info[:3])\n"
    "for path in ('/etc/os-release', '/usr/lib/os-release'):\n"
    "    try:\n"
    "        sys.stdout.write(open(path, encoding='utf-8', errors='replace').read()[:65536]); break\n"
    "    except OSError: pass\n"
)


def read_base_facts(engine: DockerEngine, image: str) -> BaseFacts:
    """The OS release and Python version of ``image`` (a field is None when it cannot be read).

    One container without network runs the image's ``python3``; an image
    without one still has its os-release read as a file.
    """
    import re

    from envlock.capture.os_info import parse_os_release
    from envlock.replay.plan import BaseFacts

    python_version, release_text = None, None
    try:
        result = engine.run(image, ["python3", "-I", "-S", "-c", _FACTS_SCRIPT], network=False, timeout=60)
    except EngineError:
        result = None
    if result is not None and result.exit_code == 0 and not result.timed_out:
        first, _, rest = result.stdout.decode("utf-8", errors="replace").partition("\n")
        if re.fullmatch(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,4}", first.strip()):
            python_version = first.strip()
        release_text = rest
    if not release_text:
        data = engine.read_file(image, "/etc/os-release", max_bytes=65536)
        release_text = data.decode("utf-8", errors="replace") if data else ""
    values = parse_os_release(release_text)
    # The values are compared with the lock and shown in reports; keep only plain ones.
    plain = re.compile(r"[A-Za-z0-9._~+-]{1,64}")
    os_id = values.get("ID") if plain.fullmatch(values.get("ID", "")) else None
    version_id = values.get("VERSION_ID") if plain.fullmatch(values.get("VERSION_ID", "")) else None
    return BaseFacts(os_id=os_id, os_version_id=version_id, python_version=python_version)


def plan_with_base(
    lock: m.Lock,
    request: ReplayRequest,
    pins: PinSet | None,
    builder: str,
    engine: DockerEngine | None,
    progress: Progress,
) -> tuple[ReplayPlan, list[str], list[Finding]]:
    """Find the base image, make the plan once from everything known, and make its base available.

    Returns (plan, notes, findings the plan does not hold); the last is empty
    now that the planner reports everything, and stays for callers of this shape.
    """
    from envlock.replay.plan import plan_replay

    base = find_base(lock, request, engine, progress)
    options = _options(
        request,
        pins,
        builder,
        "registry" if base.source == "user" else base.source,
        base.image,
        base.digest,
        base.facts,
        conda=lock.conda is not None,
    )
    plan = plan_replay(lock, options)
    notes = list(base.notes)
    if base.source == "debootstrap" and engine is not None:
        notes += ensure_own_base(plan, request, engine, progress)
    return plan, notes, []


def ensure_own_base(plan: ReplayPlan, request: ReplayRequest, engine: DockerEngine, progress: Progress) -> list[str]:
    """Build (or reuse) the debootstrap base image the plan starts from."""
    from envlock.replay.debootstrap_base import ensure_base_image

    spec = _base_spec_for(plan.base)
    if request.dry_run and engine.image(spec.ref) is None:
        return [f"{spec.ref} does not exist yet; a real replay builds it with debootstrap first"]
    return [ensure_base_image(engine, spec, progress).describe()]


def _digest_of(ref: str, image: ImageInfo, notes: list[str]) -> str | None:
    """The registry digest to pin FROM to (None for a local-only image), with a note saying which."""
    if "@sha256:" in ref:
        return None  # pinned by the reference itself
    digests = [d.split("@", 1)[1] for d in image.repo_digests if "@" in d]
    name = ref.split("@", 1)[0].split(":", 1)[0]
    matching = [d.split("@", 1)[1] for d in image.repo_digests if d.split("@", 1)[0].endswith(name)]
    chosen = next(iter(matching or digests), None)
    if chosen:
        notes.append(f"base image {ref} pinned to {chosen}")
    else:
        notes.append(f"base image {ref} is local only (image id {image.id}); it has no registry digest to pin")
    return chosen


def replay(
    lock: m.Lock, request: ReplayRequest, engine: DockerEngine | None = None, progress: Progress | None = None
) -> ReplayOutcome:
    """Plan, resolve, render and, unless a dry run, build and verify."""
    from envlock.replay import plan as plan_module

    progress = progress or Progress()
    needs_engine = not request.dry_run and not request.output_dir
    if engine is None:
        engine = DockerEngine()
    try:
        engine.ping()
    except EngineError:
        if needs_engine:
            raise
        engine = None
    if engine is not None:
        choice = engine.choose_builder(request.builder)
    else:
        from envlock.replay.buildkit_cli import find_buildkit_cli

        cli = find_buildkit_cli() if request.builder != "sdk" else None
        choice = BuilderChoice(
            "buildkit" if cli else "sdk", cli, "no engine reachable: rendered for the builder this machine has"
        )
    request = _probe_conda(lock, request, progress)
    pins = request.pins if request.pins is not None else resolve_pins(lock, request, progress)
    plan, notes, extra = plan_with_base(lock, request, pins, choice.builder, engine, progress)
    note = installer_note(request, plan)
    if note:
        notes.append(note)
    dockerfile, files, secret_ids = render(plan)
    outcome = ReplayOutcome(
        plan=plan, dockerfile=dockerfile, files=files, notes=tuple(notes), builder=choice, extra_findings=tuple(extra)
    )
    if request.output_dir:
        write_output_dir(files, request.output_dir)
    if not needs_engine:
        return outcome
    assert engine is not None
    tag = request.tag or default_tag(plan)
    secrets = {}
    for secret_id in secret_ids:
        if secret_id != plan_module.CA_SECRET_ID or not request.ca_cert:
            raise ReplayError(f"the build context needs the secret {secret_id!r}, which envlock does not have")
        secrets[secret_id] = request.ca_cert
    context = build_context_digest(engine, plan, files, choice.builder, request.network)
    result = up_to_date(engine, tag, context) if not request.no_cache else None
    if result is not None:
        progress.step(f"{tag} is up to date ({result.image_id[:19]}): built from this same context before")
    else:
        progress.step(f"building {tag} with {choice.reason}")
        build = BuildRequest(
            files=files,
            tag=tag,
            network=request.network,
            secrets=secrets,
            no_cache=request.no_cache,
            labels={CONTEXT_LABEL: context},
        )
        result = engine.build(build, choice, progress)
        progress.step(f"built {tag} ({result.image_id[:19]}) in {result.seconds:.1f} s")
    outcome = records.replace(outcome, build=result, image=tag)
    if not request.verify:
        return outcome
    # A replay that built nothing new may reuse the capture of the same image id
    # (verify_image); --no-cache captures again, as `envlock verify` always does.
    verified = verify_built(engine, tag, lock, plan, progress, outcome.extra_findings, reuse=not request.no_cache)
    return records.replace(outcome, **verified)


def build_context_digest(engine: DockerEngine, plan, files, builder: str, network: str | None) -> str:
    """What decides the built image: the context, the base image's id (a tag can move), builder and network."""
    from envlock import __version__
    from envlock.replay.context import context_digest

    base = engine.image(plan.from_ref)
    uv = f"uv {plan.uv.version} {plan.uv.wheel_sha256}" if plan.uv is not None else "no uv"
    facts = (f"envlock {__version__}", f"base {base.id if base else plan.from_ref}", builder, str(network), uv)
    return context_digest(files, *facts)


def up_to_date(engine: DockerEngine, tag: str, context: str) -> BuildResult | None:
    """The image ``tag`` names when it was built from exactly ``context`` (its label says so), else None.

    The engine would answer every step from its cache and give back the same
    image; asking it costs sending the whole context (hundreds of MB with
    local wheels) and a second or more.  ``--no-cache`` always builds.
    """
    image = engine.image(tag)
    if image is None or image.labels.get(CONTEXT_LABEL) != context:
        return None
    return BuildResult(image_id=image.id, tag=tag, builder="none", seconds=0.0, log=(), reused=True)


def verify_built(
    engine: DockerEngine, image: str, lock: m.Lock, plan, progress: Progress, extra=(), reuse: bool = False
) -> dict:
    """Verify a replayed image, and read its OS package report when the build wrote one."""
    from envlock.replay.verify import verify_image

    progress.step(f"verifying {image}: capturing inside it and comparing with the lock")
    python = plan.interpreter
    report = verify_image(engine, image, lock, python=python, reuse=reuse)
    found = list(extra) + os_report_findings(engine, image, lock)
    return {"verify": report, "extra_findings": tuple(found)}


def os_report_findings(engine: DockerEngine, image: str, lock: m.Lock) -> list[Finding]:
    """Findings from the OS package report the build wrote into the image (absent: none)."""
    from envlock.replay import plan as plan_module
    from envlock.replay.os_report import os_report_findings as parse_findings

    data = engine.read_file(image, plan_module.OS_REPORT_PATH)
    if data is None:
        return []
    return parse_findings(data, lock.os.codename if lock.os else None)


def default_tag(plan) -> str:
    return f"envlock-replay:{plan.fingerprint.split(':')[-1][:12]}"


# --- verify an existing image ------------------------------------------------------


def verify_existing(
    image: str,
    lock: m.Lock | None,
    python: str = "python",
    engine: DockerEngine | None = None,
    progress: Progress | None = None,
    runner: str | None = None,
):
    """``envlock verify IMAGE [LOCK]``: the lock comes from the image itself when not given."""
    from envlock.lockfile.io import parse_lock
    from envlock.replay import plan as plan_module
    from envlock.replay.verify import verify_image

    progress = progress or Progress()
    engine = engine or DockerEngine()
    engine.ping()
    if engine.image(image) is None:
        raise EngineError(
            f"image {image!r} is not in the engine",
            hint="check the name with `docker images`, or build it with `envlock replay`",
        )
    notes = []
    if lock is None:
        data = engine.read_file(image, plan_module.LOCK_PATH)
        if data is None:
            raise UsageError(
                f"{image} carries no envlock.lock and none was given",
                hint=f"pass the lock: envlock verify {image} envlock.lock",
            )
        lock = parse_lock(data, source=f"{image}:{plan_module.LOCK_PATH}").lock
        notes.append(f"compared with the lock stored in the image ({plan_module.LOCK_PATH})")
    report = verify_image(engine, image, lock, python=python, runner=runner)
    extra = os_report_findings(engine, image, lock)
    return report, lock, tuple(notes), tuple(extra)
