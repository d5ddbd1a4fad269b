"""The OS package step of a rendered replay context, built for real on the Debian-mirror base.

curl 7.88.1-10+deb12u5 is an older bookworm version whose own dependency
(libcurl4) must be installed at the same version: apt alone refuses it
("curl : Depends: libcurl4 (= 7.88.1-10+deb12u5) but 7.88.1-10+deb12u15 is to
be installed"), the script resolves it.  jq 1.6-2.1 is bookworm's release
version, which the mirror no longer has, nor the snapshot archive (a closed
loopback port here): the build must still succeed, jq must not be installed at
another version, and the report must say so.
"""

from __future__ import annotations

import json

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

LOCK = Lock(
    python=PythonSection(version="3.11.2"),
    os=OsSection(
        id="debian",
        version_id="12",
        codename="bookworm",
        package_manager="dpkg",
        packages=(
            OsPackage("curl", "7.88.1-10+deb12u5", "amd64", manual=True),
            OsPackage("jq", "1.6-2.1", "amd64", manual=True),
        ),
    ),
)


def test_os_packages_exact_where_the_mirror_has_them_and_reported_where_not(docker_client, tmp_path):
    from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image

    ensure_base_image(DockerEngine(client=docker_client), BaseImageSpec("bookworm", "3.11"), Progress())
    options = ReplayOptions(base_source="debootstrap", archive=ArchiveOptions(snapshot="http://127.0.0.1:9"))
    context = render_context(plan_replay(LOCK, options))
    for path, data in context.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    tag = "envlock-test/replay-os:1"
    docker_client.images.build(path=str(tmp_path), tag=tag, rm=True, network_mode="host")
    try:
        raw = docker_client.containers.run(tag, ["cat", OS_REPORT_PATH], remove=True)
        versions = docker_client.containers.run(
            tag,
            ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n"],
            remove=True,
        ).decode()
    finally:
        docker_client.images.remove(tag, force=True)
    report = {p["name"]: p for p in json.loads(raw)["packages"]}
    installed = {}
    for line in versions.strip().splitlines():
        name, version, status = line.split("\t")
        if status == "installed":
            installed[name] = version
    curl = report["curl"]
    if "7.88.1-10+deb12u5" in curl["available"]:
        # the mirror has it, so it is installed exactly, its exact dependency with it
        assert curl["status"] == "exact"
        assert installed["curl"] == "7.88.1-10+deb12u5"
        assert installed["libcurl4"] == "7.88.1-10+deb12u5"
    jq = report["jq"]
    assert "1.6-2.1" not in jq["available"]
    # exact or a finding: the mirror's newer jq is not installed in its place
    assert jq["status"] == "missing" and jq["installed"] is None and "jq" not in installed
    findings = {f.path: f for f in os_report_findings(raw, "bookworm")}
    assert findings["os.packages[jq]"].status == NOT_REPRODUCIBLE
    assert "the mirror no longer has it" in findings["os.packages[jq]"].message  # no time anchor: no snapshot
    assert "envlock pin" in findings["os.packages[jq]"].fix
    if curl["status"] == "exact":
        assert findings["os.packages[curl]"].status == EXACT
