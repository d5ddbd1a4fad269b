"""The conda URL probe against a real HTTP server on 127.0.0.1 whose answers the test decides.

The server's files are a directory the test changes; two paths stand for a
channel behind credentials (401, 403) and one server refuses HEAD (405), so the
ranged-GET fallback is exercised.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envlock.replay.conda_probe import probe_urls
from tests.served_directory import QuietHandler, ServedDirectory


class _Handler(QuietHandler):
    refuse_head = False

    def _private(self) -> bool:
        for code, prefix in ((401, "/private401/"), (403, "/private403/")):
            if self.path.startswith(prefix):
                self.send_error(code)
                return True
        return False

    def do_HEAD(self):
        if self.refuse_head:
            self.send_error(405)
        elif not self._private():
            super().do_HEAD()

    def do_GET(self):
        if not self._private():
            super().do_GET()


@pytest.fixture(params=[False, True], ids=["head", "ranged-get"])
def channel(tmp_path: Path, request):
    (tmp_path / "linux-64").mkdir()
    (tmp_path / "linux-64" / "here-1.0-0.tar.bz2").write_bytes(b"archive bytes")
    served = ServedDirectory(tmp_path, type("Handler", (_Handler,), {"refuse_head": request.param}))
    try:
        yield tmp_path, served.url
    finally:
        served.close()


def test_gone_and_private_archives_are_named_and_served_ones_are_not(channel):
    root, url = channel
    here = f"{url}/linux-64/here-1.0-0.tar.bz2"
    gone = f"{url}/linux-64/gone-1.0-0.tar.bz2"
    found = probe_urls([here, gone, f"{url}/private401/a-1-0.conda", f"{url}/private403/b-1-0.conda"])
    assert {(item.url.removeprefix(url), item.status) for item in found} == {
        ("/linux-64/gone-1.0-0.tar.bz2", 404),
        ("/private401/a-1-0.conda", 401),
        ("/private403/b-1-0.conda", 403),
    }
    assert [item.needs_credentials for item in found if item.url == gone] == [False]
    # Deleting the file from the served directory is what makes it gone.
    (root / "linux-64" / "here-1.0-0.tar.bz2").unlink()
    assert [(item.url, item.status) for item in probe_urls([here])] == [(here, 404)]


def test_a_server_that_does_not_answer_is_no_evidence(tmp_path):
    # A port nobody listens on: the build fetches (and reports) it, the probe says nothing.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert probe_urls([f"http://127.0.0.1:{port}/linux-64/x-1-0.conda"], timeout=2) == ()
