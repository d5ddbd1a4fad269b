"""uv, fetched like any other pinned file: found by name, checked by sha256, then extracted.

The recorded pins are for real uv wheels; these tests give ``find_uv`` a
stand-in wheel (a zip with the same member layout, made here) and its sha256
computed here with hashlib, served from a directory of wheels or from an index
on 127.0.0.1 whose bytes the test changes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest

from envlock.errors import ReplayError
from envlock.replay import uv_tool
from envlock.replay.plan import InstallGroup, Requirement
from tests.served_directory import ServedDirectory

EXECUTABLE = b"#!/bin/sh\necho stand-in uv\n"
NAME = "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def _wheel(directory, payload: bytes = EXECUTABLE):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / NAME
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("uv/__init__.py", "")
        archive.writestr("uv-0.13.9.data/scripts/uv", payload)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _pins(sha: str) -> dict:
    return {"x86_64": uv_tool.UvWheel("x86_64", NAME, sha)}


@pytest.fixture()
def loopback_index(tmp_path):
    """An index on 127.0.0.1 serving tmp_path/root; yields its /simple URL."""
    root = tmp_path / "root"
    (root / "simple" / "uv").mkdir(parents=True)
    served = ServedDirectory(root)
    try:
        yield root, f"{served.url}/simple"
    finally:
        served.close()


def test_the_recorded_pins_are_pypi_file_names_and_sha256_values():
    for arch, wheel in uv_tool.UV_WHEELS.items():
        assert wheel.arch == arch
        assert wheel.filename.startswith(f"uv-{uv_tool.UV_VERSION}-py3-none-manylinux")
        assert wheel.filename.endswith(f"_{arch}.whl") or f"_{arch}." in wheel.filename
        assert len(wheel.sha256) == 64 and int(wheel.sha256, 16) >= 0


@pytest.mark.parametrize(
    "name, expected", [("x86_64", "x86_64"), ("AMD64", "x86_64"), ("arm64", "aarch64"), ("aarch64", "aarch64")]
)
def test_architecture_names(name, expected):
    assert uv_tool.normalize_arch(name) == expected


def test_no_wheel_for_the_architecture_means_pip(tmp_path):
    assert uv_tool.normalize_arch("s390x") is None
    assert uv_tool.find_uv("s390x", cache=tmp_path / "cache") is None


def test_a_local_directory_of_wheels_serves_uv_with_the_network_off(tmp_path):
    path, sha = _wheel(tmp_path / "wheels")
    found = uv_tool.find_uv(
        "x86_64", local_dirs=(str(tmp_path / "wheels"),), wheels=_pins(sha), cache=tmp_path / "cache", timeout=1
    )
    assert found is not None and found.wheel_sha256 == sha
    assert Path(found.path).read_bytes() == EXECUTABLE
    assert os.stat(found.path).st_mode & stat.S_IXUSR


def test_a_local_wheel_with_other_bytes_is_refused(tmp_path):
    _wheel(tmp_path / "wheels", payload=b"not the pinned uv")
    with pytest.raises(ReplayError, match="sha256 is not the one envlock records"):
        uv_tool.find_uv("x86_64", local_dirs=(str(tmp_path / "wheels"),), wheels=_pins("0" * 64), cache=tmp_path / "c")
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("uv"))


def test_downloaded_from_the_index_checked_and_cached(tmp_path, loopback_index):
    root, index = loopback_index
    path, sha = _wheel(root / "files")
    (root / "simple" / "uv" / "index.html").write_text(f'<a href="../../files/{NAME}#sha256={sha}">{NAME}</a>')
    cache = tmp_path / "cache"
    found = uv_tool.find_uv("x86_64", index_url=index, wheels=_pins(sha), cache=cache, timeout=5)
    assert Path(found.path).read_bytes() == EXECUTABLE
    assert hashlib.sha256((cache / NAME).read_bytes()).hexdigest() == sha
    # The index goes away: the cached, re-checked wheel serves the next replay.
    path.unlink()
    (root / "simple" / "uv" / "index.html").unlink()
    os.unlink(found.path)
    again = uv_tool.find_uv("x86_64", index_url=index, wheels=_pins(sha), cache=cache, timeout=5)
    assert Path(again.path).read_bytes() == EXECUTABLE


def test_an_index_serving_other_bytes_is_refused_and_nothing_is_kept(tmp_path, loopback_index):
    root, index = loopback_index
    _, sha = _wheel(root / "files", payload=b"tampered")
    # The page does not say the sha256: only the download can be checked.
    (root / "simple" / "uv" / "index.html").write_text(f'<a href="../../files/{NAME}">{NAME}</a>')
    cache = tmp_path / "cache"
    pinned = "ab" * 32
    with pytest.raises(ReplayError, match="downloaded bytes have sha256"):
        uv_tool.find_uv("x86_64", index_url=index, wheels=_pins(pinned), cache=cache, timeout=5)
    assert sorted(p.name for p in cache.iterdir()) == []
    # A page that lists another sha256 is refused before downloading.
    (root / "simple" / "uv" / "index.html").write_text(f'<a href="../../files/{NAME}#sha256={sha}">{NAME}</a>')
    with pytest.raises(ReplayError, match="not the one envlock records"):
        uv_tool.find_uv("x86_64", index_url=index, wheels=_pins(pinned), cache=cache, timeout=5)


def test_an_index_without_the_file_says_how_to_replay_offline(tmp_path, loopback_index):
    root, index = loopback_index
    (root / "simple" / "uv" / "index.html").write_text("<html></html>")
    with pytest.raises(ReplayError) as caught:
        uv_tool.find_uv("x86_64", index_url=index, wheels=_pins("ab" * 32), cache=tmp_path / "cache", timeout=5)
    assert NAME in caught.value.message and "--find-links" in caught.value.hint


def _group(kind: str) -> InstallGroup:
    url = "https://pypi.org/simple" if kind == "index" else None
    return InstallGroup(kind, url, True, (Requirement("six", "1.16.0", "a" * 64),))


def test_install_argv_keeps_pips_guarantees():
    argv = uv_tool.install_argv(_group("index"), "/uv", "/venv/bin/python", "/r.txt", "/w", "/ca.pem", None)
    assert argv[:3] == ["/uv", "pip", "install"]
    for flag in ("--no-config", "--require-hashes", "--no-deps", "--no-cache", "--compile-bytecode"):
        assert flag in argv
    assert argv[argv.index("--only-binary") + 1] == ":all:"
    assert argv[argv.index("--cert") + 1] == "/ca.pem"
    assert argv[argv.index("--default-index") + 1] == "https://pypi.org/simple"
    assert argv[argv.index("--python") + 1] == "/venv/bin/python"
    assert argv[-2:] == ["-r", "/r.txt"]
    assert argv[argv.index("--link-mode") + 1] == "hardlink"  # a throwaway cache on the venv's file system
    wheels = uv_tool.install_argv(_group("wheelhouse"), "/uv", "/p", "/r.txt", "/w", None, "/cache", False)
    assert "--cert" not in wheels and "--compile-bytecode" not in wheels
    assert wheels[wheels.index("--find-links") + 1] == "/w" and "--no-index" in wheels
    assert wheels[wheels.index("--cache-dir") + 1] == "/cache"
    assert wheels[wheels.index("--link-mode") + 1] == "copy"  # a cache mount is another file system
