"""Render the conda build stage: the lock's conda packages, then pip's on top, in one prefix (pure).

Stage 1 of a conda replay (it takes the place of the virtual-environment stage):

1. a throw-away venv in the build scratch space gets py-rattler from PyPI,
   ``--require-hashes`` against the sha256 pinned in :mod:`envlock.replay.conda`;
2. ``conda_install.py`` (``templates/``) downloads every archive, checks its
   hash against the lock, and has rattler link them into the prefix;
3. the lock's pip-installed packages are installed on top by the same
   hash-pinned ``pip install`` the virtual-environment stage uses, pointed at
   the conda interpreter with pip's ``--python``.

From a pack (``plan.conda.local``) the stage fetches nothing, since its network is
off: the archives, the py-rattler wheel and, for a base without python3,
Debian's ``python3``/``python3-venv`` .debs are copied from the build context;
apt installs those files without reading any source, pip installs the wheel
with ``--no-index``, and the installer checks each archive's hash as it does
a download's (``--local-dir``).

The final stage copies only the prefix and puts its ``bin`` first on PATH; no
installer, download or certificate is in it.  Every ``RUN`` is exec form and
the lock's values reach the build only as data in ``packages.json``.
"""

from __future__ import annotations

import re
from pathlib import Path

from envlock.errors import ReplayError
from envlock.replay import conda as c
from envlock.replay import plan as p
from envlock.replay.templates import read_template_bytes

CONTEXT_DIR = "envlock/conda"
PACKAGES_FILE = f"{CONTEXT_DIR}/packages.json"
SCRIPT_FILE = f"{CONTEXT_DIR}/conda_install.py"
RATTLER_FILE = f"{CONTEXT_DIR}/rattler.txt"
# A pack's files in the build context, and where the build stage finds them.
LOCAL_ARCHIVES = f"{CONTEXT_DIR}/pkgs"
LOCAL_RATTLER = f"{CONTEXT_DIR}/rattler"
LOCAL_INSTALLER_DEBS = f"{CONTEXT_DIR}/installer"
BUILD_ARCHIVES = f"{c.CONDA_BUILD_DIR}/pkgs"
BUILD_RATTLER = f"{c.CONDA_BUILD_DIR}/rattler"
BUILD_INSTALLER_DEBS = f"{c.CONDA_BUILD_DIR}/installer"
_WHEEL_FILE = re.compile(r"[A-Za-z0-9_.]+-[A-Za-z0-9_.+!]+(?:-[A-Za-z0-9_.]+){3}\.whl")
_DEB_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~_%-]{0,200}\.deb")
# Fixed text (no lockfile value).  The installer needs a python3 >= 3.10 with
# venv in stage 1 only; a base without one (a minimal Debian: the conda prefix
# brings its own Python) gets Debian's here, and the final stage never has it.
_INSTALLER_BOOTSTRAP = (
    "python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null"
    " || (apt-get {options}update && DEBIAN_FRONTEND=noninteractive"
    " apt-get {options}install -y --no-install-recommends -- python3 python3-venv && rm -rf /var/lib/apt/lists/*)"
)
# From a pack: the same test, then apt installs the pack's .deb files by path (it reads no source).
_INSTALLER_FROM_DEBS = (
    "python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null"
    " || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -- "
    + BUILD_INSTALLER_DEBS
    + "/*.deb"
)


def rattler_group(local: bool = False, index_url: str = c.RATTLER_INDEX) -> p.InstallGroup:
    """The installer's own hash-pinned install set (from the build context's wheel when ``local``)."""
    requirement = p.Requirement(c.RATTLER_NAME, c.RATTLER_VERSION, c.RATTLER_SHA256)
    if local:
        return p.InstallGroup("wheelhouse", None, True, (requirement,))
    return p.InstallGroup("index", index_url, True, (requirement,))


def _onto_conda_python(argv: list[str]) -> list[str]:
    """A ``python -m pip install ...`` line run by the installer venv's pip into the conda prefix."""
    if argv[1:4] != ["-m", "pip", "install"]:
        raise ReplayError("the Python layer's install command is not `python -m pip install`; conda replay needs it")
    return [*argv[:3], "--python", c.CONDA_PYTHON, *argv[3:]]


def conda_stage(plan: p.ReplayPlan, run, ca_path: str | None, apt_bootstrap: list[str]) -> list[str]:
    """The stage-1 lines (``run(argv, secret, what, uv)`` renders one exec-form RUN, with uv at hand when ``uv``).

    With uv (``plan.uv``) the installer venv is made without pip (ensurepip
    costs seconds) and uv installs py-rattler into it and the lock's pip
    packages onto the conda interpreter, each hash-pinned as pip would; uv is
    a bind mount with BuildKit, else copied into this stage, which is not shipped.
    """
    assert plan.conda is not None
    local = plan.conda.local
    secret = plan.ca_mode == "secret"
    uv = plan.uv is not None
    lines: list[str] = []
    if plan.ca_mode == "stage":
        lines.append(f"COPY envlock/ca.crt {p.CA_STAGE_PATH}")
    if uv and plan.builder != "buildkit":
        from envlock.replay.render import UV_FILE, UV_PATH

        lines.append(f"COPY {UV_FILE} {UV_PATH}")
    if local is not None:
        # The build's network is off: nothing below reads a source, an index or a channel.
        if local.installer_debs:
            lines.append(f"COPY {LOCAL_INSTALLER_DEBS}/ {BUILD_INSTALLER_DEBS}/")
            lines.append(run(["/bin/sh", "-c", _INSTALLER_FROM_DEBS], False, "installer python"))
    elif apt_bootstrap:
        lines.extend(apt_bootstrap)
    else:
        options = f"-o Acquire::https::CAInfo={ca_path} " if ca_path else ""
        lines.append(run(["/bin/sh", "-c", _INSTALLER_BOOTSTRAP.format(options=options)], secret, "installer python"))
    venv = ["python3", "-m", "venv", *(["--without-pip"] if uv else []), c.INSTALLER_VENV]
    lines.append(run(venv, False, "installer venv"))
    lines.append(f"COPY {RATTLER_FILE} {c.CONDA_BUILD_DIR}/rattler.txt")
    if local is not None:
        lines.append(f"COPY {LOCAL_RATTLER}/ {BUILD_RATTLER}/")
    group = rattler_group(local is not None, plan.conda.installer_index)
    wheel_dir = BUILD_RATTLER if local is not None else p.WHEEL_DIR
    requirements = f"{c.CONDA_BUILD_DIR}/rattler.txt"
    if uv:
        argv = _uv_argv(group, c.INSTALLER_PYTHON, requirements, wheel_dir, ca_path, compile_bytecode=False)
    else:
        argv = group.pip_install_argv(c.INSTALLER_PYTHON, requirements, wheel_dir, ca_path, extra=("--no-cache-dir",))
    lines.append(run(argv, secret and local is None, "py-rattler", uv))
    lines.append(f"COPY {SCRIPT_FILE} {PACKAGES_FILE} {c.CONDA_BUILD_DIR}/")
    install = [c.INSTALLER_PYTHON, f"{c.CONDA_BUILD_DIR}/conda_install.py", f"{c.CONDA_BUILD_DIR}/packages.json"]
    if local is not None:
        lines.append(f"COPY {LOCAL_ARCHIVES}/ {BUILD_ARCHIVES}/")
        install += ["--local-dir", BUILD_ARCHIVES]
    else:
        install += ["--ca-file", ca_path] if ca_path else []
        install += ["--download-dir", BUILD_ARCHIVES]
    lines.append(run(install, secret and local is None, "conda packages"))
    if plan.wheelhouse:
        lines.append(f"COPY envlock/wheels/ {p.WHEEL_DIR}/")
    for number, group in enumerate(plan.install_groups, start=1):
        name = f"requirements-{number}.txt"
        lines.append(f"COPY envlock/python/{name} {p.BUILD_DIR}/python/{name}")
        requirements = f"{p.BUILD_DIR}/python/{name}"
        if uv:
            # uv installs into the interpreter it is given: the conda prefix's own site-packages.
            argv = _uv_argv(group, c.CONDA_PYTHON, requirements, p.WHEEL_DIR, ca_path, compile_bytecode=True)
        else:
            argv = group.pip_install_argv(
                c.INSTALLER_PYTHON, requirements, p.WHEEL_DIR, ca_path, extra=("--no-cache-dir",)
            )
            argv = _onto_conda_python(argv)
        lines.append(run(argv, secret, f"pip install group {number}", uv))
    return lines


def _uv_argv(group: p.InstallGroup, python: str, requirements: str, wheel_dir: str, ca_path, compile_bytecode: bool):
    from envlock.replay.render import UV_PATH
    from envlock.replay.uv_tool import install_argv

    # A throwaway cache (hard links in this stage): the stage is not shipped, and a
    # cache mount would outlive a replay for files installed once.
    return install_argv(group, UV_PATH, python, requirements, wheel_dir, ca_path, None, compile_bytecode)


def final_lines(stage_name: str) -> list[str]:
    """Copy the prefix; its bin/ first on PATH (static text: ${PATH} is the base's, expanded by Docker)."""
    return [
        f"COPY --from={stage_name} {c.CONDA_PREFIX} {c.CONDA_PREFIX}",
        f'ENV PATH="{c.CONDA_PREFIX}/bin:${{PATH}}"',
    ]


def context_files(plan: p.ReplayPlan) -> dict[str, bytes]:
    assert plan.conda is not None
    from envlock.replay.render import render_requirements

    return {
        PACKAGES_FILE: c.packages_json(plan.conda).encode("utf-8"),
        SCRIPT_FILE: read_template_bytes("conda_install.py"),
        RATTLER_FILE: render_requirements(
            rattler_group(plan.conda.local is not None, plan.conda.installer_index), 1, 1
        ).encode("utf-8"),
    }


def context_sources(plan: p.ReplayPlan) -> dict[str, str]:
    """Build-context path -> file on this machine, for a pack's conda files (empty when they are fetched).

    Every name is checked: it becomes a path in the build context and, for the
    installer's .debs, part of a glob apt reads.
    """
    assert plan.conda is not None
    local = plan.conda.local
    if local is None:
        return {}
    paths = dict(local.archives)
    out = {f"{LOCAL_ARCHIVES}/{a.filename}": paths[a.filename] for a in plan.conda.archives}
    wheel = Path(local.rattler_wheel).name
    if not _WHEEL_FILE.fullmatch(wheel):
        raise ReplayError(f"{wheel[:80]!r} is not a wheel file name; the pack's py-rattler cannot be installed")
    out[f"{LOCAL_RATTLER}/{wheel}"] = local.rattler_wheel
    for path in local.installer_debs:
        name = Path(path).name
        if not _DEB_FILE.fullmatch(name):
            raise ReplayError(f"{name[:80]!r} is not a .deb file name envlock installs")
        out[f"{LOCAL_INSTALLER_DEBS}/{name}"] = path
    return out
