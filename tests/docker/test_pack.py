"""`envlock pack` end to end on the real engine: deterministic bytes, tampering refused before the image loads,
and a replay with zero network (build network `none`, envlock itself in `unshare -n`, no proxy settings).

The lock holds real wheels (six, pure; PyYAML, compiled) and one hand-installed
OS package (tree) on envlock's Debian base.  The base image packed is a private
copy (its own image id, via a label), removed from the engine before replay, so
the image the replay starts from can only have come out of the pack.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from envlock.lockfile import Lock, OsPackage, OsSection, PythonPackage, PythonSection
from envlock.lockfile.write import write_lock

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]

BASE = "envlock/python:3.11-debian-bookworm"
PRIVATE_BASE = "envlock-artifacts-test/pack-base:1"
CA = "/etc/ssl/certs/ca-certificates.crt"


def _envlock(*args, env=None, prefix=(), timeout=1200):
    full = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} if env is None else env
    return subprocess.run(
        [*prefix, sys.executable, "-m", "envlock", *args], capture_output=True, text=True, env=full, timeout=timeout
    )


@pytest.fixture(scope="module")
def packed(docker_client, tmp_path_factory):
    from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image
    from envlock.replay.engine import DockerEngine
    from envlock.replay.progress import Progress

    ensure_base_image(DockerEngine(client=docker_client), BaseImageSpec("bookworm", "3.11"), Progress())
    dockerfile = io.BytesIO(f"FROM {BASE}\nLABEL org.envlock.test=artifacts-pack\n".encode())
    docker_client.images.build(fileobj=dockerfile, tag=PRIVATE_BASE, rm=True)
    work = tmp_path_factory.mktemp("pack")
    lock_path = work / "envlock.lock"
    write_lock(
        Lock(
            created_at="2026-06-01T12:00:00Z",
            python=PythonSection(
                implementation="cpython",
                version="3.11.2",
                abi_tag="cp311",
                platform_tag="manylinux_2_36_x86_64",
                environment_kind="venv",
                packages=(
                    PythonPackage(name="pyyaml", version="6.0.1", installer="pip", requested=True),
                    PythonPackage(name="six", version="1.16.0", installer="pip", requested=True),
                ),
            ),
            os=OsSection(
                id="debian",
                version_id="12",
                codename="bookworm",
                package_manager="dpkg",
                packages=(OsPackage("tree", "2.1.0-1", "amd64", manual=True),),
            ),
        ),
        str(lock_path),
        "test",
    )
    first, second = work / "first.pack", work / "second.pack"
    env = dict(os.environ)
    for target in (first, second):
        result = _envlock(
            "pack", str(lock_path), "-o", str(target), "--base-image", PRIVATE_BASE, "--ca-cert", CA, env=env
        )
        assert result.returncode == 0, result.stderr + result.stdout
    yield work, lock_path, first, second
    for ref in (PRIVATE_BASE,):
        try:
            docker_client.images.remove(ref, force=True)
        except Exception:
            pass


def test_two_packs_of_one_lock_are_byte_identical(packed):
    _, _, first, second = packed
    assert first.read_bytes() == second.read_bytes()


def test_pack_check_and_show_read_the_pack_by_content(packed, tmp_path):
    _, _, first, _ = packed
    renamed = tmp_path / "paper-supplement.bin"
    shutil.copyfile(first, renamed)
    checked = _envlock("pack", "--check", str(renamed), "--json")
    assert checked.returncode == 0, checked.stderr
    data = json.loads(checked.stdout)
    kinds = {m["kind"] for m in data["members"]}
    assert {"wheel", "deb", "image", "meta"} <= kinds
    names = {m["name"] for m in data["members"]}
    assert any(n.startswith("wheels/PyYAML-6.0.1-cp311") for n in names), names
    assert any(n.startswith("debs/tree_2.1.0-1") for n in names), names
    # envlock itself and its dependencies, so the pack can verify its own replay with no index
    assert any(n.startswith("tools/envlock-") for n in names) and any(n.startswith("tools/docker-") for n in names)
    shown = _envlock("show", str(renamed))
    assert shown.returncode == 0 and "3.11.2" in shown.stdout, shown.stdout


def test_a_tampered_pack_is_refused_before_its_base_image_is_loaded(docker_client, packed, tmp_path):
    _, _, first, _ = packed
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0x01  # a byte inside the image's layers
    tampered = tmp_path / "tampered.pack"
    tampered.write_bytes(bytes(data))
    before = {image.id for image in docker_client.images.list(all=True)}
    result = _envlock("replay", str(tampered), "--json")
    assert result.returncode == 2, result.stderr
    assert "pack member 'image/base.tar'" in result.stderr and "Traceback" not in result.stderr
    assert not docker_client.images.list(name="envlock-pack-base")
    assert {image.id for image in docker_client.images.list(all=True)} == before


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing")
def test_into_venv_from_the_pack_with_no_network(packed, tmp_path):
    _, _, first, _ = packed
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    venv = tmp_path / "venv"
    result = _envlock("replay", str(first), "--into-venv", str(venv), "--json", env=env, prefix=("unshare", "-n"))
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    locked = [f for f in report["findings"] if f["path"] in ("python.packages[pyyaml]", "python.packages[six]")]
    assert all(f["status"] == "exact" for f in locked), locked
    versions = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import yaml, six; print(yaml.__version__, six.__version__)"],
        capture_output=True,
        text=True,
    )
    assert versions.stdout.split() == ["6.0.1", "1.16.0"], versions.stderr


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing")
def test_replay_from_the_pack_with_no_network_at_all(docker_client, packed):
    _, _, first, _ = packed
    docker_client.images.remove(PRIVATE_BASE, force=True)  # only the pack has it now
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PIP_NO_INDEX"] = "1"
    tag = "envlock-artifacts-test/pack-replay:1"
    try:
        result = _envlock("replay", str(first), "--json", "-q", "-t", tag, env=env, prefix=("unshare", "-n"))
        report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
        assert report.get("image_id"), result.stderr[-3000:] + result.stdout[-3000:]
        found = {f["path"]: f for f in report["findings"]}
        for name in ("pyyaml", "six"):
            place = f"python.packages[{name}]"
            assert place not in found or found[place]["status"] == "exact", found.get(place)
        assert found["os.packages[tree]"]["status"] == "exact", found["os.packages[tree]"]
        versions = docker_client.containers.run(
            tag, ["python", "-c", "import yaml, six; print(yaml.__version__, six.__version__)"], remove=True
        )
        assert versions.decode().split() == ["6.0.1", "1.16.0"]
    finally:
        for ref in (tag,):
            try:
                docker_client.images.remove(ref, force=True)
            except Exception:
                pass
        for image in docker_client.images.list(name="envlock-pack-base"):
            for ref in image.tags:
                docker_client.images.remove(ref)


def test_into_venv_from_the_pack_installs_its_own_wheels(packed, tmp_path):
    """`envlock replay PACK --into-venv DIR`: the Python layer from the pack's wheels, no index asked."""
    _work, _lock_path, first, _second = packed
    target = tmp_path / "venv"
    result = _envlock("replay", str(first), "--into-venv", str(target), "--json")
    # 1: this host's interpreter is 3.11.7 where the lock has 3.11.2, a numeric finding; the packages are exact.
    assert result.returncode in (0, 1), result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.returncode
    locked = ("python.packages[pyyaml]", "python.packages[six]")
    differing = [f for f in report["findings"] if f.get("path") in locked and f["status"] != "exact"]
    assert differing == []
    python = target / "bin" / "python"
    shown = subprocess.run(
        [str(python), "-c", "import six, yaml; print(six.__version__, yaml.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.split() == ["1.16.0", "6.0.1"]
