"""capture → replay → verify with real parts: a real venv, PyPI, the Debian mirror, the engine.

The environment is a virtualenv with a few small real packages, two of them
with compiled extensions (PyYAML's ``_yaml``, MarkupSafe's ``_speedups``).
It is captured with ``envlock capture --python``; the lock keeps every layer
as captured except the hand-installed OS packages, which are cleared (this
host has ~90 of them, from google-cloud-cli to maven, some from third-party
apt repositories: minutes of apt and not what these tests are about); the
months-later test puts back one OS package at a version the mirror dropped.

No registry is reachable here, so replay builds on its own Debian-mirror base
(Debian 12's python3.11 = 3.11.2) while the venv runs 3.11.x from pyenv: the
interpreter patch-level difference must be reported, not hidden.

The CA bundle passed with ``--ca-cert`` (this machine's PyPI traffic goes
through a TLS-intercepting proxy) carries a canary line; ``docker save`` of
every replayed image is scanned for it, with BuildKit (secret mount) and with
the SDK's legacy builder (a build stage that is not shipped).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from envlock import records
from envlock.lockfile import identity, load_lock, write_lock
from envlock.lockfile import model as m
from envlock.replay import engine as eng
from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image
from envlock.replay.progress import Progress
from tests.conftest import run_envlock
from tests.docker.test_replay_engine import scan_saved_image
from tests.envs import build_venv

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]

PACKAGES = ("PyYAML==6.0.2", "MarkupSafe==2.1.5", "six==1.16.0", "idna==3.7")
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# requests 2.32.0 was yanked on PyPI ("Yanked due to conflicts with CVE-2024-35195 mitigation").
YANKED = ("requests", "2.32.0")
# jq 1.6-2.1 is bookworm's release version; point releases replaced it with
# +deb12u1 and later, and the mirror keeps only the newest.
DROPPED_OS = ("jq", "1.6-2.1")
NEVER_RELEASED = ("six", "1.99.0")


@pytest.fixture(scope="module")
def engine(docker_client):
    return eng.DockerEngine(client=docker_client)


@pytest.fixture(scope="module")
def base(engine):
    return ensure_base_image(engine, BaseImageSpec("bookworm", "3.11"), Progress())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("replay")


@pytest.fixture(scope="module")
def canary_ca(workdir):
    """The host's CA bundle plus a canary comment line (PEM readers skip text between certificates)."""
    if not HOST_BUNDLE.is_file():
        pytest.skip(f"{HOST_BUNDLE} is missing")
    canary = f"envlock-ca-canary-{uuid.uuid4().hex}"
    path = workdir / "ca-bundle.pem"
    path.write_bytes(HOST_BUNDLE.read_bytes() + f"\n# {canary}\n".encode())
    return path, canary.encode()


def _write(lock: m.Lock, path: Path) -> Path:
    write_lock(identity.with_fingerprint(lock), path, "tests/docker/test_replay_e2e.py")
    return path


@pytest.fixture(scope="module")
def small_lock(workdir, base):
    venv = build_venv("replay-small", PACKAGES)
    captured = workdir / "captured.lock"
    result = run_envlock("capture", "--python", str(venv.python), "-o", str(captured), "-q", cwd=workdir)
    assert result.returncode == 0, result.stderr
    lock = load_lock(captured).lock
    assert {p.name.lower() for p in lock.python.packages} >= {"pyyaml", "markupsafe", "six", "idna"}
    if lock.os is not None:
        lock = records.replace(
            lock, os=records.replace(lock.os, packages=tuple(p for p in lock.os.packages if not p.manual))
        )
    return _write(lock, workdir / "envlock.lock")


def _replay(lock: Path, *args: str, cwd: Path):
    result = run_envlock("replay", str(lock), "--json", "-q", *args, cwd=cwd, timeout=900)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


def _by_path(report: dict) -> dict[str, dict]:
    return {f["path"]: f for f in report["findings"]}


def _mismatches(report: dict, prefix: str) -> list[dict]:
    return [
        f
        for f in report["findings"]
        if f["path"].startswith(prefix) and f["severity"] != "info" and f["status"] != "exact"
    ]


@pytest.fixture(scope="module")
def replayed(small_lock, canary_ca, workdir):
    code, report = _replay(small_lock, "--ca-cert", str(canary_ca[0]), "-t", "envlock-test/replay:e2e", cwd=workdir)
    return code, report


def test_end_to_end_python_packages_reproduced_exactly(replayed, engine):
    code, report = replayed
    assert _mismatches(report, "python.packages") == []
    layers = {row["layer"]: row["status"] for row in report["layers"]}
    assert set(layers) >= {"python", "os", "cuda", "runtime", "host"}
    assert report["builder"] in ("buildkit", "sdk")
    # python and pip on the PATH are the replayed environment; compiled extensions load.
    ran = engine.run(
        "envlock-test/replay:e2e",
        [
            "python",
            "-c",
            "import sys, yaml._yaml, markupsafe._speedups, six, idna; print(sys.prefix, yaml.__version__, six.__version__)",
        ],
    )
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.decode().split() == ["/opt/envlock/venv", "6.0.2", "1.16.0"]
    assert engine.run("envlock-test/replay:e2e", ["pip", "--version"]).stdout.decode().count("/opt/envlock/venv") == 1


def test_interpreter_patch_difference_is_a_finding(replayed, small_lock, base):
    code, report = replayed
    locked = load_lock(small_lock).lock.python.version
    if locked == base.python_version:
        pytest.skip(f"the captured interpreter is {locked}, the same as the base image's")
    finding = _by_path(report)["python.version"]
    assert (finding["locked"], finding["actual"]) == (locked, base.python_version)
    assert finding["severity"] != "info" and finding["status"] != "exact"
    assert code == 1 and report["exit_code"] == 1
    assert any("own base image envlock/python:3.11-debian-bookworm" in note for note in report["notes"])


def test_ca_cert_is_in_no_layer_of_the_image(replayed, engine, canary_ca):
    layers, hits = scan_saved_image(engine, "envlock-test/replay:e2e", canary_ca[1])
    assert layers >= 3
    assert hits == []


def test_same_lock_same_dockerfile_and_warm_rebuild_from_the_cache(replayed, small_lock, canary_ca, workdir, engine):
    first = run_envlock("replay", str(small_lock), "--dry-run", "--ca-cert", str(canary_ca[0]), cwd=workdir)
    second = run_envlock("replay", str(small_lock), "--dry-run", "--ca-cert", str(canary_ca[0]), cwd=workdir)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout and first.stdout.startswith("# envlock replay:")
    code, report = _replay(small_lock, "--ca-cert", str(canary_ca[0]), "-t", "envlock-test/replay:e2e", cwd=workdir)
    # Every step came from the cache: the same image.  How fast that is belongs to
    # benchmarks/bench_replay.py (a wall-clock bound here failed on a loaded machine).
    assert report["image_id"] == replayed[1]["image_id"]
    assert _mismatches(report, "python.packages") == []


def test_legacy_builder_keeps_the_ca_in_an_unshipped_stage(small_lock, canary_ca, workdir, engine):
    code, report = _replay(
        small_lock, "--builder", "sdk", "--ca-cert", str(canary_ca[0]), "-t", "envlock-test/replay:sdk", cwd=workdir
    )
    assert report["builder"] == "sdk"
    assert _mismatches(report, "python.packages") == []
    layers, hits = scan_saved_image(engine, "envlock-test/replay:sdk", canary_ca[1])
    assert layers >= 3
    assert hits == []


def test_verify_an_existing_image(replayed, small_lock, workdir):
    # The lock stored in the image by replay.
    result = run_envlock("verify", "envlock-test/replay:e2e", "--json", cwd=workdir)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert any("stored in the image" in note for note in report["notes"])
    assert _mismatches(report, "python.packages") == []
    assert result.returncode == replayed[0]
    # An explicit lock, in Markdown.
    result = run_envlock("verify", "envlock-test/replay:e2e", str(small_lock), "--markdown", cwd=workdir)
    assert result.returncode == replayed[0]
    assert result.stdout.startswith("## envlock verify: envlock-test/replay:e2e")
    assert "**verdict: " in result.stdout and "\n- Python: " in result.stdout


def test_verify_an_image_that_is_not_a_replay(base, small_lock, workdir):
    result = run_envlock("verify", base.ref, str(small_lock), "--python", "python3", "--json", cwd=workdir)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    missing = {f["path"] for f in _mismatches(report, "python.packages")}
    assert {"python.packages[pyyaml]", "python.packages[six]"} <= missing


def test_months_later_replay_completes_and_names_each_problem(small_lock, canary_ca, workdir):
    lock = load_lock(small_lock).lock
    packages = [
        p if p.name != NEVER_RELEASED[0] else records.replace(p, version=NEVER_RELEASED[1])
        for p in lock.python.packages
    ]
    packages.append(m.PythonPackage(name=YANKED[0], version=YANKED[1], installer="pip", requested=True))
    os_section = lock.os or m.OsSection(id="debian", version_id="12", codename="bookworm")
    os_packages = (
        *os_section.packages,
        m.OsPackage(name=DROPPED_OS[0], version=DROPPED_OS[1], architecture="amd64", manual=True),
    )
    later = records.replace(
        lock,
        python=records.replace(lock.python, packages=tuple(sorted(packages, key=lambda p: p.name.lower()))),
        os=records.replace(os_section, packages=tuple(sorted(os_packages, key=lambda p: p.name))),
    )
    path = _write(later, workdir / "months-later.lock")
    # The snapshot archive is a closed loopback port: nothing leaves this machine,
    # and the dropped version is a finding (tests/docker/test_os_snapshot.py serves one that has it).
    code, report = _replay(
        path,
        "--ca-cert",
        str(canary_ca[0]),
        "--snapshot-url",
        "http://127.0.0.1:9",
        "-t",
        "envlock-test/replay:later",
        cwd=workdir,
    )
    assert code == 1 and report["image_id"]  # the image was built
    found = _by_path(report)
    never = found[f"python.packages[{NEVER_RELEASED[0]}]"]
    assert NEVER_RELEASED[1] in never["message"] and never["status"] == "not-reproducible"
    yanked = [
        f for path, f in found.items() if path.startswith("python.packages[requests]") and "yanked" in f["message"]
    ]
    assert yanked, sorted(found)
    dropped = [
        f for path, f in found.items() if path.startswith(f"os.packages[{DROPPED_OS[0]}") and f["status"] != "exact"
    ]
    assert dropped and "snapshot.debian.org" in json.dumps(dropped)
    # Everything else still came through exactly.
    others = [
        f
        for f in _mismatches(report, "python.packages")
        if not f["path"].startswith((f"python.packages[{NEVER_RELEASED[0]}]", "python.packages[requests]"))
    ]
    assert others == []
