"""`envlock verify --runner PATH`: the interpreter that runs envlock's capture inside the image.

The hint for an image whose Python is too old tells users to pass --runner; these
tests hold that the option exists and that the path given reaches the image.
"""

from __future__ import annotations

import pytest

from envlock.lockfile import model as m
from envlock.lockfile import write_lock
from envlock.replay import engine as eng
from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image
from envlock.replay.progress import Progress
from tests.conftest import run_envlock

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def base(docker_client):
    return ensure_base_image(eng.DockerEngine(client=docker_client), BaseImageSpec("bookworm", "3.11"), Progress())


@pytest.fixture
def small_lock(tmp_path):
    path = tmp_path / "small.lock"
    write_lock(m.Lock(origin="capture", python=m.PythonSection(version="3.11.2")), path, "test")
    return path


def test_runner_is_the_interpreter_started_in_the_image(base, small_lock):
    missing = "/opt/no-such-python/bin/python3"
    result = run_envlock("verify", base.ref, str(small_lock), "--python", base.python, "--runner", missing)
    assert result.returncode == 2, result.stderr
    assert "unrecognized arguments" not in result.stderr
    assert missing in result.stderr  # the engine could not start that path: it reached the image
    assert "Traceback" not in result.stderr


def test_runner_runs_the_capture(base, small_lock):
    result = run_envlock("verify", base.ref, str(small_lock), "--python", base.python, "--runner", base.python)
    assert result.returncode in (0, 1), result.stderr
    assert "envlock verify" in result.stdout
