"""A conda environment replayed exactly: real conda packages, rattler, pip on top, the real engine.

The channel (tests/conda_channel.py) holds a self-contained CPython 3.11.7
package, a compiled shared library and a noarch python package, indexed by
rattler and served on 127.0.0.1.  rattler solves and installs a prefix from
it, pip puts ``six`` (from PyPI) on top, ``envlock capture`` locks it, and
``envlock replay`` builds it on a minimal Debian (no python3, no libssl3), then
captures inside the image and compares.  A second channel serves a tampered
python archive under the same name: the build must fail naming the package and
both hashes, and no image may be tagged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from envlock import records
from envlock.lockfile import identity, load_lock, write_lock
from envlock.replay import engine as eng
from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image
from envlock.replay.progress import Progress
from tests.conda_fixtures import ChannelServer, conda_meta, copy_channel, make_prefix
from tests.conftest import run_envlock

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]

HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Unique per run: helpers and CI jobs share one engine; each run removes what it tagged.
_RUN = f"{os.getpid()}"
TAG = f"envlock-test/conda:e2e-{_RUN}"
TAMPERED_TAG = f"envlock-test/conda:tampered-{_RUN}"
GONE_TAG = f"envlock-test/conda:gone-{_RUN}"
MINBASE = "envlock/debian-minbase:bookworm"
SPECS = ["python ==3.11.7", "libenvlockdemo", "envlock-demo-noarch"]
PROBE = (
    "import sys, ssl, sqlite3, ctypes, json, six, envlock_demo_noarch, sysconfig\n"
    "lib = ctypes.CDLL(sys.prefix + '/lib/libenvlockdemo.so')\n"
    "maps = [line.split()[-1] for line in open('/proc/self/maps') if '.so' in line]\n"
    "print(json.dumps({'version': sys.version, 'prefix': sys.prefix, 'answer': lib.envlock_demo_answer(),"
    " 'six': six.__version__, 'noarch': envlock_demo_noarch.VERSION, 'openssl': ssl.OPENSSL_VERSION,"
    " 'sqlite': sqlite3.sqlite_version, 'config_prefix': sysconfig.get_config_var('prefix'),"
    " 'libs': sorted(set(m for m in maps if 'ssl' in m or 'sqlite' in m or 'ffi' in m or 'crypto' in m))}))\n"
)


@pytest.fixture(scope="module")
def engine(docker_client):
    return eng.DockerEngine(client=docker_client)


@pytest.fixture(scope="module")
def minbase(engine):
    # Building the replay base builds its debootstrap rootfs image too: a Debian without python3 or libssl3.
    ensure_base_image(engine, BaseImageSpec("bookworm", "3.11"), Progress())
    assert engine.image(MINBASE) is not None
    return MINBASE


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("conda")


@pytest.fixture(scope="module")
def channel(workdir):
    server = ChannelServer(copy_channel(workdir / "channel"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def source_env(channel, workdir):
    prefix = make_prefix(channel.url, workdir / "env", SPECS, workdir / "rattler-cache")
    python = prefix / "bin" / "python"
    # The pip layer on top: a real wheel from PyPI, installed by pip into the conda prefix.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "six==1.16.0"],
        check=True,
        capture_output=True,
    )
    return prefix


@pytest.fixture(scope="module")
def conda_lock(source_env, workdir):
    captured = workdir / "captured.lock"
    result = run_envlock("capture", "--python", str(source_env / "bin/python"), "-o", str(captured), "-q")
    assert result.returncode == 0, result.stderr
    lock = load_lock(captured).lock
    # Not what this test is about: this host's ~90 hand-installed OS packages.
    lock = records.replace(lock, os=records.replace(lock.os, packages=()))
    path = workdir / "envlock.lock"
    write_lock(identity.with_fingerprint(lock), path, "tests/docker/test_replay_conda.py")
    return path


def _probe(engine, image: str, python: str = "python") -> dict:
    ran = engine.run(image, [python, "-c", PROBE])
    assert ran.exit_code == 0, ran.stderr.decode()
    return json.loads(ran.stdout.decode())


@pytest.fixture(scope="module")
def replayed(conda_lock, minbase, workdir, engine):
    result = run_envlock(
        "replay",
        str(conda_lock),
        "--json",
        "-q",
        "--base-image",
        minbase,
        "--ca-cert",
        str(HOST_BUNDLE),
        "-t",
        TAG,
        cwd=workdir,
        timeout=1200,
    )
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    yield result.returncode, json.loads(result.stdout)
    if engine.image(TAG) is not None:
        engine.api.remove_image(TAG, force=True)


def test_lock_classifies_conda_and_pip_distributions(conda_lock):
    lock = load_lock(conda_lock).lock
    installers = {p.name: p.installer for p in lock.python.packages}
    assert installers == {"envlock-demo-noarch": "conda", "six": "pip"}
    assert {p.name for p in lock.conda.packages} == {"python", "libenvlockdemo", "envlock-demo-noarch"}


def test_conda_packages_identical_in_the_image(replayed, source_env, engine):
    code, report = replayed
    bad = [f for f in report["findings"] if f["status"] not in ("exact",) and f["severity"] != "info"]
    assert [f for f in bad if f["path"].startswith(("conda", "python"))] == []
    # The image's conda-meta, read with the engine, names the same archives by sha256 as the source prefix.
    source = conda_meta(source_env)
    for name, record in source.items():
        meta = engine.read_file(TAG, f"/opt/envlock/conda/conda-meta/{name}-{record['version']}-{record['build']}.json")
        assert meta is not None, name
        image_record = json.loads(meta)
        for key in ("name", "version", "build", "sha256"):
            assert image_record[key] == record[key], (name, key)


def test_image_python_is_the_conda_python_and_self_contained(replayed, source_env, engine):
    host = json.loads(
        subprocess.run([str(source_env / "bin/python"), "-c", PROBE], capture_output=True, check=True).stdout
    )
    image = _probe(engine, TAG)
    assert image["version"] == host["version"]
    assert image["prefix"] == image["config_prefix"] == "/opt/envlock/conda"  # text placeholders rewritten
    assert image["answer"] == 42
    assert (image["six"], image["noarch"]) == ("1.16.0", "1.0")
    assert image["libs"] and all(path.startswith("/opt/envlock/conda/lib/") for path in image["libs"])
    # The base has neither python3 nor libssl3: the prefix brought them.
    ran = engine.run(TAG, ["/bin/sh", "-c", "ls /usr/bin/python3 /usr/lib/x86_64-linux-gnu/libssl.so.3 2>&1; true"])
    assert ran.stdout.decode().count("No such file") == 2


def test_pip_package_byte_identical(replayed, source_env, engine):
    local = (source_env / "lib/python3.11/site-packages/six.py").read_bytes()
    assert engine.read_file(TAG, "/opt/envlock/conda/lib/python3.11/site-packages/six.py") == local


def test_tampered_archive_fails_the_build(conda_lock, workdir, minbase, engine):
    tampered = ChannelServer(copy_channel(workdir / "tampered"))
    try:
        lock = load_lock(conda_lock).lock
        python = next(p for p in lock.conda.packages if p.name == "python")
        archive = workdir / "tampered/linux-64" / python.url.rsplit("/", 1)[1]
        archive.write_bytes(archive.read_bytes() + b"\0")  # same name, other bytes
        import hashlib

        served = hashlib.sha256(archive.read_bytes()).hexdigest()
        result = run_envlock(
            "replay",
            str(conda_lock),
            "-q",
            "--base-image",
            minbase,
            "--conda-channel-url",
            tampered.url,
            "--ca-cert",
            str(HOST_BUNDLE),
            "-t",
            TAMPERED_TAG,
            cwd=workdir,
            timeout=1200,
        )
    finally:
        tampered.close()
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "HASH MISMATCH python 3.11.7" in output
    assert python.sha256.removeprefix("sha256:") in output and served in output
    assert engine.image(TAMPERED_TAG) is None


def test_package_gone_from_the_channel_is_a_finding_and_the_rest_builds(conda_lock, workdir, minbase, engine):
    """An archive deleted from the channel: asked before planning, a blocker naming it (exit 1), not a failed build."""
    gone = ChannelServer(copy_channel(workdir / "gone"))
    try:
        lock = load_lock(conda_lock).lock
        noarch = next(p for p in lock.conda.packages if p.name == "envlock-demo-noarch")
        filename = noarch.url.rsplit("/", 1)[1]
        (workdir / "gone/noarch" / filename).unlink()
        result = run_envlock(
            "replay",
            str(conda_lock),
            "--json",
            "-q",
            # A base with python3: the conda layer is left out, so the rest builds on the base's Python.
            "--base-image",
            "envlock/python:3.11-debian-bookworm",
            "--conda-channel-url",
            gone.url,
            "--ca-cert",
            str(HOST_BUNDLE),
            "-t",
            GONE_TAG,
            cwd=workdir,
            timeout=1200,
        )
    finally:
        gone.close()
    try:
        assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
        report = json.loads(result.stdout)
        (finding,) = [f for f in report["findings"] if f["path"] == "conda.packages[envlock-demo-noarch]"]
        assert finding["severity"] == "blocker", finding
        url = f"{gone.url}/noarch/{filename}"
        for part in ("envlock-demo-noarch 1.0 py_0", url, "HTTP 404", noarch.sha256.removeprefix("sha256:")):
            assert part in finding["message"], (part, finding)
        assert "--conda-channel-url" in finding["fix"] and "pack" in finding["fix"]
        # The rest was built: the pip layer's six is in the image.
        assert report["image_id"] and engine.image(GONE_TAG) is not None
        ran = engine.run(GONE_TAG, ["python", "-c", "import six; print(six.__version__)"])
        assert ran.stdout.decode().strip() == "1.16.0"
    finally:
        if engine.image(GONE_TAG) is not None:
            engine.api.remove_image(GONE_TAG, force=True)


# --- a conda-lock.yml from a paper's repository becomes an image ------------------------------------

IMPORTED_TAG = f"envlock-test/conda:imported-{_RUN}"
SIX_URL = (
    "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/"
    "six-1.16.0-py2.py3-none-any.whl"
)
SIX_SHA256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"  # PyPI's, for that file


def _conda_lock_document(source_env: Path, channel_url: str) -> dict:
    """The source prefix as conda-lock writes it (lockfile version 1), with six from PyPI by URL and sha256."""

    def entry() -> dict:  # a new mapping each time: PyYAML writes a shared one as an anchor, conda-lock never does
        return {"manager": "conda", "platform": "linux-64", "dependencies": {}, "category": "main", "optional": False}

    packages = [
        {**entry(), "name": name, "version": meta["version"], "url": meta["url"],
         "hash": {"md5": meta["md5"], "sha256": meta["sha256"]}}
        for name, meta in sorted(conda_meta(source_env).items())
    ]  # fmt: skip
    packages.append({**entry(), "manager": "pip", "name": "six", "version": "1.16.0", "url": SIX_URL,
                     "hash": {"sha256": SIX_SHA256}})  # fmt: skip
    metadata = {
        "content_hash": {"linux-64": "0" * 64},
        "channels": [{"url": channel_url, "used_env_vars": []}],
        "platforms": ["linux-64"],
        "sources": ["environment.yml"],
    }
    return {"version": 1, "metadata": metadata, "package": packages}


def test_an_imported_conda_lock_file_replays_into_an_image(source_env, channel, minbase, workdir, engine):
    import yaml

    conda_lock_yml = workdir / "conda-lock.yml"
    conda_lock_yml.write_text(yaml.safe_dump(_conda_lock_document(source_env, channel.url), sort_keys=False))
    imported = workdir / "imported.lock"
    result = run_envlock("import", "conda-lock", str(conda_lock_yml), "-o", str(imported))
    assert result.returncode == 0, result.stderr
    try:
        result = run_envlock(
            "replay", str(imported), "--json", "-q", "--base-image", minbase, "--ca-cert", str(HOST_BUNDLE),
            "-t", IMPORTED_TAG, cwd=workdir, timeout=1200,
        )  # fmt: skip
        assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
        report = json.loads(result.stdout)
        wrong = [f for f in report["findings"] if f["path"].startswith(("conda", "python.packages"))]
        assert [f for f in wrong if f["status"] != "exact" and f["severity"] != "info"] == []
        for name, meta in conda_meta(source_env).items():
            found = engine.read_file(
                IMPORTED_TAG, f"/opt/envlock/conda/conda-meta/{name}-{meta['version']}-{meta['build']}.json"
            )
            assert found is not None, name
            assert json.loads(found)["sha256"] == meta["sha256"], name
        image = _probe(engine, IMPORTED_TAG)
        assert (image["answer"], image["six"], image["noarch"]) == (42, "1.16.0", "1.0")
        assert (
            engine.read_file(IMPORTED_TAG, "/opt/envlock/conda/lib/python3.11/site-packages/six.py")
            == (source_env / "lib/python3.11/site-packages/six.py").read_bytes()
        )
    finally:
        if engine.image(IMPORTED_TAG) is not None:
            engine.api.remove_image(IMPORTED_TAG, force=True)


# --- the same environment packed, then replayed with no network at all ---------------------------------

PACK_BASE = f"envlock-test/conda-pack-base:{_RUN}"
PACK_TAG = f"envlock-test/conda:from-pack-{_RUN}"


def _no_proxy_env() -> dict:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PIP_NO_INDEX"] = "1"
    return env


def _envlock_offline(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    """envlock in a network namespace with no connectivity (the Docker socket still works there)."""
    return subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "envlock", *args],
        capture_output=True,
        text=True,
        env=_no_proxy_env(),
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def conda_pack(conda_lock, minbase, workdir, docker_client, engine):
    """The conda lock packed twice from a mirror of the channel that is stopped afterwards.

    The base is a private copy of the minimal Debian (its own image id, via a label), removed
    from the engine once packed: the replay's base can only come out of the pack.
    """
    import io

    dockerfile = io.BytesIO(f"FROM {minbase}\nLABEL org.envlock.test=conda-pack-{_RUN}\n".encode())
    docker_client.images.build(fileobj=dockerfile, tag=PACK_BASE, rm=True)
    mirror = ChannelServer(copy_channel(workdir / "pack-mirror"))
    first, second = workdir / "first.pack", workdir / "second.pack"
    try:
        for target in (first, second):
            result = run_envlock(
                "pack", str(conda_lock), "-o", str(target), "--base-image", PACK_BASE,
                "--conda-channel-url", mirror.url, "--ca-cert", str(HOST_BUNDLE), "--json",
                timeout=1200,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    finally:
        mirror.close()
        docker_client.images.remove(PACK_BASE, force=True)
    yield first, second
    for ref in (PACK_TAG,):
        if engine.image(ref) is not None:
            engine.api.remove_image(ref, force=True)
    # The base replay loaded from the pack and tagged: this run's, known by its label.
    for image in docker_client.images.list(name="envlock-pack-base"):
        if (image.labels or {}).get("org.envlock.test") == f"conda-pack-{_RUN}":
            for ref in image.tags:
                docker_client.images.remove(ref)


def test_conda_pack_is_deterministic_and_carries_the_conda_layer(conda_pack, conda_lock):
    first, second = conda_pack
    assert first.read_bytes() == second.read_bytes()
    checked = run_envlock("pack", "--check", str(first), "--json")
    assert checked.returncode == 0, checked.stderr
    members = {m["name"]: m for m in json.loads(checked.stdout)["members"]}
    lock = load_lock(conda_lock).lock
    for pkg in lock.conda.packages:
        member = members.get(f"conda/{pkg.url.rsplit('/', 1)[1]}")
        assert member is not None and member["kind"] == "conda", pkg.name
        assert member["sha256"] == pkg.sha256.removeprefix("sha256:"), pkg.name
    # The installer's own parts: the hash-pinned py-rattler wheel, and Debian's python3 for a base without one.
    rattler = [m for name, m in members.items() if name.startswith("tools/py_rattler-0.28.0-")]
    assert [m["sha256"] for m in rattler] == ["4f4ab1d34d5394e7ce130a86e59009c95ace4f5757d9c3af04de1351bcea47eb"]
    debs = {name.rsplit("/", 1)[1].split("_", 1)[0] for name in members if name.startswith("conda/installer/")}
    assert {"python3", "python3-venv", "python3.11-minimal"} <= debs, debs
    # Conda's own Python distribution is not a wheel in the pack; pip's six is.
    assert not any("envlock_demo_noarch" in name for name in members if name.startswith("wheels/"))
    assert any(name.startswith("wheels/six-1.16.0-") for name in members)
    shown = run_envlock("show", str(first))
    assert shown.returncode == 0 and "python" in shown.stdout and "3.11.7" in shown.stdout, shown.stdout[-2000:]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing")
def test_a_tampered_conda_member_is_refused_before_anything_is_loaded(conda_pack, docker_client, workdir):
    first, _ = conda_pack
    data = bytearray(first.read_bytes())
    name = b"conda/libenvlockdemo-1.0.0-h_envlock_0.tar.bz2"
    header = data.index(name + b"\0")
    data[header + 512 + 100] ^= 0x01  # a byte of the archive's data
    tampered = workdir / "tampered.pack"
    tampered.write_bytes(bytes(data))
    before = {image.id for image in docker_client.images.list(all=True)}
    result = _envlock_offline("replay", str(tampered), "--json", "-t", PACK_TAG)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"pack member '{name.decode()}'" in result.stderr and "Traceback" not in result.stderr
    assert {image.id for image in docker_client.images.list(all=True)} == before
    assert docker_client.images.list(name=PACK_TAG) == []


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing")
def test_conda_pack_replays_with_no_network_at_all(conda_pack, source_env, engine):
    first, _ = conda_pack
    assert engine.image(PACK_BASE) is None  # only the pack has the base now
    result = _envlock_offline("replay", str(first), "--json", "-q", "-t", PACK_TAG)
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    assert report.get("image_id"), result.stderr[-3000:] + result.stdout[-3000:]
    bad = [f for f in report["findings"] if f["status"] != "exact" and f["severity"] != "info"]
    assert [f for f in bad if f["path"].startswith(("conda", "python"))] == [], bad
    # Every conda package identical (name, version, build, sha256), read from the image's conda-meta.
    for name, record in conda_meta(source_env).items():
        meta = engine.read_file(
            PACK_TAG, f"/opt/envlock/conda/conda-meta/{name}-{record['version']}-{record['build']}.json"
        )
        assert meta is not None, name
        image_record = json.loads(meta)
        for key in ("name", "version", "build", "sha256"):
            assert image_record[key] == record[key], (name, key)
    local = (source_env / "lib/python3.11/site-packages/six.py").read_bytes()
    assert engine.read_file(PACK_TAG, "/opt/envlock/conda/lib/python3.11/site-packages/six.py") == local
    probe = _probe(engine, PACK_TAG)
    assert probe["answer"] == 42 and probe["prefix"] == "/opt/envlock/conda"
    # The installer's Debian python3 stayed in the build stage.
    ran = engine.run(PACK_TAG, ["/bin/sh", "-c", "ls /usr/bin/python3 2>&1; true"])
    assert "No such file" in ran.stdout.decode()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing")
def test_conda_pack_into_venv_replays_the_pip_layer_as_online(conda_pack, workdir):
    """As online `--into-venv` does for a conda lock: pip's packages into the venv, the conda layer reported."""
    first, _ = conda_pack
    venv = workdir / "from-pack-venv"
    result = _envlock_offline("replay", str(first), "--into-venv", str(venv), "--json")
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    six = [f for f in report["findings"] if f["path"] == "python.packages[six]"]
    assert all(f["status"] == "exact" for f in six), six
    assert any(f["layer"] == "conda" for f in report["findings"]), report["findings"]
    shown = subprocess.run([str(venv / "bin/python"), "-c", "import six; print(six.__version__)"], capture_output=True)
    assert shown.stdout.decode().strip() == "1.16.0", shown.stderr
