"""Whole reports, as a person reads them (terminal text and Markdown), against reviewed golden files.

Each golden file under tests/data/reports/ was read and judged by a person
when it was written: verdict first, counts that add up, one group per cause.
After an intended change of wording, rewrite them with
``ENVLOCK_UPDATE_GOLDEN=1 pytest tests/unit/test_report_golden.py`` and read
the diff before committing it.

No Docker here: replay runs against an engine address where nothing listens,
so it plans and writes the build context, as on a machine without Docker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envlock.lockfile import identity, write_lock
from envlock.lockfile import model as m
from tests.conftest import run_envlock
from tests.unit.replay_data import LOCKS

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "reports"
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/envlock-report-golden.sock"}


def check_golden(name: str, text: str, tmp_path: Path) -> None:
    path = GOLDEN / name
    text = text.replace(str(tmp_path), "TMP")
    if os.environ.get("ENVLOCK_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def ubuntu_lock(count: int) -> m.Lock:
    """A lock from an Ubuntu 22.04 workstation with ``count`` hand-installed packages and a Python 3.11 venv."""
    packages = tuple(
        m.OsPackage(name=f"lib{name}-dev", version=f"1.{i}.0-1ubuntu1", architecture="amd64", manual=True)
        for i, name in enumerate(f"pkg{n:03d}" for n in range(count))
    )
    return m.Lock(
        python=m.PythonSection(implementation="cpython", version="3.11.7", environment_kind="venv", packages=()),
        os=m.OsSection(
            id="ubuntu", version_id="22.04", name="Ubuntu 22.04.4 LTS", package_manager="dpkg", packages=packages
        ),
        runtime=m.RuntimeSection(env={"OMP_NUM_THREADS": "8"}),
    )


def _write(lock: m.Lock, path: Path) -> Path:
    write_lock(identity.with_fingerprint(lock), path, "tests/unit/test_report_golden.py")
    return path


@pytest.mark.parametrize("fmt, suffix", [((), "txt"), (("--markdown",), "md")])
def test_replay_where_95_os_packages_share_one_cause(tmp_path, fmt, suffix):
    lock = _write(ubuntu_lock(95), tmp_path / "envlock.lock")
    result = run_envlock(
        "replay", str(lock), "--output-dir", str(tmp_path / "context"), "--builder", "sdk", *fmt, env=NO_ENGINE
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    # one grouped finding for the 95 packages, and the counts add up to 95
    assert text.count("95 OS packages not installed") == 1
    check_golden(f"replay-95-os-packages.{suffix}", text, tmp_path)
    if not fmt:
        assert len(text.splitlines()) <= 30  # one screen
        assert "(--verbose lists them all)" in text
        verbose = run_envlock(
            "replay", str(lock), "--output-dir", str(tmp_path / "again"), "--builder", "sdk", "-v", env=NO_ENGINE
        )
        assert all(f"libpkg{n:03d}-dev 1.{n}.0-1ubuntu1" in verbose.stdout for n in range(95))
    else:
        assert all(f"libpkg{n:03d}-dev 1.{n}.0-1ubuntu1" in text for n in range(95))  # Markdown lists every item


@pytest.mark.parametrize("fmt, suffix", [((), "txt"), (("--markdown",), "md")])
def test_diff_of_two_real_locks(tmp_path, fmt, suffix):
    result = run_envlock("diff", str(LOCKS / "cpu.lock"), str(LOCKS / "torch-cu121.lock"), *fmt)
    assert result.returncode == 1, result.stderr
    check_golden(f"diff-cpu-torch.{suffix}", result.stdout.replace(str(LOCKS), "LOCKS"), tmp_path)


def test_replay_into_a_venv_leads_with_the_python_verdict(tmp_path):
    # No package to install, so no index is needed: the venv of this interpreter, checked.
    import sys

    lock = m.Lock(
        python=m.PythonSection(
            implementation="cpython",
            version=".".join(map(str, sys.version_info[:3])),
            environment_kind="venv",
            packages=(),
        ),
        os=m.OsSection(id="debian", version_id="12", package_manager="dpkg"),
    )
    path = _write(lock, tmp_path / "envlock.lock")
    result = run_envlock("replay", str(path), "--into-venv", str(tmp_path / "venv"))
    assert result.returncode == 0, result.stdout + result.stderr  # keeping the bootstrapped pip is a note
    lines = result.stdout.replace(str(tmp_path), "TMP").splitlines()
    assert lines[:5] == [
        f"envlock replay --into-venv TMP/venv (Python {lock.python.version})",
        "verdict: the venv reproduces the lock exactly",
        "",
        f"  Python: no packages; interpreter {lock.python.version}",
        "  not in the lock: conda, OS, CUDA, runtime",
    ]
