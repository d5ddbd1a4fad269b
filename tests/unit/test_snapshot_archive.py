"""The OS layer's time anchor: snapshot URL layout, the apt sources replay adds, and `first-seen` from the archive's API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from envlock.errors import ReplayError
from envlock.lockfile import Lock, OsPackage, OsSection, PythonSection, parse_lock
from envlock.lockfile.write import dumps_lock
from envlock.os_anchor import anchor_os, parse_first_seen
from envlock.replay.plan import ReplayOptions, plan_replay
from envlock.replay.snapshot import (
    ArchiveOptions,
    anchor_stamps,
    check_base_url,
    mirror_source_lines,
    snapshot_source_lines,
    snapshot_stamp,
)


def test_snapshot_stamp_is_the_archives_spelling():
    assert snapshot_stamp("2024-06-10T08:15:03Z") == "20240610T081503Z"
    for bad in ("2024-06-10", "2024-06-10T08:15:03+02:00", "x"):
        with pytest.raises(ReplayError):
            snapshot_stamp(bad)


def test_anchor_stamps_are_sorted_and_unique():
    assert anchor_stamps("2024-06-10T00:00:00Z", ["2023-01-15T08:55:30Z", None, "2024-06-10T00:00:00Z"]) == [
        "20230115T085530Z",
        "20240610T000000Z",
    ]
    assert anchor_stamps(None, []) == []


def test_debian_snapshot_layout_includes_security_archive():
    lines = snapshot_source_lines("debian", "bookworm", ["20240610T000000Z"], ArchiveOptions())
    assert lines == [
        "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/20240610T000000Z/ bookworm main",
        "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/20240610T000000Z/ bookworm-updates main",
        "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian-security/20240610T000000Z/ bookworm-security main",
    ]


def test_ubuntu_snapshot_layout():
    lines = snapshot_source_lines(
        "ubuntu", "jammy", ["20240610T000000Z"], ArchiveOptions(snapshot="http://127.0.0.1:9/")
    )
    assert lines[0] == "deb [check-valid-until=no] http://127.0.0.1:9/ubuntu/20240610T000000Z/ jammy main universe"
    assert [line.split()[-3] for line in lines] == ["jammy", "jammy-updates", "jammy-security"]


def test_end_of_life_debian_comes_from_the_archive_and_a_site_mirror_replaces_sources():
    assert mirror_source_lines("debian", "buster", ArchiveOptions()) == [
        "deb [check-valid-until=no] http://archive.debian.org/debian buster main"
    ]
    assert mirror_source_lines("debian", "bookworm", ArchiveOptions()) == []
    assert mirror_source_lines("debian", "bookworm", ArchiveOptions(mirror="http://10.0.0.5:3142/debian/")) == [
        "deb http://10.0.0.5:3142/debian bookworm main",
        "deb http://10.0.0.5:3142/debian bookworm-updates main",
        "deb http://10.0.0.5:3142/debian-security bookworm-security main",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc",
        "http://x/ bookworm main\ndeb http://evil/",
        "http://x/[trusted=yes]",
        "ftp://x/debian",
        "http://x/debian bookworm",
        "",
    ],
)
def test_base_urls_that_could_change_an_apt_line_are_refused(url):
    with pytest.raises(ReplayError) as caught:
        check_base_url(url, "--snapshot-url")
    assert "--snapshot-url" in caught.value.message


def _lock(created_at="2026-06-01T12:00:00Z", snapshot_time=None, first_seen=None):
    return Lock(
        created_at=created_at,
        python=PythonSection(version="3.11.2"),
        os=OsSection(
            id="debian",
            version_id="12",
            codename="bookworm",
            package_manager="dpkg",
            snapshot_time=snapshot_time,
            packages=(
                OsPackage("tree", "2.1.0-1", "amd64", manual=True, first_seen=first_seen),
                OsPackage("libc6", "2.36-9+deb12u4", "amd64", manual=False),
            ),
        ),
    )


def test_plan_adds_the_snapshot_at_the_anchor_and_first_seen_times():
    plan = plan_replay(
        _lock(snapshot_time="2026-06-01T12:00:00Z", first_seen="2023-01-15T08:55:30Z"),
        ReplayOptions(base_source="debootstrap", archive=ArchiveOptions(snapshot="http://127.0.0.1:1")),
    )
    assert plan.os_sources == ()
    stamps = sorted({line.split("/")[-2] for line in plan.os_fallbacks})
    assert stamps == ["20230115T085530Z", "20260601T120000Z"]
    assert all(line.startswith("deb [check-valid-until=no] http://127.0.0.1:1/archive/") for line in plan.os_fallbacks)


def test_plan_without_pin_anchors_at_the_capture_time():
    plan = plan_replay(_lock(), ReplayOptions(base_source="debootstrap"))
    assert {line.split("/")[-2] for line in plan.os_fallbacks} == {"20260601T120000Z"}


def test_time_anchor_round_trips_through_the_lockfile_and_is_validated():
    lock = _lock(snapshot_time="2026-06-01T12:00:00Z", first_seen="2023-01-15T08:55:30Z")
    text = dumps_lock(lock)
    assert 'snapshot-time = "2026-06-01T12:00:00Z"' in text and 'first-seen = "2023-01-15T08:55:30Z"' in text
    loaded = parse_lock(text.encode()).lock.os
    assert loaded.snapshot_time == "2026-06-01T12:00:00Z"
    assert {p.name: p.first_seen for p in loaded.packages} == {"tree": "2023-01-15T08:55:30Z", "libc6": None}
    from envlock.errors import LockfileError

    with pytest.raises(LockfileError) as caught:
        parse_lock(text.replace('first-seen = "2023-01-15T08:55:30Z"', 'first-seen = "yesterday"').encode())
    assert "first-seen" in str(caught.value.message) + str(getattr(caught.value, "problems", ""))


# --- the archive's API, served on loopback -------------------------------------------

BINFILES = {
    ("tree", "2.1.0-1"): {
        "binary": "tree",
        "binary_version": "2.1.0-1",
        "result": [
            {"architecture": "amd64", "hash": "a" * 40},
            {"architecture": "arm64", "hash": "b" * 40},
        ],
        "fileinfo": {
            "a" * 40: [
                {"archive_name": "debian", "first_seen": "20230115T085530Z", "name": "tree_2.1.0-1_amd64.deb"},
                {"archive_name": "debian-debug", "first_seen": "20200101T000000Z", "name": "x"},
            ],
            "b" * 40: [{"archive_name": "debian", "first_seen": "20190101T000000Z", "name": "tree_2.1.0-1_arm64.deb"}],
        },
    }
}


def test_first_seen_is_read_for_the_locked_architecture():
    text = json.dumps(BINFILES[("tree", "2.1.0-1")])
    assert parse_first_seen(text, "amd64") == "2023-01-15T08:55:30Z"
    assert parse_first_seen(text, "arm64") == "2019-01-01T00:00:00Z"
    assert parse_first_seen(text, "riscv64") is None
    assert parse_first_seen("<html>", "amd64") is None


@pytest.fixture
def snapshot_api():
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            requests.append(self.path)
            parts = self.path.split("?")[0].split("/")
            key = (parts[3], parts[4]) if len(parts) > 5 and parts[1:3] == ["mr", "binary"] else None
            body = json.dumps(BINFILES[key]).encode() if key in BINFILES else b'{"error": "not found"}'
            self.send_response(200 if key in BINFILES else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_anchor_os_records_capture_time_and_first_seen_from_the_archive(snapshot_api):
    url, requests = snapshot_api
    lock = records_with_gone_package(_lock())
    anchored, notes = anchor_os(lock, url)
    assert anchored.os.snapshot_time == "2026-06-01T12:00:00Z"
    by_name = {p.name: p for p in anchored.os.packages}
    assert by_name["tree"].first_seen == "2023-01-15T08:55:30Z"
    assert by_name["gone"].first_seen is None
    assert by_name["libc6"].first_seen is None  # not hand-installed: not asked
    assert notes == ["os.packages[gone]: the snapshot archive does not know 1.0-1"]
    assert sorted(requests) == [
        "/mr/binary/gone/1.0-1/binfiles?fileinfo=1",
        "/mr/binary/tree/2.1.0-1/binfiles?fileinfo=1",
    ]


def records_with_gone_package(lock):
    from envlock import records

    extra = OsPackage("gone", "1.0-1", "amd64", manual=True)
    return records.replace(lock, os=records.replace(lock.os, packages=(*lock.os.packages, extra)))


def test_envlock_pin_anchors_the_os_layer_in_the_lockfile(snapshot_api, tmp_path):
    from envlock.lockfile.write import write_lock
    from tests.conftest import run_envlock

    url, requests = snapshot_api
    path = tmp_path / "envlock.lock"
    write_lock(records_with_gone_package(_lock()), str(path), "test")
    result = run_envlock("pin", str(path), "--snapshot-url", url, "--json")
    assert result.returncode == 0, result.stderr
    anchored = parse_lock(path.read_bytes()).lock
    assert anchored.os.snapshot_time == "2026-06-01T12:00:00Z"
    assert {p.name: p.first_seen for p in anchored.os.packages} == {
        "gone": None,
        "libc6": None,
        "tree": "2023-01-15T08:55:30Z",
    }
    layers = {layer["layer"]: layer for layer in json.loads(result.stdout)["layers"]}
    assert (layers["os"]["pinned"], layers["os"]["total"]) == (1, 2)


def test_an_unreachable_archive_costs_one_request_and_keeps_the_capture_time(tmp_path):
    lock = records_with_gone_package(_lock())
    anchored, notes = anchor_os(lock, "http://127.0.0.1:9")  # a closed loopback port
    assert anchored.os.snapshot_time == "2026-06-01T12:00:00Z"
    assert all(p.first_seen is None for p in anchored.os.packages)
    assert len(notes) == 1 and "did not answer" in notes[0]


def test_envlock_pin_refuses_a_snapshot_url_that_could_change_apt_lines(tmp_path):
    from envlock.lockfile.write import write_lock
    from tests.conftest import run_envlock

    path = tmp_path / "envlock.lock"
    write_lock(_lock(), str(path), "test")
    before = path.read_bytes()
    result = run_envlock("pin", str(path), "--snapshot-url", "http://x/ bookworm main")
    assert result.returncode == 2 and "--snapshot-url" in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == before
