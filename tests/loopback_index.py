"""A package index on 127.0.0.1 that a test changes after the lock is made ("months later" in minutes).

The index is a static directory served by ``http.server``: ``/simple/<project>/``
answers PEP 691 JSON (with ``upload-time``, ``size``, ``yanked``) when the
client asks for it and PEP 503 HTML otherwise; ``/files/<name>`` holds the
wheels.  The wheels are real ones from PyPI, fetched once into
``.cache/test-wheels`` (``python -m tests.loopback_index``, run by
``scripts/provision.d/30-test-wheels.sh``), so no test downloads anything.

A test changes the world with :meth:`LoopbackIndex.add`, ``remove``, ``yank``;
:func:`build_tagged_copy` makes the "re-upload with a build tag" that pip
would prefer over the locked file.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_TESTENVS = Path(os.environ.get("ENVLOCK_TESTENV_DIR", REPO / ".cache" / "testenvs"))
WHEEL_DIR = Path(os.environ.get("ENVLOCK_TEST_WHEELS", _TESTENVS.parent / "test-wheels"))

# Small real wheels for CPython 3.11 on x86_64 Linux (the replay base image's
# interpreter): one py2.py3 wheel (a compressed tag set), one py3 wheel, one
# manylinux wheel whose name carries two aliases of one glibc floor.
WHEELS = {
    "six-1.16.0-py2.py3-none-any.whl": "six==1.16.0",
    "idna-3.7-py3-none-any.whl": "idna==3.7",
    "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": "markupsafe==2.1.5",
}
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def fetch_wheels(directory: Path = WHEEL_DIR) -> Path:
    """Download the wheels once from PyPI (pip, this machine's pip configuration ignored)."""
    missing = [req for name, req in WHEELS.items() if not (directory / name).is_file()]
    if not missing:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--only-binary", ":all:"]
    command += ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    command += ["--platform", "manylinux2014_x86_64", "--index-url", "https://pypi.org/simple", "-d", str(directory)]
    ca = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    if os.path.isfile(ca):
        command += ["--cert", ca]
    subprocess.run(command + missing, check=True, capture_output=True, timeout=600)
    return directory


def real_wheel(name: str) -> Path:
    """The cached wheel ``name``; raises FileNotFoundError when provisioning did not fetch it."""
    path = WHEEL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run `python -m tests.loopback_index` (scripts/provision.d) first")
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_tagged_copy(wheel: Path, build: str, dest_dir: Path, changed_member: str) -> Path:
    """A re-upload of ``wheel`` with build tag ``build`` and one member's bytes changed (RECORD kept true)."""
    name, version, *rest = wheel.name[: -len(".whl")].split("-")
    target = dest_dir / f"{name}-{version}-{build}-{'-'.join(rest[-3:])}.whl"
    with zipfile.ZipFile(wheel) as src:
        members = {info.filename: src.read(info) for info in src.infolist()}
    info_dir = next(n.split("/")[0] for n in members if n.split("/")[0].endswith(".dist-info"))
    members[changed_member] = members[changed_member] + b"\n# rebuilt\n"
    wheel_file = members[f"{info_dir}/WHEEL"].decode()
    members[f"{info_dir}/WHEEL"] = (wheel_file.rstrip("\n") + f"\nBuild: {build}\n").encode()
    rows = [f"{path},{_record_hash(data)},{len(data)}" for path, data in members.items() if not path.endswith("RECORD")]
    members[f"{info_dir}/RECORD"] = ("\n".join(rows + [f"{info_dir}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for path, data in members.items():
            out.writestr(path, data)
    return target


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def send_head(self):  # noqa: ANN201 (http.server's signature)
        # PEP 691 content negotiation: a project page asked for as JSON is index.json.
        if self.path.startswith("/simple/") and self.path.endswith("/") and JSON_TYPE in self.headers.get("Accept", ""):
            page = Path(self.translate_path(self.path)) / "index.json"
            if page.is_file():
                data = page.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", JSON_TYPE)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                import io

                return io.BytesIO(data)
        return super().send_head()


class LoopbackIndex:
    """A PEP 503/691 index in ``root``, served on 127.0.0.1 while the ``with`` block runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "files").mkdir(parents=True, exist_ok=True)
        (root / "simple").mkdir(parents=True, exist_ok=True)
        # project -> {filename: {"upload-time": ..., "yanked": False | reason}}
        self.entries: dict[str, dict[str, dict]] = {}
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the index is not serving"
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple"

    def __enter__(self) -> LoopbackIndex:
        handler = lambda *a, **k: _Handler(*a, directory=str(self.root), **k)  # noqa: E731
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @staticmethod
    def _project(filename: str) -> str:
        from packaging.utils import canonicalize_name

        return canonicalize_name(filename.split("-")[0])

    def add(self, wheel: Path, upload_time: str = "2024-01-02T03:04:05.123456Z") -> None:
        shutil.copyfile(wheel, self.root / "files" / wheel.name)
        self.entries.setdefault(self._project(wheel.name), {})[wheel.name] = {
            "upload-time": upload_time,
            "yanked": False,
        }
        self._write(self._project(wheel.name))

    def remove(self, filename: str) -> None:
        project = self._project(filename)
        del self.entries[project][filename]
        (self.root / "files" / filename).unlink()
        self._write(project)

    def yank(self, filename: str, reason: str) -> None:
        project = self._project(filename)
        self.entries[project][filename]["yanked"] = reason
        self._write(project)

    def _write(self, project: str) -> None:
        page = self.root / "simple" / project
        page.mkdir(parents=True, exist_ok=True)
        files = []
        anchors = []
        for filename, meta in sorted(self.entries[project].items()):
            path = self.root / "files" / filename
            digest = sha256_of(path)
            files.append(
                {
                    "filename": filename,
                    "url": f"../../files/{filename}",
                    "hashes": {"sha256": digest},
                    "size": path.stat().st_size,
                    "upload-time": meta["upload-time"],
                    "yanked": meta["yanked"],
                }
            )
            yanked = f' data-yanked="{html.escape(meta["yanked"])}"' if meta["yanked"] else ""
            anchors.append(f'<a href="../../files/{filename}#sha256={digest}"{yanked}>{filename}</a><br>')
        data = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
        (page / "index.json").write_text(json.dumps(data, indent=1))
        (page / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(anchors) + "\n</body></html>\n")


if __name__ == "__main__":
    print(f"test wheels ready: {fetch_wheels()}")
