"""A directory served over HTTP on 127.0.0.1, on a port the OS picks: channels and indexes the tests change."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Files of the served directory, without a log line per request on the test's output."""

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


class ServedDirectory:
    """``directory`` served by ``handler`` (a ``SimpleHTTPRequestHandler`` class) until ``close()``."""

    def __init__(self, directory: Path, handler: type[http.server.SimpleHTTPRequestHandler] = QuietHandler) -> None:
        self.directory = directory
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
