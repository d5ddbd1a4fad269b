"""Shared fixtures.

Docker tests: skip when no engine is reachable, except when
ENVLOCK_REQUIRE_DOCKER=1 (CI), where a missing engine fails the run.
The Docker client is created lazily, never at import time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The simulated NVIDIA host's fixtures, registered here so that every test module can ask for them by name.
from tests.fakes.nvml import fake_nvml, fake_nvml_library  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"


def run_envlock(
    *args: str,
    env: dict | None = None,
    cwd: str | os.PathLike | None = None,
    input_text: str | None = None,
    timeout: float = 300,
):
    """Run the real CLI in a subprocess (``python -m envlock``)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "envlock", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        input=input_text,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client for a reachable engine, or skip (fail under ENVLOCK_REQUIRE_DOCKER=1)."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # any failure to reach the engine
        if os.environ.get("ENVLOCK_REQUIRE_DOCKER") == "1":
            pytest.fail(f"ENVLOCK_REQUIRE_DOCKER=1 but no Docker engine is reachable: {exc}")
        pytest.skip(f"no Docker engine reachable: {exc}")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the shared/ folder must sit beside the project root")
    return SHARED
