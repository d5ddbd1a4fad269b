"""Whole replay reports from real builds, against reviewed golden files (tests/data/reports/).

Two replays of a small clean lock (Debian 12, Debian's Python 3.11.2, pip at
the version its venv bootstraps): one on the base that replay chooses itself,
one with ``--base-image`` whose OS release and Python are read from the image
before planning.  Both must be one short screen and exit 0.  Then `make
demo`'s replay half on the same lock ends with that one verdict screen.

What varies from machine to machine (image ids, the builder found, the CPU)
is replaced by a placeholder before comparing; everything else is compared
whole.  Rewrite with ``ENVLOCK_UPDATE_GOLDEN=1`` after an intended change,
and read the diff.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from envlock.lockfile import identity, write_lock
from envlock.lockfile import model as m
from envlock.replay import engine as eng
from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image
from envlock.replay.progress import Progress
from tests.conftest import run_envlock

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "reports"
CA = Path("/etc/ssl/certs/ca-certificates.crt")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base(docker_client):
    return ensure_base_image(eng.DockerEngine(client=docker_client), BaseImageSpec("bookworm", "3.11"), Progress())


@pytest.fixture(scope="module")
def clean_lock(tmp_path_factory, base):
    """What a venv of the base image's own Python holds: pip as ensurepip bootstraps it."""
    lock = m.Lock(
        python=m.PythonSection(
            implementation="cpython",
            version=base.python_version,
            environment_kind="venv",
            packages=(m.PythonPackage(name="pip", version="23.0.1", installer="pip"),),
        ),
        os=m.OsSection(id="debian", version_id="12", name="Debian GNU/Linux 12 (bookworm)", package_manager="dpkg"),
    )
    path = tmp_path_factory.mktemp("golden") / "envlock.lock"
    write_lock(identity.with_fingerprint(lock), path, "tests/docker/test_report_golden.py")
    return path


def normalise(text: str) -> str:
    text = re.sub(r"sha256:[0-9a-f]{12,64}", "sha256:<id>", text)
    text = re.sub(r"(?m)^note: builder: .*$", "note: builder: <the builder this machine has>", text)
    text = re.sub(r"(?m)^(- |note: )this host: .*$", r"\1this host: <this host>", text)
    text = re.sub(r"(?m)^(- )builder: .*$", r"\1builder: <the builder this machine has>", text)
    return text


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("ENVLOCK_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def _replay(lock: Path, tag: str, *args: str):
    ca = ("--ca-cert", str(CA)) if CA.is_file() else ()
    # Each golden report is a first replay's: no capture of the same image reused from an earlier test
    # (that adds a note; tests/docker/test_replay_pinned.py checks it).
    env = {"ENVLOCK_NO_CACHE": "1"}
    return run_envlock("replay", str(lock), "-q", "-t", tag, *ca, *args, env=env, timeout=900)


@pytest.mark.parametrize("fmt, suffix", [((), "txt"), (("--markdown",), "md")])
def test_clean_replay_is_one_short_screen_and_exit_0(clean_lock, fmt, suffix):
    result = _replay(clean_lock, "envlock-test/report-golden:clean", *fmt)
    assert result.returncode == 0, result.stdout + result.stderr
    if not fmt:
        assert len(result.stdout.splitlines()) <= 15
        assert result.stdout.splitlines()[1] == "verdict: the image reproduces the lock exactly"
    check_golden(f"replay-clean.{suffix}", normalise(result.stdout))


@pytest.mark.parametrize("fmt, suffix", [((), "txt"), (("--markdown",), "md")])
def test_replay_with_a_base_image_whose_release_is_read_from_it(clean_lock, base, fmt, suffix):
    result = _replay(clean_lock, "envlock-test/report-golden:base", "--base-image", base.ref, *fmt)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"read from {base.ref} before planning: debian 12, Python {base.python_version}" in result.stdout
    check_golden(f"replay-base-image.{suffix}", normalise(result.stdout))


def test_make_demo_ends_with_one_verdict_screen(clean_lock, tmp_path):
    report = tmp_path / "envlock-replay.md"
    env = {
        **os.environ,
        "ENVLOCK_DEMO_LOCK": str(clean_lock),
        "ENVLOCK_DEMO_IMAGE": "envlock-test/report-golden:demo",
        "ENVLOCK_DEMO_REPORT": str(report),
    }
    result = subprocess.run(
        ["bash", "scripts/demo-replay.sh", str(Path(sys.executable).parent)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("envlock replay: "))
    screen = lines[start:]
    assert len(screen) <= 20  # the verdict screen is the end of the demo, and it is short
    assert sum(line.startswith("verdict: ") for line in lines) == 1  # no second report
    assert (
        screen[-1]
        == f"== demo: envlock-test/report-golden:demo reproduces {clean_lock} exactly (Markdown report: {report})"
    )
    assert report.read_text(encoding="utf-8").startswith("## envlock verify: envlock-test/report-golden:demo")
