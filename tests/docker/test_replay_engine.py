"""The Docker adapter against the real engine, with small hand-written Dockerfiles.

Both builders (the SDK's legacy builder and BuildKit through a docker CLI)
build the same Dockerfile on the base image that provisioning builds from the
Debian mirror; a BuildKit secret is readable during the build and in no layer
of the image; a failing build is an ``EngineError`` carrying the build's last
lines; verification containers have no network.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import uuid

import pytest

from envlock.commands.progress import TerminalDisplay
from envlock.errors import EngineError
from envlock.replay import buildkit_cli
from envlock.replay import engine as eng
from envlock.replay.context import ContextFile
from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image
from envlock.replay.progress import Progress

pytestmark = pytest.mark.docker

BASE = BaseImageSpec("bookworm", "3.11")


@pytest.fixture(scope="module")
def engine(docker_client):
    return eng.DockerEngine(client=docker_client)


@pytest.fixture(scope="module")
def base(engine):
    """The Debian-mirror base (made by scripts/provision.d/docker-base.sh; built here if missing)."""
    return ensure_base_image(engine, BASE, Progress())


def _dockerfile(body: str) -> ContextFile:
    return ContextFile("Dockerfile", f"FROM {BASE.ref}\n{body}\n".encode())


def _builders(engine) -> list[eng.BuilderChoice]:
    choices = [engine.choose_builder("sdk")]
    auto = engine.choose_builder("auto")
    if auto.builder == "buildkit":
        choices.append(auto)
    elif os.environ.get("ENVLOCK_REQUIRE_DOCKER") == "1":
        pytest.fail("CI installs docker.io, whose 20.10 CLI builds with BuildKit; none was found")
    return choices


def scan_saved_image(engine, image: str, needle: bytes) -> tuple[int, list[str]]:
    """Search every file of `docker save IMAGE` (config, manifest, each layer tar) for ``needle``.

    Returns (number of layer tars scanned, names of the files holding it).
    Layer tars are stored uncompressed in the save stream, so a byte search
    inside each one finds any file content in any layer.
    """
    stream = _Chunks(engine.save(image))
    layers, hits = 0, []
    with tarfile.open(fileobj=stream, mode="r|") as saved:
        for member in saved:
            if not member.isfile():
                continue
            if member.name.endswith("layer.tar"):
                layers += 1
            handle = saved.extractfile(member)
            tail = b""
            while True:
                block = handle.read(1 << 20)
                if not block:
                    break
                if needle in tail + block:
                    hits.append(member.name)
                    break
                tail = block[-len(needle) :]
    return layers, hits


class _Chunks(io.RawIOBase):
    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self):
        return True

    def readinto(self, target):
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def test_both_builders_build_the_same_dockerfile(engine, base):
    marker = uuid.uuid4().hex
    body = f'RUN ["/bin/sh", "-c", "echo {marker} > /built-by-test"]\nLABEL org.envlock.test="{marker}"'
    for choice in _builders(engine):
        progress = Progress(TerminalDisplay(stream=io.StringIO(), live=False))
        result = engine.build(
            eng.BuildRequest(files=(_dockerfile(body),), tag=f"envlock-test/engine:{choice.builder}"), choice, progress
        )
        assert result.builder == choice.builder
        assert result.image_id.startswith("sha256:")
        assert progress.lines, "the build's output was not streamed"
        image = engine.image(f"envlock-test/engine:{choice.builder}")
        assert image.id == result.image_id
        assert image.labels["org.envlock.test"] == marker
        ran = engine.run(result.image_id, ["cat", "/built-by-test"])
        assert (ran.exit_code, ran.stdout.decode().strip()) == (0, marker)


def test_buildkit_secret_is_used_during_the_build_and_in_no_layer(engine, base, tmp_path):
    choice = engine.choose_builder("auto")
    if choice.builder != "buildkit":
        pytest.skip("no BuildKit-capable docker CLI here")
    canary = f"envlock-canary-{uuid.uuid4().hex}".encode()
    secret = tmp_path / "ca.pem"
    secret.write_bytes(b"# not a real certificate\n" + canary + b"\n")
    body = (
        "RUN --mount=type=secret,id=envlock-ca,target=/run/secrets/envlock-ca "
        '["/bin/sh", "-c", "sha256sum /run/secrets/envlock-ca | cut -d\' \' -f1 > /secret.sha256"]'
    )
    result = engine.build(
        # no_cache: a secret's content is not part of BuildKit's cache key, so
        # a cached step from an earlier run would have hashed an older secret.
        eng.BuildRequest(
            files=(_dockerfile(body),), tag="envlock-test/secret:1", secrets={"envlock-ca": str(secret)}, no_cache=True
        ),
        choice,
        Progress(TerminalDisplay(stream=io.StringIO(), live=False)),
    )
    seen = engine.run(result.image_id, ["cat", "/secret.sha256"]).stdout.decode().strip()
    assert seen == hashlib.sha256(secret.read_bytes()).hexdigest()  # the build read it
    layers, hits = scan_saved_image(engine, "envlock-test/secret:1", canary)
    assert layers >= 2
    assert hits == []


@pytest.mark.parametrize("builder", ["sdk", "buildkit"])
def test_a_failing_build_is_an_engine_error_with_the_last_lines(engine, base, builder):
    choice = engine.choose_builder("auto") if builder == "buildkit" else engine.choose_builder("sdk")
    if choice.builder != builder:
        pytest.skip("no BuildKit-capable docker CLI here")
    marker = uuid.uuid4().hex
    body = f'RUN ["/bin/sh", "-c", "echo failing-{marker}; exit 3"]'
    with pytest.raises(EngineError) as caught:
        engine.build(
            eng.BuildRequest(files=(_dockerfile(body),)),
            choice,
            Progress(TerminalDisplay(stream=io.StringIO(), live=False)),
        )
    assert "image build failed" in caught.value.message
    assert f"failing-{marker}" in caught.value.message


def test_the_first_cli_on_path_is_not_trusted_blindly(engine):
    """This machine's `docker` on PATH is a 28.x client without buildx; Debian's 20.10 one is found anyway."""
    from envlock import proc

    found = []
    for path in buildkit_cli.candidate_clis():
        version = proc.run([path, "version", "--format", "{{.Client.Version}}"], timeout=20)
        buildx = proc.run([path, "buildx", "version"], timeout=20)
        if version is None or not buildkit_cli.parse_client_version(version.stdout):
            continue
        found.append(
            (
                path,
                version.stdout.strip(),
                buildkit_cli.buildkit_mode(version.stdout.strip(), buildx is not None and buildx.returncode == 0),
            )
        )
    assert found, "no docker CLI at all"
    chosen = buildkit_cli.find_buildkit_cli()
    capable = [item for item in found if item[2]]
    if not capable:
        assert chosen is None
        return
    # The chosen one is the first capable candidate, whatever comes before it.
    assert chosen is not None and (chosen.path, chosen.client_version, chosen.mode) == capable[0]


def test_run_gives_files_and_no_network(engine, base):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"print('probe ok')\n"
        info = tarfile.TarInfo("opt/probe/hello.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    ran = engine.run(base.ref, ["python3", "/opt/probe/hello.py"], files=buffer.getvalue())
    assert (ran.exit_code, ran.stdout) == (0, b"probe ok\n")
    interfaces = engine.run(base.ref, ["ls", "/sys/class/net"]).stdout.decode().split()
    assert interfaces == ["lo"]
    # The file went into the throwaway container, not the image.
    assert engine.run(base.ref, ["ls", "/opt/probe"]).exit_code != 0


def test_read_file_follows_links_and_reports_absence(engine, base):
    text = engine.read_file(base.ref, "/etc/os-release")  # a link to ../usr/lib/os-release
    assert b"VERSION_CODENAME=bookworm" in text
    assert engine.read_file(base.ref, "/no/such/file") is None


def test_a_missing_image_cannot_be_pulled_here_and_says_so_quickly(engine):
    assert engine.pull(f"envlock-test/never-published-{uuid.uuid4().hex[:8]}:1", timeout=60) is None
    assert engine.image("envlock-test/never-published:1") is None
