"""The conda layer, read from conda-meta/*.json without the conda binary.

Expected values below were read off the JSON records by hand (tests/data/conda_meta/,
real records from public prefixes; sources in the .source.txt sidecars).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from envlock.capture.conda import channel_name, parse_conda_record
from envlock.lockfile import load_lock
from tests.conftest import DATA
from tests.unit._capture_envs import capture, make_venv, python_packages

RECORDS = DATA / "conda_meta"
MIXED = DATA / "envs" / "conda-mixed"


RECORD_CASES = [
    (
        "miniforge3-osxarm64.zlib-1.2.12-ha287fd2_1.json",
        {
            "name": "zlib",
            "version": "1.2.12",
            "build": "ha287fd2_1",
            "channel": "conda-forge",
            "subdir": "osx-arm64",
            "url": "https://conda.anaconda.org/conda-forge/osx-arm64/zlib-1.2.12-ha287fd2_1.tar.bz2",
            "md5": "7fbb261a0ba13ac1c8aa5180eee36064",
            "sha256": "sha256:04ca6c9ddb16752163904235fb1d2860f8f3cbbdd032238bf2e926f01dc5fa81",
        },
    ),
    (  # written by the installer: short channel form, no sha256
        "miniforge3-osxarm64.python_abi-3.9-2_cp39.json",
        {
            "name": "python_abi",
            "version": "3.9",
            "build": "2_cp39",
            "channel": "conda-forge",
            "subdir": "osx-arm64",
            "url": "https://conda.anaconda.org/conda-forge/osx-arm64/python_abi-3.9-2_cp39.tar.bz2",
            "md5": "ba3082b5441b482d5cfe328d4e7ba0bf",
            "sha256": None,
        },
    ),
    (
        "miniforge3-osxarm64.requests-2.27.1-pyhd8ed1ab_0.json",
        {
            "name": "requests",
            "version": "2.27.1",
            "build": "pyhd8ed1ab_0",
            "channel": "conda-forge",
            "subdir": "noarch",
            "url": "https://conda.anaconda.org/conda-forge/noarch/requests-2.27.1-pyhd8ed1ab_0.tar.bz2",
            "md5": "7c1c427246b057b8fa97200ecdb2ed62",
            "sha256": "sha256:74b8b294cf2b9455a71271f9c3b7f2e7b82da0129cd31e2ae24d68552ad15cd2",
        },
    ),
    (  # the defaults channel on repo.anaconda.com, .conda format
        "autodock-linux64.defaults._libgcc_mutex-0.1-main.json",
        {
            "name": "_libgcc_mutex",
            "version": "0.1",
            "build": "main",
            "channel": "pkgs/main",
            "subdir": "linux-64",
            "url": "https://repo.anaconda.com/pkgs/main/linux-64/_libgcc_mutex-0.1-main.conda",
            "md5": "c3473ff8bdb3d124ed5ff11ec380d6f9",
            "sha256": "sha256:476626712f60e5ef0fe04c354727152b1ee5285d57ccd3575c7be930122bd051",
        },
    ),
    (
        "autodock-linux64.defaults.libgcc-ng-9.3.0-h5101ec6_17.json",
        {
            "name": "libgcc-ng",
            "version": "9.3.0",
            "build": "h5101ec6_17",
            "channel": "pkgs/main",
            "subdir": "linux-64",
            "url": "https://repo.anaconda.com/pkgs/main/linux-64/libgcc-ng-9.3.0-h5101ec6_17.conda",
            "md5": "e9cbabbfb9e8a430f6a7660fe8dd77a7",
            "sha256": "sha256:49a808720a51c107241a42ac3641cce3d8451ef7cfaf3d68b6e4a3fec2da0676",
        },
    ),
    (  # a third-party channel, no sha256
        "autodock-linux64.hcc.autodock-4.2.6-hfc679d8_0.json",
        {
            "name": "autodock",
            "version": "4.2.6",
            "build": "hfc679d8_0",
            "channel": "hcc",
            "subdir": "linux-64",
            "url": "https://conda.anaconda.org/hcc/linux-64/autodock-4.2.6-hfc679d8_0.tar.bz2",
            "md5": "9b5618b35572e16403d5186da59cbfd3",
            "sha256": None,
        },
    ),
]


@pytest.mark.parametrize(("file_name", "expected"), RECORD_CASES)
def test_real_conda_meta_records(file_name: str, expected: dict) -> None:
    data = json.loads((RECORDS / file_name).read_text(encoding="utf-8"))
    assert parse_conda_record(data, file_name) == expected


def test_every_corpus_record_is_covered_above() -> None:
    assert {p.name for p in RECORDS.glob("*.json")} == {name for name, _ in RECORD_CASES}


@pytest.mark.parametrize(
    ("channel", "url", "subdir", "expected"),
    [
        ("https://conda.anaconda.org/t/ab-1234cdef/private-chan/linux-64", None, "linux-64", "private-chan"),
        (
            "https://user:pa55@artifactory.example.com/conda/ml/linux-64",
            None,
            "linux-64",
            "https://artifactory.example.com/conda/ml",
        ),
        ("https://repo.example.com/t/tk-999/mirror/noarch", None, "noarch", "https://repo.example.com/mirror"),
        (
            None,
            "https://conda.anaconda.org/pytorch/linux-64/pytorch-2.0.0-py3.11_cuda11.8_cudnn8.7.0_0.tar.bz2",
            "linux-64",
            "pytorch",
        ),
        ("defaults", None, "linux-64", "defaults"),
        (None, None, "linux-64", None),
    ],
)
def test_channel_names(channel, url, subdir, expected) -> None:
    assert channel_name(channel, url, subdir) == expected


def _conda_env(tmp_path: Path):
    """A real interpreter at a prefix that holds conda-meta and conda- and pip-installed distributions."""
    venv = make_venv(tmp_path / "condaenv")
    shutil.copytree(MIXED / "conda-meta", venv.path / "conda-meta")
    shutil.copytree(MIXED / "site-packages", venv.site, dirs_exist_ok=True)
    return venv


def test_conda_and_pip_packages_coexisting(tmp_path: Path) -> None:
    venv = _conda_env(tmp_path)
    # No conda on PATH: capture must not need the binary.
    env = {"PATH": os.pathsep.join(p for p in ("/usr/bin", "/bin") if os.path.isdir(p))}
    assert shutil.which("conda", path=env["PATH"]) is None
    result, text = capture(tmp_path / "conda.lock", "--python", str(venv.python), env=env)
    assert result.returncode == 0, result.stderr
    lock = load_lock(tmp_path / "conda.lock").lock
    assert lock.python.environment_kind == "conda"
    conda = {p.name: p for p in lock.conda.packages}
    assert sorted(conda) == ["python_abi", "requests", "zlib"]
    assert (conda["zlib"].channel, conda["zlib"].build, conda["zlib"].md5) == (
        "conda-forge",
        "ha287fd2_1",
        "7fbb261a0ba13ac1c8aa5180eee36064",
    )
    packages = python_packages(lock)
    assert packages["requests"].installer == "conda"
    # Its direct_url.json describes conda-forge's build directory, not this env.
    assert (packages["requests"].source, packages["requests"].url) == ("index", None)
    assert "feedstock_root" not in text
    assert packages["tqdm"].installer == "pip"
    assert packages["tqdm"].requested is True


def test_conda_python_package_without_installer_file_is_attributed_to_conda(tmp_path: Path) -> None:
    """Packages built before conda wrote INSTALLER: conda-meta's file list names their dist-info."""
    venv = _conda_env(tmp_path)
    (venv.site / "requests-2.27.1.dist-info" / "INSTALLER").unlink()
    (venv.site / "tqdm-4.64.0.dist-info" / "INSTALLER").unlink()
    result, _ = capture(tmp_path / "conda.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    packages = python_packages(load_lock(tmp_path / "conda.lock").lock)
    assert packages["requests"].installer == "conda"
    assert packages["requests"].source == "index"
    assert packages["tqdm"].installer is None  # no conda record names it: unknown, not guessed


def test_no_conda_section_outside_a_conda_prefix(tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "plain")
    result, text = capture(tmp_path / "plain.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    assert load_lock(tmp_path / "plain.lock").lock.conda is None
    assert "[conda]" not in text and "[[conda.packages]]" not in text


def test_token_in_a_recorded_channel_never_reaches_the_lock(tmp_path: Path) -> None:
    venv = _conda_env(tmp_path)
    record = json.loads((MIXED / "conda-meta" / "zlib-1.2.12-ha287fd2_1.json").read_text())
    record["channel"] = "https://conda.anaconda.org/t/zz-secret-0042/conda-forge/osx-arm64"
    record["url"] = "https://conda.anaconda.org/t/zz-secret-0042/conda-forge/osx-arm64/zlib-1.2.12-ha287fd2_1.tar.bz2"
    (venv.path / "conda-meta" / "zlib-1.2.12-ha287fd2_1.json").write_text(json.dumps(record))
    result, text = capture(tmp_path / "conda.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    assert "zz-secret-0042" not in text
    zlib = {p.name: p for p in load_lock(tmp_path / "conda.lock").lock.conda.packages}["zlib"]
    assert zlib.channel == "conda-forge"
    assert zlib.url == "https://conda.anaconda.org/conda-forge/osx-arm64/zlib-1.2.12-ha287fd2_1.tar.bz2"
