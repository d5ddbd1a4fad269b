"""The base image built from Debian's mirror (no registry): what provisioning leaves behind.

scripts/provision.d/docker-base.sh builds it with the same code replay uses
(``envlock.replay.debootstrap_base``: debootstrap --variant=minbase, docker import,
then Debian's python3.11); these tests check the images it produced and that
asking again reuses them instead of rebuilding.  Expected values come from the
image's own tools (dpkg-query, the interpreter), not from envlock.
"""

from __future__ import annotations

import io
import time

import pytest

from envlock.commands.progress import TerminalDisplay
from envlock.replay import engine as eng
from envlock.replay.debootstrap_base import (
    LABEL_PYTHON,
    LABEL_RECIPE,
    ROOTFS_RECIPE,
    BaseImageSpec,
    ensure_base_image,
    python_recipe,
)
from envlock.replay.progress import Progress

pytestmark = pytest.mark.docker

SPEC = BaseImageSpec("bookworm", "3.11")


@pytest.fixture(scope="module")
def engine(docker_client):
    return eng.DockerEngine(client=docker_client)


@pytest.fixture(scope="module")
def base(engine):
    return ensure_base_image(engine, SPEC, Progress(TerminalDisplay(stream=io.StringIO(), live=False)))


def _sh(engine, image: str, script: str) -> str:
    ran = engine.run(image, ["/bin/sh", "-c", script])
    assert ran.exit_code == 0, ran.stderr.decode()
    return ran.stdout.decode().strip()


def test_existing_base_is_reused_not_rebuilt(engine, base):
    out = io.StringIO()
    started = time.monotonic()
    again = ensure_base_image(engine, SPEC, Progress(TerminalDisplay(stream=out, live=False)))
    assert again.reused and again.image_id == base.image_id
    assert out.getvalue() == ""  # nothing was built
    assert time.monotonic() - started < 20
    assert "reused own base image envlock/python:3.11-debian-bookworm" in again.describe()
    assert engine.image(SPEC.ref).labels[LABEL_RECIPE] == python_recipe(SPEC)
    assert engine.image(SPEC.rootfs_ref).labels[LABEL_RECIPE] == ROOTFS_RECIPE


def test_rootfs_is_one_imported_layer(engine, base):
    history = engine.api.history(SPEC.rootfs_ref)
    assert len(history) == 1
    assert history[0]["Comment"] == "Imported from -"
    config = engine.api.inspect_image(SPEC.rootfs_ref)["Config"]
    assert config["Cmd"] == ["bash"]
    assert any(item.startswith("PATH=/usr/local/sbin:") for item in config["Env"])


def test_base_python_is_debians_own(engine, base):
    assert base.python == "/usr/bin/python3.11"
    assert engine.image(base.ref).labels[LABEL_PYTHON] == "/usr/bin/python3.11"
    dpkg_version = _sh(engine, base.ref, "dpkg-query -W -f '${Version}' python3.11")
    # Debian versions the interpreter 3.11.2 as 3.11.2-6+deb12uN.
    assert dpkg_version.split("-")[0] == base.python_version
    assert (
        _sh(engine, base.ref, f"{base.python} -c 'import platform; print(platform.python_version())'")
        == base.python_version
    )


def test_venv_and_pip_work_offline(engine, base):
    out = _sh(engine, base.ref, "python3 -m venv /tmp/v && /tmp/v/bin/python -m pip --version")
    assert out.startswith("pip ") and "/tmp/v/" in out


def test_apt_is_configured_like_a_debian_image(engine, base):
    sources = _sh(
        engine,
        base.ref,
        "cat /etc/apt/sources.list.d/debian.sources; test ! -e /etc/apt/sources.list && echo no-legacy-list",
    )
    assert "Suites: bookworm bookworm-updates" in sources and "Suites: bookworm-security" in sources
    assert sources.endswith("no-legacy-list")
    assert _sh(engine, base.ref, "ls /var/lib/apt/lists | grep -c _Packages || true") == "0"
    assert _sh(engine, base.ref, "ls /var/cache/apt/archives/*.deb 2>/dev/null | wc -l") == "0"
    assert engine.run(base.ref, ["/usr/sbin/policy-rc.d"]).exit_code == 101
    # The build host's name is not left in the image (a running container gets its own by bind mount).
    assert engine.read_file(SPEC.rootfs_ref, "/etc/hostname") == b""


def test_verify_an_image_without_python_is_a_clean_error(base, tmp_path):
    from envlock.lockfile import model as m
    from envlock.lockfile import write_lock
    from tests.conftest import run_envlock

    lock = tmp_path / "envlock.lock"
    write_lock(m.Lock(python=m.PythonSection(version="3.11.7")), lock, "test")
    result = run_envlock("verify", SPEC.rootfs_ref, str(lock))
    assert result.returncode == 2
    assert "there is no 'python' to run envlock's capture with" in result.stderr
    assert "--python PATH" in result.stderr and "Traceback" not in result.stderr
