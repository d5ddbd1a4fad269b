"""``envlock replay --into-venv DIR``: the Python layer, without Docker.

The same install set as the image (the plan's hash-pinned groups), installed
into a fresh virtual environment with ``pip install --require-hashes
--no-deps --only-binary :all:``, so the venv gets exactly the locked files or
nothing: a file whose sha256 differs stops pip before it installs anything
(pip checks every hash before installing), and envlock then removes the half-made venv.
Every other layer (OS packages, CUDA, conda, driver, GPU, CPU, variables) is
reported as not replayed.

pip runs ``--isolated`` (no pip.conf, no PIP_* variables: a site's extra
index cannot slip in); a TLS-intercepting proxy's CA bundle is passed with
``--cert``: the ``ca_cert`` argument, else the bundle the caller's pip already
trusts (``PIP_CERT``, ``SSL_CERT_FILE`` or ``REQUESTS_CA_BUNDLE``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from envlock import proc
from envlock.errors import ReplayError, UsageError
from envlock.findings import CHANGED, EXACT, INFO, NOT_REPRODUCIBLE, NUMERIC, Finding
from envlock.lockfile import model as m
from envlock.records import record
from envlock.replay.plan import ReplayOptions, plan_replay
from envlock.replay.render import render_requirements
from envlock.replay.uv_tool import UvBinary, install_argv, uninstall_argv
from envlock.versions import minor

if TYPE_CHECKING:
    from envlock.resolve import PinSet

PIP_TIMEOUT = 1800  # seconds for one pip install (large wheels on slow links)
_PIP_COMMON = ["--isolated", "--disable-pip-version-check", "--no-input"]
_NOT_REPLAYED = {
    "os": ("os", "OS packages"),
    "conda": ("conda", "conda packages"),
    "cuda": ("cuda", "system CUDA libraries"),
    "nvidia": ("driver", "the NVIDIA driver and GPUs (host)"),
    "cpu": ("cpu", "the CPU (host)"),
    "runtime": ("runtime", "numerics environment variables"),
    "project": ("project", "the project's git state"),
}


@record
class VenvReplay:
    directory: str
    python: str  # the venv's interpreter
    python_version: str
    installed: dict[str, str]  # canonical name -> version, read back from the venv
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        """0 when the Python layer is exact; 1 when anything in it differs (other layers are never replayed here)."""
        return 0 if all(f.status == EXACT for f in self.findings if f.layer == "python") else 1


def default_ca_bundle() -> str | None:
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(name)
        if value and os.path.isfile(value):
            return value
    return None


def _interpreter_version(python: str) -> str:
    done = proc.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], timeout=60)
    if done is None or done.returncode != 0:
        raise UsageError(f"{python}: cannot run this Python", hint="pass --python PATH to an interpreter")
    return done.stdout.strip()


def replay_into_venv(
    lock: m.Lock,
    directory: str | os.PathLike,
    pins: PinSet | None,
    *,
    python: str | None = None,
    ca_cert: str | None = None,
    allow_sdists: bool = False,
    uv: UvBinary | None = None,
) -> VenvReplay:
    """Create ``directory`` as a venv holding exactly the lock's hash-pinned Python packages.

    ``uv``: the checked uv executable (:mod:`envlock.replay.uv_tool`) installs
    the files, in parallel; without it pip does, as before.  ``ReplayError``
    (exit 2) when the venv cannot be made or the installer refuses a file;
    the directory is then removed again.  A directory that exists and is not
    empty is refused before anything is written.
    """
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(
            f"{target}: exists and is not empty; --into-venv makes a fresh virtualenv", hint="name a new directory"
        )
    interpreter = python or sys.executable
    have = _interpreter_version(interpreter)
    locked = lock.python.version if lock.python else None
    if locked and minor(locked) != minor(have):
        raise ReplayError(
            f"the lock needs Python {minor(locked)} and {interpreter} is Python {have}; its wheels would not install",
            hint=f"pass --python PATH to a Python {minor(locked)} interpreter",
        )
    # The plan's Python layer, with a placeholder base: no image is involved.
    plan = plan_replay(lock, ReplayOptions(base_image="scratch", pins=pins, allow_sdists=allow_sdists))
    findings: list[Finding] = [f for f in plan.findings if f.layer == "python" and f.path != "python.version"]
    if locked:
        same = locked == have
        findings.append(
            Finding(
                "python",
                "python.version",
                INFO if same else CHANGED,
                f"the virtualenv's Python is {have}" + ("" if same else f"; the lock has {locked}"),
                locked=locked,
                actual=have,
                status=EXACT if same else CHANGED,
                rank=150,
            )
        )
    ca = ca_cert or default_ca_bundle()
    created = not target.exists()
    try:
        venv_python = str(target / "bin" / "python")
        seeded = uv is None or _seeds_pip(plan)
        # ensurepip (~5 s) only when pip installs, or when the lock pins no pip to install.
        _run_checked(
            [interpreter, "-m", "venv", *([] if seeded else ["--without-pip"]), str(target)],
            "creating the virtualenv",
            300,
        )
        with tempfile.TemporaryDirectory(prefix="envlock-venv-") as scratch:
            wheel_dir = Path(scratch) / "wheels"
            for item in plan.wheelhouse:
                wheel_dir.mkdir(exist_ok=True)
                shutil.copyfile(item.local_path, wheel_dir / item.filename)  # the installer checks the hash
            total = len(plan.install_groups)
            for number, group in enumerate(plan.install_groups, start=1):
                requirements = Path(scratch) / f"requirements-{number}.txt"
                installer = "uv pip install" if uv is not None else "pip install"
                requirements.write_text(render_requirements(group, number, total, installer), encoding="utf-8")
                if uv is not None:
                    argv = install_argv(
                        group, uv.path, venv_python, str(requirements), str(wheel_dir), ca, uv_cache_dir()
                    )
                else:
                    argv = group.pip_install_argv(venv_python, str(requirements), str(wheel_dir), ca)
                _run_checked(
                    argv, f"installing group {number} of {total} ({group.index_url or group.kind})", PIP_TIMEOUT
                )
        if plan.remove_after_install and seeded:
            if uv is not None:
                argv = uninstall_argv(uv.path, venv_python, plan.remove_after_install)
            else:
                argv = [venv_python, "-m", "pip", "uninstall", *_PIP_COMMON, "--yes", *plan.remove_after_install]
            _run_checked(argv, "removing bootstrap packages", 300)
        installed = _installed(venv_python)
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:  # an empty directory we were given: leave it empty again
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        raise
    findings.extend(_compare(plan, installed))
    findings.extend(_not_replayed(lock))
    return VenvReplay(str(target), venv_python, have, installed, tuple(findings))


def _seeds_pip(plan) -> bool:
    from packaging.utils import canonicalize_name

    return not any(canonicalize_name(r.name) == "pip" for g in plan.install_groups for r in g.requirements)


def uv_cache_dir() -> str:
    """uv's download cache for --into-venv: envlock's own, so a second replay downloads nothing again."""
    from envlock.capture.cache import cache_dir

    return os.path.join(cache_dir(), "uv-cache")


def _installer_env() -> dict[str, str]:
    # pip runs --isolated; uv's counterpart is --no-config plus no UV_* variable of the caller's.
    return {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}


def _run_checked(argv: list[str], what: str, timeout: float) -> None:
    done = proc.run(argv, timeout=timeout, env=_installer_env())
    if done is None:
        raise ReplayError(f"{what}: {argv[0]} could not be run or timed out after {int(timeout)} s")
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        tail = "\n".join("  " + line for line in output[-15:])
        hint = None
        text = done.stdout + done.stderr
        if "DO NOT MATCH THE HASHES" in text or "Hash mismatch" in text:
            hint = "a downloaded file is not the locked file (its sha256 differs): the index serves different bytes, or the lock was edited"
        raise ReplayError(f"{what} failed (exit {done.returncode}):\n{tail}", hint=hint)


_LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted((d.metadata['Name'] or '', d.version) for d in m.distributions())))"
)


def _installed(venv_python: str) -> dict[str, str]:
    """Name -> version of every distribution in the venv, read by its own interpreter (no pip needed)."""
    from packaging.utils import canonicalize_name

    done = proc.run([venv_python, "-I", "-c", _LIST_DISTRIBUTIONS], timeout=120)
    if done is None or done.returncode != 0:
        raise ReplayError("cannot list the packages of the new virtualenv")
    try:
        items = json.loads(done.stdout)
    except ValueError:
        raise ReplayError("the new virtualenv's Python printed something that is not JSON") from None
    return {canonicalize_name(name): version for name, version in items if name}


def _compare(plan, installed: dict[str, str]) -> list[Finding]:
    from packaging.utils import canonicalize_name

    out = []
    wanted = {canonicalize_name(r.name): r for g in plan.install_groups for r in g.requirements}
    for name, requirement in sorted(wanted.items()):
        have = installed.get(name)
        if have != requirement.version:
            out.append(
                Finding(
                    "python",
                    f"python.packages[{requirement.name}]",
                    NUMERIC,
                    f"{requirement.name}: {have or 'not installed'} in the virtualenv; the lock has {requirement.version}",
                    locked=requirement.version,
                    actual=have,
                    status=CHANGED if have else NOT_REPRODUCIBLE,
                    rank=60,
                )
            )
    locked_names = {canonicalize_name(p.name) for p in (plan.lock.python.packages if plan.lock.python else ())}
    # pip without a lock entry is reported by the plan already (kept so that `pip` works).
    for extra in sorted(set(installed) - locked_names - {"pip"}):
        out.append(
            Finding(
                "python",
                f"python.packages[{extra}]",
                INFO,
                f"{extra} {installed[extra]} is in the virtualenv but not in the lock (the venv bootstraps it)",
                actual=installed[extra],
                status=CHANGED,
                rank=190,
            )
        )
    return out


def _not_replayed(lock: m.Lock) -> list[Finding]:
    out = []
    for attr, (layer, what) in _NOT_REPLAYED.items():
        if getattr(lock, attr) is None:
            continue
        fix = "replay into a container image (envlock replay without --into-venv)"
        if attr == "runtime" and lock.runtime is not None and lock.runtime.env:
            fix = "export them before running: " + " ".join(f"{k}=..." for k in sorted(lock.runtime.env))
        out.append(
            Finding(
                layer,
                attr,
                INFO,
                f"{what}: not replayed (--into-venv replays the Python layer only)",
                fix=fix,
                status=NOT_REPRODUCIBLE,
                rank=190,
            )
        )
    return out
