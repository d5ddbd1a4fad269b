"""Small real environments for the capture tests.

A virtualenv made with ``python -m venv --without-pip`` costs ~0.15 s here and
is a real interpreter that ``envlock capture --python`` can ask about itself;
distributions are then written into its site-packages as the files an
installer leaves (``*.dist-info`` with METADATA, INSTALLER, REQUESTED,
direct_url.json), so no package index is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import run_envlock


@dataclass(frozen=True)
class Venv:
    path: Path
    python: Path
    site: Path


def make_venv(path: Path, python: str | None = None) -> Venv:
    subprocess.run(
        [python or sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, capture_output=True
    )
    site = sorted((path / "lib").glob("python3*/site-packages"))[0]
    return Venv(path, path / "bin" / "python", site)


def add_dist(
    site: Path,
    name: str,
    version: str,
    *,
    installer: str | None = "pip",
    requested: bool = False,
    direct_url: dict | str | None = None,
    metadata: bytes | None = None,
) -> Path:
    """Write ``<name>-<version>.dist-info`` as pip would leave it; returns the directory."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    if metadata is None:
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test\n\n".encode()
    (info / "METADATA").write_bytes(metadata)
    if installer is not None:
        (info / "INSTALLER").write_text(installer + "\n")
    if requested:
        (info / "REQUESTED").write_text("")
    if direct_url is not None:
        text = direct_url if isinstance(direct_url, str) else json.dumps(direct_url)
        (info / "direct_url.json").write_text(text)
    (info / "RECORD").write_text(f"{info.name}/METADATA,,\n")
    return info


def capture(out: Path, *args: str, env: dict | None = None, cwd: Path | None = None):
    """Run ``envlock capture -o OUT ARGS`` as a user would; returns (completed process, file text)."""
    result = run_envlock("capture", "-q", "-o", str(out), *args, env=env, cwd=cwd)
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    return result, text


def python_packages(lock) -> dict:
    return {p.name: p for p in lock.python.packages}


def other_python_version() -> str | None:
    """An interpreter of another minor version than the one running the tests, if this machine has one."""
    for minor in (12, 13, 10, 9, 8):
        if (3, minor) == sys.version_info[:2]:
            continue
        # pyenv's own directories first: its shims fail for versions not selected.
        for match in sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob(f"3.{minor}.*/bin/python3.{minor}")):
            return str(match)
        found = shutil.which(f"python3.{minor}")
        if found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0:
            return found
    return None
