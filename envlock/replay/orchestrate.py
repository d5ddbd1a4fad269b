"""``envlock replay``, step by step: plan → resolve → render → build → verify → report.

Each step is one call into the module that owns it (``plan``, ``resolve``,
``render``, ``engine``, ``verify``); this module only decides the order, which
base image to start from, and how the results add up to one report and one
exit code (0: everything reproduced exactly; 1: mismatches remain, all listed;
2: bad input or an engine error, raised as ``EnvlockError``).

Choosing the base image:

1. ``--base-image`` wins.
2. Otherwise the plan's choice from the matrix (``python:3.11-slim-bookworm``
   for a plain Debian 12 / Python 3.11 lock).  If the engine has it or can pull
   it, it is used and pinned by its registry digest.
3. If it cannot be pulled (no registry: air-gapped sites, this machine), replay
   builds its own base from the Debian mirror (``baseimage``), reuses it on
   later runs, and says so in the report.
"""

from __future__ import annotations

from pathlib import Path

from envlock import records
from envlock.errors import EngineError, ReplayError, UsageError
from envlock.findings import EXACT, INFO, NOT_REPRODUCIBLE, UNKNOWN, Finding, sort_findings
from envlock.lockfile import model as m
from envlock.records import record
from envlock.replay.engine import BuilderChoice, BuildRequest, BuildResult, ContextFile, DockerEngine, Progress


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


@record
class ReplayOutcome:
    plan: object  # envlock.replay.plan.ReplayPlan
    dockerfile: str
    files: tuple[ContextFile, ...]
    notes: tuple[str, ...] = ()
    builder: BuilderChoice | None = None
    build: BuildResult | None = None
    verify: object | None = None  # envlock.replay.verify.VerifyReport
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
    """Hash-pin the lock's Python packages on the indexes the user named (network)."""
    from envlock import resolve

    if lock.python is None or not lock.python.packages:
        return None
    progress.step(
        f"resolving {len(lock.python.packages)} Python packages to hash-pinned files on {request.index_url or resolve.DEFAULT_INDEX}"
    )
    kwargs = {}
    if request.index_url:
        kwargs["index_url"] = request.index_url
    return resolve.resolve_lock(
        lock, extra_index_urls=request.extra_index_urls, find_links=request.find_links, **kwargs
    )


def _options(request: ReplayRequest, pins, builder: str, base_source: str, base_image: str | None):
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
        pins=pins,
        allow_sdists=request.allow_sdists,
        ca_mode=ca_mode,
        ca_cert=ca_bytes if ca_mode == "stage" else None,
    )


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
    return context.dockerfile, tuple(sorted(files, key=lambda f: f.path)), tuple(context.secret_ids)


def write_output_dir(files: tuple[ContextFile, ...], directory: str) -> None:
    """Write the build context for `docker build DIR` (refuses to mix into a non-empty directory)."""
    from envlock.replay.engine import write_context_dir

    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"--output-dir {directory}: exists and is not an empty directory", hint="pick a new directory")
    target.mkdir(parents=True, exist_ok=True)
    write_context_dir(files, target)


def _base_spec_for(row):
    """The baseimage spec for a ``debootstrap`` row of the matrix."""
    from envlock.replay.baseimage import DEBIAN_CODENAME, BaseImageSpec

    suite = DEBIAN_CODENAME.get(str(row.distro_version))
    if row.distro != "debian" or suite is None:
        raise ReplayError(
            f"cannot build {row.image} with debootstrap: {row.distro} {row.distro_version} is not a Debian release envlock knows"
        )
    spec = BaseImageSpec(suite=suite, python_minor=row.python)
    if spec.ref != row.image:
        raise ReplayError(f"the matrix names {row.image} but envlock builds {spec.ref}")
    return spec


def plan_with_base(
    lock: m.Lock, request: ReplayRequest, pins, builder: str, engine: DockerEngine | None, progress: Progress
):
    """The plan, with its base image available in the engine (built here when no registry has one)."""
    from envlock.replay.plan import plan_replay

    notes: list[str] = []
    extra: list[Finding] = []
    if request.base_image:
        plan = plan_replay(lock, _options(request, pins, builder, "registry", request.base_image))
        if engine is not None:
            found = engine.resolve(request.base_image, pull=not request.dry_run)
            if found is None:
                if request.dry_run:
                    notes.append(f"--base-image {request.base_image} is not in the engine and was not pulled (dry run)")
                else:
                    raise EngineError(
                        f"--base-image {request.base_image}: not in the engine and it cannot be pulled",
                        hint="load it first (`docker load`, `docker build`), or leave --base-image out to let envlock build one",
                    )
            else:
                plan = _pin_digest(plan, found, notes)
        return plan, notes, extra
    cuda_reason = None
    try:
        plan = plan_replay(lock, _options(request, pins, builder, "registry", None))
    except ReplayError as exc:
        if not _system_cuda(lock):
            raise
        # No base image in the matrix has the lock's CUDA toolkit: replay the
        # rest and report the toolkit, instead of refusing the whole lock.
        cuda_reason = exc.message
        plan = _plan_without_system_cuda(lock, _options(request, pins, builder, "registry", None))
    if engine is None:
        notes.append(f"no Docker engine: the Dockerfile uses {plan.base_image} unpinned")
        return plan, notes, extra + _cuda_findings(lock, cuda_reason)
    progress.step(f"base image: {plan.base_image}")
    found = engine.resolve(plan.base_image, pull=True)
    if found is not None:
        return _pin_digest(plan, found, notes), notes, extra + _cuda_findings(lock, cuda_reason)
    # No registry: build (or reuse) a base from the distribution's mirror.
    notes.append(
        f"{plan.base_image} cannot be pulled (no registry reachable); using a base image built from the Debian mirror"
    )
    if _system_cuda(lock) and cuda_reason is None:
        cuda_reason = (
            f"{plan.base_image} cannot be pulled, and a base image built from the Debian mirror has no CUDA toolkit"
        )
    options = _options(request, pins, builder, "debootstrap", None)
    own = _plan_without_system_cuda(lock, options) if cuda_reason else plan_replay(lock, options)
    spec = _base_spec_for(own.base)
    extra += _cuda_findings(lock, cuda_reason)
    if request.dry_run and engine.image(spec.ref) is None:
        notes.append(f"{spec.ref} does not exist yet; a real replay builds it with debootstrap first")
        return own, notes, extra
    from envlock.replay.baseimage import ensure_base_image

    base = ensure_base_image(engine, spec, progress)
    notes.append(base.describe())
    return own, notes, extra


def _system_cuda(lock: m.Lock) -> list[m.CudaComponent]:
    if lock.cuda is None:
        return []
    return [c for c in lock.cuda.components if c.source == "system"]


def _plan_without_system_cuda(lock: m.Lock, options):
    """Plan as if the lock had no system CUDA toolkit, but keep the real lock in the plan.

    The image still carries the original lock and its fingerprint; the
    toolkit is reported by ``_cuda_findings``.
    """
    from envlock.lockfile import fingerprint
    from envlock.replay.plan import plan_replay

    reduced = records.replace(
        lock, cuda=records.replace(lock.cuda, components=tuple(c for c in lock.cuda.components if c.source != "system"))
    )
    plan = plan_replay(reduced, options)
    return records.replace(plan, lock=lock, fingerprint=fingerprint(lock))


def _cuda_findings(lock: m.Lock, reason: str | None) -> list[Finding]:
    if reason is None:
        return []
    out = []
    for comp in sorted(_system_cuda(lock), key=lambda c: c.name):
        out.append(
            Finding(
                "cuda",
                f"cuda.{comp.name}",
                "numeric",
                f"{comp.name} {comp.version} (system toolkit) is not in the image: {reason}",
                why="the system CUDA toolkit decides which kernels and math libraries code built against it uses",
                fix="replay where a registry serves an nvidia/cuda image with this toolkit, or pass --base-image with a local one",
                locked=comp.version,
                status=NOT_REPRODUCIBLE,
                rank=30,
            )
        )
    return out


def _pin_digest(plan, image, notes: list[str]):
    """Pin FROM to the registry digest when the image came from a registry; note the image id."""
    digests = [d.split("@", 1)[1] for d in image.repo_digests if "@" in d]
    name = plan.base_image.split("@", 1)[0].split(":", 1)[0]
    matching = [d.split("@", 1)[1] for d in image.repo_digests if d.split("@", 1)[0].endswith(name)]
    chosen = (matching or digests or [None])[0]
    if chosen:
        notes.append(f"base image {plan.base_image} pinned to {chosen}")
        return plan.with_base_digest(chosen)
    notes.append(f"base image {plan.base_image} is local only (image id {image.id}); it has no registry digest to pin")
    return plan


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
        from envlock.replay.engine import find_buildkit_cli

        cli = find_buildkit_cli() if request.builder != "sdk" else None
        choice = BuilderChoice(
            "buildkit" if cli else "sdk", cli, "no engine reachable: rendered for the builder this machine has"
        )
    pins = resolve_pins(lock, request, progress)
    plan, notes, extra = plan_with_base(lock, request, pins, choice.builder, engine, progress)
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
    progress.step(f"building {tag} with {choice.reason}")
    result = engine.build(
        BuildRequest(files=files, tag=tag, network=request.network, secrets=secrets, no_cache=request.no_cache),
        choice,
        progress,
    )
    progress.step(f"built {tag} ({result.image_id[:19]}) in {result.seconds:.1f} s")
    outcome = records.replace(outcome, build=result, image=tag)
    if not request.verify:
        return outcome
    return records.replace(outcome, **verify_built(engine, tag, lock, plan, progress, outcome.extra_findings))


def verify_built(engine: DockerEngine, image: str, lock: m.Lock, plan, progress: Progress, extra=()) -> dict:
    """Verify a replayed image, and read its OS package report when the build wrote one."""
    from envlock.replay import plan as plan_module
    from envlock.replay.verify import verify_image

    progress.step(f"verifying {image}: capturing inside it and comparing with the lock")
    python = plan_module.VENV_DIR + "/bin/python"
    report = verify_image(engine, image, lock, python=python)
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
    report = verify_image(engine, image, lock, python=python)
    extra = os_report_findings(engine, image, lock)
    return report, lock, tuple(notes), tuple(extra)
