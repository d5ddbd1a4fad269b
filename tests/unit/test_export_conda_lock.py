"""`envlock export conda-lock` writes a conda-lock.yml that the real conda-lock reads.

The real conda-lock (4.0.3, from PyPI, in the ``conda-tools`` test env) renders
the exported file back into an explicit list, which must name exactly the
URLs and md5s of the conda-lock file the lock was imported from (read with
PyYAML, not with envlock).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from envlock import records
from envlock.lockfile import identity, load_lock, write_lock
from tests.conftest import run_envlock
from tests.envs import conda_tools_venv

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "conda_lock"
CLAY = CORPUS / "conda-lock.clay-model-cuda118.yml"

pytestmark = [pytest.mark.network]  # the conda-tools env comes from PyPI once, then from the cache


def _export(tmp_path: Path, lock: Path) -> tuple[Path, str]:
    out = tmp_path / "conda-lock.yml"
    result = run_envlock("export", "conda-lock", str(lock), "-o", str(out))
    assert result.returncode in (0, 1), result.stderr
    return out, result.stderr


def _render(tmp_path: Path, conda_lock: Path) -> list[str]:
    tool = conda_tools_venv().path / "bin" / "conda-lock"
    result = subprocess.run(
        [str(tool), "render", "--kind", "explicit", "-p", "linux-64", str(conda_lock)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (tmp_path / "conda-linux-64.lock").read_text()
    return [line for line in text.splitlines() if line.startswith("http")]


def test_real_conda_lock_renders_the_exported_file(tmp_path):
    imported = tmp_path / "clay.lock"
    assert run_envlock("import", "conda-lock", str(CLAY), "-o", str(imported)).returncode == 0
    exported, _ = _export(tmp_path, imported)
    rendered = _render(tmp_path, exported)
    original = yaml.safe_load(CLAY.read_text())["package"]
    expected = sorted(f"{p['url']}#{p['hash']['md5']}" for p in original if p["manager"] == "conda")
    assert sorted(rendered) == expected
    assert len(expected) == 421


def test_credentials_become_placeholders_and_never_reach_the_file(tmp_path):
    imported = tmp_path / "clay.lock"
    assert run_envlock("import", "conda-lock", str(CLAY), "-o", str(imported)).returncode == 0
    lock = load_lock(imported).lock
    packages = tuple(
        records.replace(p, url=p.url.replace("https://conda.anaconda.org/", "https://conda.anaconda.org/t/tk-SECRET9/"))
        if p.name == "libzlib"
        else p
        for p in lock.conda.packages
    )
    lock = records.replace(lock, conda=records.replace(lock.conda, packages=packages))
    path = tmp_path / "secret.lock"
    write_lock(identity.with_fingerprint(lock), path, "test")
    exported, _ = _export(tmp_path, path)
    text = exported.read_text()
    assert "SECRET9" not in text
    document = yaml.safe_load(text)
    assert {"url": "https://conda.anaconda.org/t/${CONDA_TOKEN}/conda-forge", "used_env_vars": ["CONDA_TOKEN"]} in (
        document["metadata"]["channels"]
    )
    zlib = next(p for p in document["package"] if p["name"] == "libzlib")
    assert zlib["url"].startswith("https://conda.anaconda.org/conda-forge/linux-64/libzlib-")


def test_a_lock_without_conda_is_refused_with_exit_2(tmp_path):
    lock = tmp_path / "pip.lock"
    (tmp_path / "freeze.txt").write_text("six==1.16.0\n")
    assert run_envlock("import", "pip-freeze", str(tmp_path / "freeze.txt"), "-o", str(lock)).returncode == 0
    result = run_envlock("export", "conda-lock", str(lock), "-o", str(tmp_path / "x.yml"))
    assert result.returncode == 2 and "no conda layer" in result.stderr
    assert not (tmp_path / "x.yml").exists()
