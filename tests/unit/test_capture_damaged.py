"""Damaged environments: capture still succeeds (exit 0) and says which file was damaged.

Each test breaks one file of a real virtualenv (or of a conda prefix built
from real conda-meta records) the way environments get broken in practice:
an interrupted install, a disk error, a hand edit, a Latin-1 METADATA from an
old build tool.  The lock must be written, must load again, must keep every
undamaged package, and must carry a capture warning naming the file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from envlock.lockfile import load_lock
from tests.conftest import DATA
from tests.unit._capture_envs import add_dist, capture, make_venv, python_packages

MIXED = DATA / "envs" / "conda-mixed"


@pytest.fixture
def venv(tmp_path: Path):
    venv = make_venv(tmp_path / "env")
    add_dist(venv.site, "healthy", "1.0")
    return venv


def _captured(tmp_path: Path, venv):
    result, text = capture(tmp_path / "env.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lock = load_lock(tmp_path / "env.lock").lock  # the lock loads again
    assert python_packages(lock)["healthy"].version == "1.0"  # the undamaged package is kept
    return lock


def _warning_naming(lock, path: Path) -> str:
    found = [w for w in lock.capture_warnings if str(path) in w]
    assert found, f"no capture warning names {path}: {lock.capture_warnings}"
    return found[0]


def test_missing_metadata(tmp_path: Path, venv) -> None:
    info = add_dist(venv.site, "halfinstalled", "2.1")
    (info / "METADATA").unlink()
    lock = _captured(tmp_path, venv)
    assert "missing" in _warning_naming(lock, info / "METADATA")
    # Name and version still come from the directory name.
    assert python_packages(lock)["halfinstalled"].version == "2.1"


def test_unreadable_metadata(tmp_path: Path, venv) -> None:
    """Unreadable: as root, mode 000 does not stop a read, so a directory stands where the file should be
    (open() fails with IsADirectoryError, the same OSError path as EACCES); as another user, mode 000 too."""
    info = add_dist(venv.site, "unreadable", "3.0")
    metadata = info / "METADATA"
    metadata.unlink()
    metadata.mkdir()
    extra = None
    if os.geteuid() != 0:
        extra = add_dist(venv.site, "nopermission", "1.0")
        (extra / "METADATA").chmod(0)
    lock = _captured(tmp_path, venv)
    assert "unreadable" in _warning_naming(lock, metadata)
    assert python_packages(lock)["unreadable"].version == "3.0"
    if extra is not None:
        assert "unreadable" in _warning_naming(lock, extra / "METADATA")


def test_corrupt_direct_url_json(tmp_path: Path, venv) -> None:
    info = add_dist(
        venv.site, "gitpkg", "0.5", direct_url='{"url": "https://github.com/x/y.git", "vcs_info": {"vcs": "git", '
    )
    lock = _captured(tmp_path, venv)
    _warning_naming(lock, info / "direct_url.json")
    package = python_packages(lock)["gitpkg"]
    assert (package.version, package.source, package.url) == ("0.5", "unknown", None)


def test_non_utf8_metadata(tmp_path: Path, venv) -> None:
    metadata = b"Metadata-Version: 1.1\nName: oldlatin\nVersion: 0.9\nAuthor: Jos\xe9 M\xfcller\n\nCaf\xe9\n"
    info = add_dist(venv.site, "oldlatin", "0.9", metadata=metadata)
    lock = _captured(tmp_path, venv)
    assert "UTF-8" in _warning_naming(lock, info / "METADATA")
    assert python_packages(lock)["oldlatin"].version == "0.9"


def test_metadata_with_control_characters_in_its_version(tmp_path: Path, venv) -> None:
    """A hostile METADATA cannot make the written lock unloadable (or smuggle a newline into it)."""
    info = add_dist(venv.site, "evil", "1.0", metadata=b"Name: evil\nVersion: 1.0\x1b[2J\x00\n\n")
    lock = _captured(tmp_path, venv)
    _warning_naming(lock, info)
    assert "\x1b" not in (tmp_path / "env.lock").read_text()


def test_broken_conda_meta_json(tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "condaenv")
    shutil.copytree(MIXED / "conda-meta", venv.path / "conda-meta")
    shutil.copytree(MIXED / "site-packages", venv.site, dirs_exist_ok=True)
    broken = venv.path / "conda-meta" / "zlib-1.2.12-ha287fd2_1.json"
    broken.write_bytes(broken.read_bytes()[:700])  # a write cut short
    not_utf8 = venv.path / "conda-meta" / "badbytes-1.0-0.json"
    not_utf8.write_bytes(b'{"name": "badbytes", "version": "1.0", "channel": "caf\xe9"}')
    not_object = venv.path / "conda-meta" / "list-1.0-0.json"
    not_object.write_text("[]")
    result, _ = capture(tmp_path / "conda.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    lock = load_lock(tmp_path / "conda.lock").lock
    assert sorted(p.name for p in lock.conda.packages) == ["python_abi", "requests"]
    assert "not valid JSON" in _warning_naming(lock, broken)
    assert "UTF-8" in _warning_naming(lock, not_utf8)
    _warning_naming(lock, not_object)
    # The Python layer of the same env is untouched.
    assert python_packages(lock)["requests"].installer == "conda"
