"""``--base-image``: its OS release and Python are read from the image before the plan is made.

The expected values come from the image's own files and interpreter (read here
with ``cat`` and ``python3 -c``), not from envlock.
"""

from __future__ import annotations

import pytest

from envlock.replay import engine as eng
from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image
from envlock.replay.orchestrate import read_base_facts
from envlock.replay.progress import Progress
from tests.conftest import run_envlock

pytestmark = pytest.mark.docker

SPEC = BaseImageSpec("bookworm", "3.11")
LOCK = "tests/data/lockfiles/cpu.lock"


@pytest.fixture(scope="module")
def engine(docker_client):
    return eng.DockerEngine(client=docker_client)


@pytest.fixture(scope="module")
def base(engine):
    return ensure_base_image(engine, SPEC, Progress())


def _sh(engine, image: str, script: str) -> str:
    ran = engine.run(image, ["/bin/sh", "-c", script])
    assert ran.exit_code == 0, ran.stderr.decode()
    return ran.stdout.decode().strip()


def test_facts_are_read_from_the_image(engine, base):
    release = dict(
        line.split("=", 1) for line in _sh(engine, base.ref, "cat /etc/os-release").splitlines() if "=" in line
    )
    python = _sh(engine, base.ref, "python3 -c 'import platform; print(platform.python_version())'")
    facts = read_base_facts(engine, base.ref)
    assert facts.os_id == release["ID"].strip('"') == "debian"
    assert facts.os_version_id == release["VERSION_ID"].strip('"') == "12"
    assert facts.python_version == python


def test_an_image_without_python_still_has_its_release_read(engine, base):
    facts = read_base_facts(engine, SPEC.rootfs_ref)
    assert (facts.os_id, facts.os_version_id, facts.python_version) == ("debian", "12", None)


def test_replay_with_a_base_image_plans_its_os_packages(base, tmp_path):
    # cpu.lock is a Debian 12 lock: with the release read from the image, its
    # hand-installed packages go into the Dockerfile as for a matrix base.
    out = tmp_path / "context"
    result = run_envlock("replay", LOCK, "--base-image", base.ref, "--output-dir", str(out), "--json")
    assert result.returncode == 0, result.stderr
    dockerfile = (out / "Dockerfile").read_text(encoding="utf-8")
    assert f"FROM {base.ref}" in dockerfile
    assert "os_packages.py" in dockerfile and "curl=" in dockerfile
    assert f"read from {base.ref} before planning: debian 12, Python" in result.stdout
    assert "could not be read" not in result.stdout
