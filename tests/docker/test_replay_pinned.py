"""Months later, byte for byte: capture + pin, the index moves, replay still installs the locked bytes.

Real parts: real PyPI wheels (six, idna, MarkupSafe; fetched once by
scripts/provision.d/30-test-wheels.sh) served from a PEP 503/691 index on
127.0.0.1 (tests/loopback_index.py), a venv installed from it by pip, the real
Docker engine.  After the lock is pinned the index gains a build-tagged
re-upload of six (pip would prefer it), loses idna's file and yanks
MarkupSafe.  Replay must install the pinned six and MarkupSafe files, prove
with verify that their bytes are identical, and name idna's file with exit 1.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from envlock import records
from envlock.lockfile import identity, load_lock, write_lock
from tests.conftest import run_envlock
from tests.loopback_index import LoopbackIndex, build_tagged_copy, real_wheel, sha256_of
from tests.unit.test_pin import IDNA, MARKUPSAFE, SIX, _venv_from_index

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _wheel(name: str) -> Path:
    try:
        return real_wheel(name)
    except FileNotFoundError as exc:
        if os.environ.get("CI") or os.environ.get("ENVLOCK_REQUIRE_DOCKER") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def test_pinned_lock_replays_identical_bytes_after_the_index_moved(docker_client, tmp_path: Path) -> None:
    from envlock.replay.debootstrap_base import BaseImageSpec, ensure_base_image
    from envlock.replay.engine import DockerEngine
    from envlock.replay.progress import Progress

    engine = DockerEngine(client=docker_client)
    ensure_base_image(engine, BaseImageSpec("bookworm", "3.11"), Progress())
    six, idna, markupsafe = _wheel(SIX), _wheel(IDNA), _wheel(MARKUPSAFE)
    env = {"ENVLOCK_CACHE_DIR": str(tmp_path / "envlock-cache")}
    tag = f"envlock-test/pin:{uuid.uuid4().hex[:12]}"
    lock_path = tmp_path / "envlock.lock"
    with LoopbackIndex(tmp_path / "index") as index:
        for wheel in (six, idna, markupsafe):
            index.add(wheel)
        python = _venv_from_index(tmp_path / "venv", index.url, "six==1.16.0", "idna==3.7", "markupsafe==2.1.5")
        captured = run_envlock(
            "capture", "--python", str(python), "-o", str(lock_path), "--pin", "--index-url", index.url, env=env
        )
        assert captured.returncode == 0, captured.stdout + captured.stderr
        # The hand-installed OS packages of this host are not what this test is about (minutes of apt).
        lock = load_lock(lock_path).lock
        if lock.os is not None:
            lock = records.replace(
                lock, os=records.replace(lock.os, packages=tuple(p for p in lock.os.packages if not p.manual))
            )
        write_lock(identity.with_fingerprint(lock), lock_path, "tests/docker/test_replay_pinned.py")

        # Months later.
        index.add(build_tagged_copy(six, "1", tmp_path, "six.py"))
        index.remove(IDNA)
        index.yank(MARKUPSAFE, "withdrawn: broken wheel metadata")
        try:
            replayed = run_envlock("replay", str(lock_path), "--json", "-q", "-t", tag, env=env, timeout=900)
            verified = run_envlock("verify", tag, str(lock_path), "--json", env=env, timeout=600)
            # Again, nothing changed: the tag's image was built from this same context (its label says so),
            # so nothing is built and the capture of that image id is reused.
            again = run_envlock("replay", str(lock_path), "--json", "-q", "-t", tag, env=env, timeout=900)
            # The tag moved to another image: replay builds again (from the engine's cache) and re-points it.
            built_id = json.loads(replayed.stdout)["image_id"]
            docker_client.images.get("envlock/python:3.11-debian-bookworm").tag(tag)
            moved = run_envlock("replay", str(lock_path), "--json", "-q", "-t", tag, env=env, timeout=900)
        finally:
            try:
                docker_client.images.remove(tag, force=True)
            except Exception:  # noqa: BLE001 (an image that was never built)
                pass
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    report = json.loads(replayed.stdout)
    by_path: dict[str, list[dict]] = {}
    for finding in report["findings"]:
        by_path.setdefault(finding["path"], []).append(finding)
    (gone,) = [f for f in by_path["python.packages[idna]"] if IDNA in f["message"]]
    assert IDNA in gone["message"] and sha256_of(idna) in gone["message"] and "3.7" in gone["message"]
    assert "envlock pack" in gone["fix"] and "--find-links" in gone["fix"]
    assert any("withdrawn: broken wheel metadata" in f["message"] for f in by_path["python.packages[markupsafe]"])
    assert report["bytes"].startswith("2 of 3 Python distributions byte-identical"), report["bytes"]
    assert "1 missing" in report["bytes"]
    assert not any("different bytes" in f["message"] for f in report["findings"])
    # Installed by their pinned URLs, six and MarkupSafe are still the lock's index packages.
    assert not any("different source" in f["message"] for f in report["findings"]), report["findings"]
    assert report["build_reused"] is False

    assert again.returncode == 1, again.stdout + again.stderr
    second = json.loads(again.stdout)
    assert second["build_reused"] is True and second["image_id"] == built_id
    assert second["bytes"] == report["bytes"]
    assert any("capture inside the image was reused" in note for note in second["notes"]), second["notes"]
    third = json.loads(moved.stdout)
    assert third["build_reused"] is False and third["image_id"] == built_id, third

    assert verified.returncode == 1, verified.stdout + verified.stderr
    proof = json.loads(verified.stdout)
    assert proof["bytes"].startswith("2 of 3 Python distributions byte-identical"), proof["bytes"]
