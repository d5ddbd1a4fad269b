"""Render a :class:`~envlock.replay.plan.ReplayPlan` into a Docker build context (pure).

The Dockerfile comes from ``templates/Dockerfile.tmpl``; the instructions are
built here from Python lists:

* every ``RUN`` is exec form (a JSON array from :func:`quote.exec_form`), so no
  shell ever reads a lockfile value;
* every ``ENV``/``LABEL`` value goes through :func:`quote.quote_value`;
* line 1 is the template's fixed comment, so no later line can be read as a
  parser directive (``# syntax=...`` counts only before the first comment);
* layers are ordered so that the cache survives small changes: base and OS
  packages, then one ``COPY`` + ``RUN`` per pip install group, then variables,
  the lock and the labels;
* two stages: stage 1 (``envlock-python``) builds the virtual environment and
  is the only place a CA certificate is copied to (``ca_mode="stage"``, for the
  legacy builder, which has no build secrets); stage 2 copies only the
  environment.  With BuildKit (``ca_mode="secret"``) the certificate is a
  secret mount and is in no layer of either stage.

The same plan always gives byte-identical files; the engine tars them with
fixed metadata so a rebuild hits the cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from envlock import records
from envlock.errors import ReplayError
from envlock.records import field, record
from envlock.replay import plan as p
from envlock.replay.quote import exec_form, key_value
from envlock.replay.snapshot import SOURCE_LINE
from envlock.replay.templates import fill, read_template, read_template_bytes

DOCKERFILE_FORMAT = "1"
CONTEXT_DIR = "envlock"  # everything but the Dockerfile lives under this folder of the context
REQUIREMENTS_DIR = "envlock/python"
OS_SCRIPT = "envlock/os_packages.py"
LOCK_FILE = "envlock/envlock.lock"
CA_FILE = "envlock/ca.crt"
PLAN_FILE = "envlock/plan.json"
WHEELS_DIR = "envlock/wheels"
UV_FILE = "envlock/uv"  # the checked uv executable (envlock.replay.uv_tool)
UV_PATH = "/tmp/envlock/bin/uv"
UV_CACHE_PATH = "/tmp/envlock/uv-cache"
_UV_MOUNT = f"--mount=type=bind,source={UV_FILE},target={UV_PATH} "
# BuildKit: the stage holding the base, OS packages and the empty venv, which the
# image continues and the fetch stages start from (see _fetch_stages).
VENV_STAGE = "envlock-venv"
FETCHED_DIR = "/tmp/envlock/fetched"
# Fixed text (no lockfile value: the uv command line arrives as "$@").  The
# target is a fresh directory on the cache mount's file system, so uv hard-links
# the unpacked files into it; removing it leaves the cache filled.
_FETCH_SCRIPT = (
    'set -e; target=$(mktemp -d "' + UV_CACHE_PATH + '/fetch.XXXXXXXX"); '
    'trap \'rm -rf "$target"\' EXIT; "$@" --target "$target"; mkdir -p ' + FETCHED_DIR
)
# One cache mount for every replay on this builder: a package is downloaded once.
UV_CACHE_ID = "envlock-uv"
# .pyc files are written at build time (in parallel by uv): measured in
# benchmarks/RESULTS.md, a container otherwise pays for them at every start.
COMPILE_BYTECODE = True
DEBS_DIR = "envlock/debs"
# A pinned file this large gets an image layer of its own (see install_layers).
LARGE_FILE = 32 * 1024 * 1024
# A pure-Python wheel this large too, after the compiled ones: transformers or
# sympy (thousands of modules to unpack and compile) are not rebuilt when a
# small package changes.
LARGE_PURE_FILE = 2 * 1024 * 1024

STAGE_NAME = "envlock-python"
VENV_PYTHON = f"{p.VENV_DIR}/bin/python"
# Fixed text (no lockfile value): the distribution's Python and venv, for bases without one.
_APT_BOOTSTRAP = (
    "apt-get {options}update && DEBIAN_FRONTEND=noninteractive apt-get {options}install -y --no-install-recommends -- {packages}"
    " && rm -rf /var/lib/apt/lists/*"
)


@record
class BuildContext:
    """The build context: ``files`` maps a context path to its bytes.

    ``wheelhouse`` maps a context path to a file on this machine (wheels can be
    gigabytes, so the caller copies them; each entry's sha256 is in the
    requirements file, and pip checks it in the build).  ``secret_ids`` are the
    BuildKit secrets the build needs (``envlock-ca``: the ``--ca-cert`` file).
    """

    files: Mapping[str, bytes]
    wheelhouse: Mapping[str, str] = field(default_factory=dict)
    # Local files sent with mode 0755 (the uv executable; checked by envlock.replay.uv_tool).
    executables: Mapping[str, str] = field(default_factory=dict)
    secret_ids: tuple[str, ...] = ()
    dockerfile_path: str = "Dockerfile"

    @property
    def dockerfile(self) -> str:
        return self.files[self.dockerfile_path].decode("utf-8")

    def items(self) -> Iterator[tuple[str, bytes]]:
        """(path, bytes) in sorted order, for the engine's tar writer."""
        for path in sorted(self.files):
            yield path, self.files[path]


# --- Dockerfile ----------------------------------------------------------------------


def render_dockerfile(plan: p.ReplayPlan) -> str:
    """The Dockerfile text for ``plan`` (pure, deterministic)."""
    if plan.require_digest and not plan.pinned_by_digest:
        raise ReplayError(
            f"strict mode refuses the base image {plan.base_image}: it is pinned only by tag",
            hint="let replay resolve the digest (the engine must reach the image), or pass --base-image NAME@sha256:<digest>",
        )
    secret = plan.ca_mode == "secret"
    if plan.uv is not None and plan.builder == "buildkit" and not plan.conda:
        # One stage: the venv is built where it ships, so nothing is copied between stages.
        text = fill(
            read_template("Dockerfile-buildkit.tmpl"),
            {"from_ref": plan.from_ref, "venv_stage": VENV_STAGE, "stage": "\n".join(_one_stage(plan, secret))},
        )
        return text if text.endswith("\n") else text + "\n"
    if plan.conda:  # a build stage makes the prefix; the final stage copies it
        python_stage = _conda_stage(plan)
    else:
        python_stage = _uv_build_stage(plan) if plan.uv is not None else _python_stage(plan)
    final_stage = _final_stage(plan, secret)
    text = fill(
        read_template("Dockerfile.tmpl"),
        {"from_ref": plan.from_ref, "python_stage": "\n".join(python_stage), "final_stage": "\n".join(final_stage)},
    )
    return text if text.endswith("\n") else text + "\n"


def _run(argv: list[str], secret: bool, what: str, uv: bool = False) -> str:
    """One exec-form RUN; ``uv`` bind-mounts the checked uv executable for it (BuildKit only)."""
    mount = f"--mount=type=secret,id={p.CA_SECRET_ID},target={p.CA_SECRET_PATH} " if secret else ""
    if uv:
        mount = _UV_MOUNT + mount
    return f"RUN {mount}{exec_form(argv, what)}"


def _ca_path(plan: p.ReplayPlan, stage: int) -> str | None:
    if plan.ca_mode == "secret":
        return p.CA_SECRET_PATH
    if plan.ca_mode == "stage" and stage == 1:
        return p.CA_STAGE_PATH
    return None


def _apt_bootstrap(plan: p.ReplayPlan, stage: int) -> list[str]:
    if not plan.apt_bootstrap:
        return []
    for name in plan.apt_bootstrap:
        if not p.DEBIAN_NAME.fullmatch(name):  # our own data; checked anyway
            raise ReplayError(f"base bootstrap package {name!r} is not a Debian package name")
    ca = _ca_path(plan, stage)
    options = f"-o Acquire::https::CAInfo={ca} " if ca else ""
    command = _APT_BOOTSTRAP.format(options=options, packages=" ".join(plan.apt_bootstrap))
    return [_run(["/bin/sh", "-c", command], plan.ca_mode == "secret", "python bootstrap")]


def _conda_stage(plan: p.ReplayPlan) -> list[str]:
    from envlock.replay.conda_stage import conda_stage

    mounts = plan.builder == "buildkit"  # the legacy builder gets uv by COPY (conda_stage)

    def run(argv: list[str], secret: bool, what: str, uv: bool = False) -> str:
        return _run(argv, secret, what, uv and mounts)

    return conda_stage(plan, run, _ca_path(plan, 1), _apt_bootstrap(plan, 1))


def _python_stage(plan: p.ReplayPlan) -> list[str]:
    lines: list[str] = []
    if plan.ca_mode == "stage":
        lines.append(f"COPY {CA_FILE} {p.CA_STAGE_PATH}")
    lines.extend(_apt_bootstrap(plan, 1))
    lines.append(_run(["python3", "-m", "venv", p.VENV_DIR], False, "venv"))
    if plan.wheelhouse:
        lines.append(f"COPY {WHEELS_DIR}/ {p.WHEEL_DIR}/")
    ca = _ca_path(plan, 1)
    for number, group in enumerate(plan.install_groups, start=1):
        name = f"requirements-{number}.txt"
        lines.append(f"COPY {REQUIREMENTS_DIR}/{name} {p.BUILD_DIR}/python/{name}")
        argv = group.pip_install_argv(
            VENV_PYTHON, f"{p.BUILD_DIR}/python/{name}", p.WHEEL_DIR, ca, extra=("--no-cache-dir",)
        )
        lines.append(_run(argv, plan.ca_mode == "secret", f"pip install group {number}"))
    if plan.remove_after_install:
        argv = [
            VENV_PYTHON,
            "-m",
            "pip",
            "uninstall",
            "--isolated",
            "--disable-pip-version-check",
            "--no-input",
            "--yes",
            *plan.remove_after_install,
        ]
        lines.append(_run(argv, False, "pip uninstall"))
    return lines


# --- uv (issue 13) ---------------------------------------------------------------------


def _seeds_pip(plan: p.ReplayPlan) -> bool:
    """True when the venv must bootstrap pip itself (ensurepip): the lock pins none to install."""
    from packaging.utils import canonicalize_name

    return not any(canonicalize_name(r.name) == "pip" for g in plan.install_groups for r in g.requirements)


def _venv_line(plan: p.ReplayPlan) -> str:
    # ensurepip costs ~5 s; it runs only when no pinned pip will be installed (`pip` must work in the image).
    argv = ["python3", "-m", "venv"] + ([] if _seeds_pip(plan) else ["--without-pip"]) + [p.VENV_DIR]
    return _run(argv, False, "venv")


def install_layers(group: p.InstallGroup) -> list[tuple[p.Requirement, ...]]:
    """The group's requirements split into image layers, so a one-package change rebuilds little (pure).

    A change rebuilds its own layer and every layer after it, so the costly
    ones go first.  Files of ``LARGE_FILE`` bytes or more (when the index said
    their size) get a layer each, largest first; then the other compiled
    wheels together; then each pure-Python wheel (``-none-any``) of
    ``LARGE_PURE_FILE`` or more, largest first; last the small pure ones, the
    cheapest to redo.  uv's cache mount serves unchanged files again without
    a download.
    """

    def largest_first(items) -> list[p.Requirement]:
        return sorted(items, key=lambda r: (-(r.size or 0), r.name))

    large = largest_first(r for r in group.requirements if (r.size or 0) >= LARGE_FILE)
    rest = [r for r in group.requirements if r not in large]
    pure = [r for r in rest if (r.filename or "").endswith("-none-any.whl")]
    compiled = [r for r in rest if r not in pure]
    large_pure = largest_first(r for r in pure if (r.size or 0) >= LARGE_PURE_FILE)
    small_pure = [r for r in pure if r not in large_pure]
    layers: list[tuple[p.Requirement, ...]] = [(r,) for r in large]
    if compiled:
        layers.append(tuple(compiled))
    layers += [(r,) for r in large_pure]
    if small_pure:
        layers.append(tuple(small_pure))
    return layers


def _layer_file(number: int, part: int) -> str:
    return f"requirements-{number}-{part}.txt"


def _uv_install_lines(
    plan: p.ReplayPlan, secret: bool, mounts: bool, fetched: dict[str, str] | None = None
) -> list[str]:
    """One ``uv pip install`` per layer of each install group (:func:`install_layers`).

    ``mounts`` (BuildKit): uv, the wheels and each requirements file are bind
    mounts from the build context and uv's download cache is a cache mount, so
    none of them is in a layer, and a changed requirements file re-runs its own
    layer and the later ones, downloading only the files the cache lacks.
    Without mounts (the legacy builder) they are copied into the build stage,
    which is not shipped.  ``fetched``: layer file -> the stage that downloaded
    its files (:func:`_fetch_stages`), which the layer waits for.
    """
    from envlock.replay.uv_tool import install_argv, uninstall_argv

    ca = _ca_path(plan, 1)
    lines: list[str] = []
    if not mounts:
        lines.append(f"COPY {UV_FILE} {UV_PATH}")
        if plan.wheelhouse:
            lines.append(f"COPY {WHEELS_DIR}/ {p.WHEEL_DIR}/")
    for number, group in enumerate(plan.install_groups, start=1):
        for part, _ in enumerate(install_layers(group), start=1):
            name = _layer_file(number, part)
            context_path, image_path = f"{REQUIREMENTS_DIR}/{name}", f"{p.BUILD_DIR}/python/{name}"
            # Local wheels need no download cache: a throwaway one is hard-linked, each file written once
            # (torch's CPU wheel: 30 s against 34 s copied out of a cache on another mount, measured).
            cache = UV_CACHE_PATH if mounts and group.kind != "wheelhouse" else None
            argv = install_argv(group, UV_PATH, VENV_PYTHON, image_path, p.WHEEL_DIR, ca, cache, COMPILE_BYTECODE)
            what = f"uv pip install group {number} layer {part}"
            if not mounts:
                lines.append(f"COPY {context_path} {image_path}")
                lines.append(_run(argv, False, what))
                continue
            options = [f"--mount=type=bind,source={UV_FILE},target={UV_PATH}"]
            options.append(f"--mount=type=bind,source={context_path},target={image_path}")
            if fetched and name in fetched:
                options.append(f"--mount=type=bind,from={fetched[name]},source={FETCHED_DIR},target={FETCHED_DIR}")
            if group.kind == "wheelhouse":
                options.append(f"--mount=type=bind,source={WHEELS_DIR},target={p.WHEEL_DIR}")
            if cache:
                options.append(f"--mount=type=cache,id={UV_CACHE_ID},target={UV_CACHE_PATH}")
            if secret:
                options.append(f"--mount=type=secret,id={p.CA_SECRET_ID},target={p.CA_SECRET_PATH}")
            lines.append("RUN " + " ".join(options) + " " + exec_form(argv, what))
    if plan.remove_after_install and _seeds_pip(plan):
        argv = uninstall_argv(UV_PATH, VENV_PYTHON, plan.remove_after_install)
        if mounts:
            lines.append(
                f"RUN --mount=type=bind,source={UV_FILE},target={UV_PATH} {exec_form(argv, 'uv pip uninstall')}"
            )
        else:
            lines.append(_run(argv, False, "uv pip uninstall"))
    return lines


def _one_stage(plan: p.ReplayPlan, secret: bool) -> list[str]:
    """BuildKit with uv: base, OS packages, venv, one install per layer, then the tail; no stage copy.

    The image is one stage (``VENV_STAGE`` continued); only the fetch stages
    (:func:`_fetch_stages`) branch off it, and they ship nothing.
    """
    lines = _os_lines(plan, secret)
    lines.append(_venv_line(plan))
    fetches = _fetch_stages(plan, secret)
    for stage, line in fetches.values():
        lines += ["", f"FROM {VENV_STAGE} AS {stage}", line]
    if fetches:
        lines += ["", f"FROM {VENV_STAGE}"]
    lines.extend(_uv_install_lines(plan, secret, mounts=True, fetched={k: s for k, (s, _) in fetches.items()}))
    return lines + _image_tail(plan)


def _fetch_stages(plan: p.ReplayPlan, secret: bool) -> dict[str, tuple[str, str]]:
    """Layer file -> (stage name, RUN line) of a stage that downloads that layer's files into uv's cache.

    Layers install one after another, and each downloaded its own files
    first, so the network waited for the installs and the installs for the
    network.  These stages start together as soon as the venv exists, so every
    download overlaps the installs and compiles of the layers before its own;
    each install layer waits only for its own fetch (a bind mount from it).
    A fetch links the files into a throwaway directory inside the cache mount
    (no bytecode, no copy) and removes it; it ships nothing, and with the same
    requirements it is answered from BuildKit's cache like any step.

    The image's first layer has nothing before it to overlap with, so it
    downloads its own files (a stage of its own measured 0.3 s slower there).
    Measured (benchmarks/RESULTS.md): torch's local wheel unpacks on one core,
    and the other layers' fetches take the other: 28 s -> 20-22 s cold.
    """
    from envlock.replay.uv_tool import install_argv

    ca = _ca_path(plan, 1)
    stages: dict[str, tuple[str, str]] = {}
    first = True
    for number, group in enumerate(plan.install_groups, start=1):
        for part, _ in enumerate(install_layers(group), start=1):
            if first or group.kind == "wheelhouse":  # local files: nothing to fetch
                first = False
                continue
            name = _layer_file(number, part)
            context_path, image_path = f"{REQUIREMENTS_DIR}/{name}", f"{p.BUILD_DIR}/python/{name}"
            argv = install_argv(
                group, UV_PATH, VENV_PYTHON, image_path, p.WHEEL_DIR, ca, UV_CACHE_PATH, False, link_mode="hardlink"
            )
            options = [_UV_MOUNT.strip(), f"--mount=type=bind,source={context_path},target={image_path}"]
            options.append(f"--mount=type=cache,id={UV_CACHE_ID},target={UV_CACHE_PATH}")
            if secret:
                options.append(f"--mount=type=secret,id={p.CA_SECRET_ID},target={p.CA_SECRET_PATH}")
            command = ["/bin/sh", "-c", _FETCH_SCRIPT, "envlock-fetch", *argv]
            line = "RUN " + " ".join(options) + " " + exec_form(command, f"fetch layer {number}-{part}")
            stages[name] = (f"envlock-fetch-{number}-{part}", line)
    return stages


def _uv_build_stage(plan: p.ReplayPlan) -> list[str]:
    """The legacy builder's stage 1 with uv: copies instead of mounts; the final stage copies the venv."""
    lines: list[str] = []
    if plan.ca_mode == "stage":
        lines.append(f"COPY {CA_FILE} {p.CA_STAGE_PATH}")
    lines.extend(_apt_bootstrap(plan, 1))
    lines.append(_venv_line(plan))
    lines.extend(_uv_install_lines(plan, False, mounts=False))
    return lines


def _final_stage(plan: p.ReplayPlan, secret: bool) -> list[str]:
    lines = _os_lines(plan, secret)
    if not plan.conda:  # a conda prefix was copied and put on PATH by _os_lines
        lines.append(f"COPY --from={STAGE_NAME} {p.VENV_DIR} {p.VENV_DIR}")
    return lines + _image_tail(plan)


def _os_lines(plan: p.ReplayPlan, secret: bool) -> list[str]:
    """The base's Python (when it has none) and the OS packages: the first layers of the image."""
    lines: list[str] = []
    if plan.conda:
        # The conda prefix brings its own Python (and its libraries): the base needs only a libc.
        from envlock.replay.conda_stage import final_lines

        lines.extend(final_lines(STAGE_NAME))
    else:
        lines.extend(_apt_bootstrap(plan, 2))
    if plan.os_step:
        lines.append(f"COPY {OS_SCRIPT} {p.OS_SCRIPT_PATH}")
        if plan.os_local_debs:
            # A pack's .deb files: apt installs them from these paths, with no source and no network.
            lines.append(f"COPY {DEBS_DIR} {p.DEB_DIR}")
        argv = [plan.interpreter if plan.conda else "python3", p.OS_SCRIPT_PATH, "--report", p.OS_REPORT_PATH]
        if secret:
            argv += ["--ca-file", p.CA_SECRET_PATH]
        if plan.os_local_debs:
            argv += ["--local", p.DEB_DIR]
        for option, sources in (("--source", plan.os_sources), ("--fallback", plan.os_fallbacks)):
            for line in sources:
                if not SOURCE_LINE.fullmatch(line):
                    raise ReplayError(
                        f"os: {line[:80]!r} is not an apt source line envlock writes; it cannot be rendered"
                    )
                argv += [option, line]
        argv.append("--")
        for pin in plan.os_packages:
            if not (p.DEBIAN_NAME.fullmatch(pin.name) and p.DEBIAN_VERSION.fullmatch(pin.version)):
                raise ReplayError(f"os.packages[{pin.name}]: not a Debian name=version; it cannot be rendered")
            argv.append(pin.arg())
        lines.append(_run(argv, secret, "OS packages"))
    return lines


def _image_tail(plan: p.ReplayPlan) -> list[str]:
    """The venv on PATH, the variables, the lock and the labels: the last, cheap layers."""
    lines: list[str] = []
    if not plan.conda:
        # Static text: ${PATH} is the base image's own PATH, expanded by Docker on purpose.
        lines.append(f'ENV VIRTUAL_ENV="{p.VENV_DIR}" PATH="{p.VENV_DIR}/bin:${{PATH}}"')
    # One ENV and one LABEL instruction: the legacy builder runs a container per instruction.
    pairs = []
    for name, value in plan.env:
        if p.is_image_owned_env(name):
            raise ReplayError(f"runtime.env.{name}: the image owns this name; it cannot be set")
        pairs.append(key_value(name, value, f"runtime.env.{name}"))
    if pairs:
        lines.append("ENV " + " ".join(pairs))
    lines.append(f"COPY {LOCK_FILE} {p.LOCK_PATH}")
    lines.append("LABEL " + " ".join(key_value(key, value, f"label {key}") for key, value in _labels(plan)))
    return lines


def _labels(plan: p.ReplayPlan) -> list[tuple[str, str]]:
    lock = plan.lock
    labels = [
        ("org.envlock.fingerprint", plan.fingerprint),
        ("org.envlock.lock-version", lock.lock_version),
        ("org.envlock.dockerfile-format", DOCKERFILE_FORMAT),
        ("org.envlock.base-source", plan.base_source),
        ("org.envlock.lock", p.LOCK_PATH),
        ("org.envlock.venv", plan.interpreter.rsplit("/bin/", 1)[0]),
    ]
    if lock.created_by:
        labels.append(("org.envlock.lock-created-by", lock.created_by))
    if lock.created_at:
        labels.append(("org.envlock.lock-created-at", lock.created_at))
    if plan.os_step:
        labels.append(("org.envlock.os-report", p.OS_REPORT_PATH))
    labels.append(("org.opencontainers.image.base.name", plan.base_image))
    if plan.base_digest:
        labels.append(("org.opencontainers.image.base.digest", plan.base_digest))
    return labels


# --- the other files -----------------------------------------------------------------


def render_requirements(
    group: p.InstallGroup, number: int, total: int, installer: str = "pip install", layer: int | None = None
) -> str:
    """One hash-pinned requirements file (pure); ``installer`` and the image ``layer`` are named in its header."""
    how = {
        "index": f"from {group.index_url}",
        "wheelhouse": "from the wheelhouse in the build context",
        "direct": "from their recorded URLs",
    }[group.kind]
    lines = [
        f"# envlock: hash-pinned install set, group {number} of {total}"
        + (f" (image layer {layer})" if layer else "")
        + f", {how}.",
        f"# Installed with {installer} --require-hashes --no-deps"
        + (" --only-binary :all:" if group.binary_only else "")
        + ": exactly these files, no resolution.",
    ]
    for requirement in group.requirements:
        line = requirement.line()
        if line.startswith("-") or "\n" in line or "\r" in line:
            raise ReplayError(
                f"python.packages[{requirement.name}]: refusing a requirement line that pip would read as an option"
            )
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_plan_json(plan: p.ReplayPlan) -> str:
    """The plan for programs (the engine's report, `--output-dir`); not copied into the image."""
    data = {
        "dockerfile-format": DOCKERFILE_FORMAT,
        "fingerprint": plan.fingerprint,
        "base-image": plan.base_image,
        "base-digest": plan.base_digest,
        "base-source": plan.base_source,
        "python-from": plan.python_from,
        "install-groups": [
            {
                "kind": g.kind,
                "index-url": g.index_url,
                "binary-only": g.binary_only,
                "requirements": [{"name": r.name, "version": r.version, "sha256": r.sha256} for r in g.requirements],
            }
            for g in plan.install_groups
        ],
        "os-packages": [{"name": o.name, "version": o.version} for o in plan.os_packages],
        "os-sources": list(plan.os_sources),
        "os-fallbacks": list(plan.os_fallbacks),
        "env": dict(plan.env),
        "conda-packages": [a.to_json() for a in plan.conda.archives] if plan.conda else [],
        "findings": [f.to_dict() for f in plan.findings],
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_context(plan: p.ReplayPlan) -> BuildContext:
    """Every file of the build context (pure apart from reading envlock's own templates)."""
    from envlock.lockfile.write import dumps_lock

    files: dict[str, bytes] = {"Dockerfile": render_dockerfile(plan).encode("utf-8")}
    total = len(plan.install_groups)
    for number, group in enumerate(plan.install_groups, start=1):
        if plan.uv is None or plan.conda:  # one file per group: the conda stage is not shipped layer by layer
            installer = "pip install" if plan.uv is None else "uv pip install"
            text = render_requirements(group, number, total, installer)
            files[f"{REQUIREMENTS_DIR}/requirements-{number}.txt"] = text.encode("utf-8")
            continue
        for part, requirements in enumerate(install_layers(group), start=1):
            layer = records.replace(group, requirements=requirements)
            text = render_requirements(layer, number, total, "uv pip install", part)
            files[f"{REQUIREMENTS_DIR}/{_layer_file(number, part)}"] = text.encode("utf-8")
    if plan.os_step:
        files[OS_SCRIPT] = read_template_bytes("os_packages.py")
    if plan.ca_mode == "stage":
        if not plan.ca_cert:
            raise ReplayError("CA mode 'stage' needs the certificate's bytes")
        files[CA_FILE] = plan.ca_cert
    conda_sources: dict[str, str] = {}
    if plan.conda:
        from envlock.replay.conda_stage import context_files, context_sources

        files.update(context_files(plan))
        conda_sources = context_sources(plan)  # a pack's archives, rattler wheel and installer .debs
    files[LOCK_FILE] = dumps_lock(plan.lock).encode("utf-8")
    files[PLAN_FILE] = render_plan_json(plan).encode("utf-8")
    wheelhouse = {f"{WHEELS_DIR}/{w.filename}": w.local_path for w in plan.wheelhouse}
    executables = {UV_FILE: plan.uv.path} if plan.uv is not None else {}
    wheelhouse.update({f"{DEBS_DIR}/{name}": path for name, path in plan.os_local_debs})
    wheelhouse.update(conda_sources)
    secret_ids = (p.CA_SECRET_ID,) if plan.ca_mode == "secret" else ()
    return BuildContext(
        files=dict(sorted(files.items())), wheelhouse=wheelhouse, executables=executables, secret_ids=secret_ids
    )
