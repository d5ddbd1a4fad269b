"""Months later, the OS layer: a locked version the mirror dropped comes from the snapshot archive of its time.

The world is served on 127.0.0.1 by Python's ``http.server`` and changed by
the test:

* a snapshot archive in snapshot.debian.org's URL layout
  (``/archive/debian/<YYYYMMDDTHHMMSSZ>/dists/bookworm/...``) holding a real
  ``.deb`` (``apt-get download tree``) under its pool path, with Debian's own
  signed ``InRelease`` and ``Packages.xz`` for bookworm, so apt inside the
  image checks it exactly as it checks the real archive (a locally built
  index would need a signing key the image does not trust, and replay never
  writes ``trusted=yes``);
* a "mirror that has moved on": a site mirror (``--os-mirror``) whose signed
  indexes no longer list the locked version (it serves bookworm-updates only).

Replay must install ``tree`` at its exact locked version from the snapshot
layout, and a version that neither has must not be installed at all (exact or
a finding), on the real engine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import lzma
import subprocess
import threading
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from envlock.findings import EXACT, NOT_REPRODUCIBLE
from envlock.lockfile import Lock, OsPackage, OsSection, PythonSection
from envlock.replay.engine import DockerEngine
from envlock.replay.os_report import os_report_findings
from envlock.replay.plan import OS_REPORT_PATH, ReplayOptions, plan_replay
from envlock.replay.progress import Progress
from envlock.replay.render import render_context
from envlock.replay.snapshot import ArchiveOptions

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]

MIRROR = "http://deb.debian.org/debian"
STAMP = "20260601T120000Z"
CAPTURED_AT = "2026-06-01T12:00:00Z"
TAG = "envlock-artifacts-test/os-snapshot:1"


def _fetch(url: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=120) as answer:
        target.write_bytes(answer.read())
    return target


def _publish_suite(root: Path, suite: str) -> bytes:
    """Copy a suite's signed InRelease and amd64 Packages.xz from the mirror to ``root``, by path and by hash."""
    dists = root / "dists" / suite
    _fetch(f"{MIRROR}/dists/{suite}/InRelease", dists / "InRelease")
    packages = _fetch(f"{MIRROR}/dists/{suite}/main/binary-amd64/Packages.xz", dists / "main/binary-amd64/Packages.xz")
    digest = hashlib.sha256(packages.read_bytes()).hexdigest()
    by_hash = dists / "main/binary-amd64/by-hash/SHA256" / digest
    by_hash.parent.mkdir(parents=True, exist_ok=True)
    by_hash.write_bytes(packages.read_bytes())
    return lzma.decompress(packages.read_bytes())


def _stanza(index: bytes, name: str) -> dict[str, str]:
    for block in index.decode("utf-8", "replace").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Package") == name:
            return fields
    raise AssertionError(f"{name} is not in the index")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("os-world")
    snapshot = root / "archive" / "debian" / STAMP
    index = _publish_suite(snapshot, "bookworm")
    tree = _stanza(index, "tree")
    debs = root / "download"
    debs.mkdir()
    subprocess.run(
        ["apt-get", "download", f"tree={tree['Version']}"], cwd=debs, check=True, capture_output=True, timeout=300
    )
    (deb,) = debs.glob("tree_*.deb")
    assert hashlib.sha256(deb.read_bytes()).hexdigest() == tree["SHA256"]  # the real, signed file
    pool = snapshot / tree["Filename"]
    pool.parent.mkdir(parents=True, exist_ok=True)
    pool.write_bytes(deb.read_bytes())
    # The mirror moved on: its signed indexes no longer list tree (bookworm-updates only).
    updates = _publish_suite(root / "debian", "bookworm-updates")
    assert b"\nPackage: tree\n" not in updates
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tree["Version"], requests
    server.shutdown()
    server.server_close()


def test_a_version_the_mirror_dropped_is_installed_from_the_snapshot_layout(docker_client, world, tmp_path):
    from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image

    url, tree_version, requests = world
    lock = Lock(
        created_at=CAPTURED_AT,
        python=PythonSection(version="3.11.2"),
        os=OsSection(
            id="debian",
            version_id="12",
            codename="bookworm",
            package_manager="dpkg",
            snapshot_time=CAPTURED_AT,
            packages=(
                OsPackage("tree", tree_version, "amd64", manual=True),
                OsPackage("jq", "1.6-2.1", "amd64", manual=True),  # in neither: a finding, not another jq
            ),
        ),
    )
    ensure_base_image(DockerEngine(client=docker_client), BaseImageSpec("bookworm", "3.11"), Progress())
    options = ReplayOptions(base_source="debootstrap", archive=ArchiveOptions(mirror=f"{url}/debian", snapshot=url))
    context = render_context(plan_replay(lock, options))
    for path, data in context.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    docker_client.images.build(path=str(tmp_path), tag=TAG, rm=True, network_mode="host")
    try:
        raw = docker_client.containers.run(TAG, ["cat", OS_REPORT_PATH], remove=True)
        listed = docker_client.containers.run(
            TAG, ["dpkg-query", "-W", "-f", "${Package}\\t${Version}\\t${db:Status-Status}\\n"], remove=True
        ).decode()
        sources = docker_client.containers.run(TAG, ["ls", "/etc/apt/sources.list.d"], remove=True).decode()
    finally:
        docker_client.images.remove(TAG, force=True)
    installed = {}
    for line in listed.strip().splitlines():
        name, version, status = line.split("\t")
        if status == "installed":
            installed[name] = version
    report = {p["name"]: p for p in json.loads(raw)["packages"]}
    assert installed.get("tree") == tree_version
    assert "jq" not in installed
    assert report["tree"]["status"] == "exact" and report["tree"]["origin"] == "snapshot"
    assert report["jq"]["status"] == "missing"
    # the .deb came from the snapshot layout at the lock's time, and the image keeps no pointer to it
    assert f"/archive/debian/{STAMP}/pool/main/t/tree/tree_{tree_version}_amd64.deb" in requests
    assert "envlock-snapshot.list" not in sources
    findings = {f.path: f for f in os_report_findings(raw, "bookworm")}
    assert findings["os.packages[tree]"].status == EXACT
    assert "snapshot archive" in findings["os.packages[tree]"].message
    assert findings["os.packages[jq]"].status == NOT_REPRODUCIBLE
