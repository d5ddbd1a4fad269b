"""The base image by digest, against a real OCI registry (Debian's docker-registry) on 127.0.0.1 whose tag is re-pointed.

``envlock pin --base-image`` records the digest; after the tag moves, replay
still starts from the locked digest; once the registry has lost those bytes,
replay builds nothing, exits 1 and lists what would work, naming what the tag
points to now instead of using it.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from envlock.lockfile import Lock, PythonSection, parse_lock
from envlock.lockfile.write import write_lock
from tests.conftest import run_envlock

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BASE = "envlock/python:3.11-debian-bookworm"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    binary = shutil.which("docker-registry")
    if binary is None:
        if os.environ.get("ENVLOCK_REQUIRE_DOCKER") == "1":
            pytest.fail("docker-registry is not installed (.ci/run installs Debian's docker-registry package)")
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    server = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/v2/", timeout=2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        server.kill()
        pytest.fail("docker-registry did not start")
    yield f"127.0.0.1:{port}", url
    server.terminate()
    server.wait(timeout=30)


def _push(docker_client, ref: str) -> str:
    repo, tag = ref.rsplit(":", 1)
    for line in docker_client.api.push(repo, tag=tag, stream=True, decode=True):
        assert "error" not in line, line
    digests = docker_client.api.inspect_image(ref)["RepoDigests"]
    return next(d.split("@", 1)[1] for d in digests if d.startswith(repo + "@"))


def test_replay_uses_the_locked_digest_and_never_a_re_pointed_tag(docker_client, registry, tmp_path):
    from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image
    from envlock.replay.engine import DockerEngine
    from envlock.replay.progress import Progress

    host, url = registry
    ensure_base_image(DockerEngine(client=docker_client), BaseImageSpec("bookworm", "3.11"), Progress())
    repo = f"{host}/envlock-artifacts/base"
    docker_client.api.tag(BASE, repo, "1")
    created = [f"{repo}:1"]
    try:
        first = _push(docker_client, f"{repo}:1")
        lock_path = tmp_path / "envlock.lock"
        write_lock(Lock(python=PythonSection(version="3.11.2")), str(lock_path), "test")
        pinned = run_envlock(
            "pin", str(lock_path), "--base-image", f"{repo}:1", "--snapshot-url", "http://127.0.0.1:9", "--json"
        )
        assert pinned.returncode == 0, pinned.stderr + pinned.stdout
        base = parse_lock(lock_path.read_bytes()).lock.base_image
        assert (base.reference, base.digest) == (f"{repo}:1", first)

        # The tag moves to other bytes.
        dockerfile = io.BytesIO(f"FROM {repo}:1\nLABEL org.envlock.test=re-pointed\n".encode())
        docker_client.images.build(fileobj=dockerfile, tag=f"{repo}:1", rm=True)
        second = _push(docker_client, f"{repo}:1")
        assert second != first

        dry = run_envlock("replay", str(lock_path), "--dry-run", "-q")
        assert dry.returncode == 0, dry.stderr
        froms = [line for line in dry.stdout.splitlines() if line.startswith("FROM ")]
        assert froms and all(f"{repo}@{first}" in line for line in froms), froms
        assert f"{repo}:1" not in dry.stdout

        # The registry loses the locked bytes, and the engine forgets them.
        request = urllib.request.Request(f"{url}/v2/envlock-artifacts/base/manifests/{first}", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()
        docker_client.api.remove_image(f"{repo}@{first}")
        images_before = {image.id for image in docker_client.images.list()}
        gone = run_envlock("replay", str(lock_path), "-q", "-t", "envlock-artifacts-test/base-digest:1")
        assert gone.returncode == 1, gone.stderr + gone.stdout
        assert "manifest unknown" in gone.stderr and first in gone.stderr
        assert second in gone.stderr and f"--base-image {repo}:1" in gone.stderr  # what would work, named
        assert "Traceback" not in gone.stderr
        assert not docker_client.images.list(name="envlock-artifacts-test/base-digest")
        new_images = {image.id for image in docker_client.images.list()} - images_before
        assert new_images <= {docker_client.api.inspect_image(f"{repo}:1")["Id"]}  # only the tag check pulled
    finally:
        for ref in created:
            try:
                docker_client.api.remove_image(ref)
            except Exception:
                pass
        for image in docker_client.images.list(filters={"label": "org.envlock.test=re-pointed"}):
            docker_client.images.remove(image.id, force=True)
