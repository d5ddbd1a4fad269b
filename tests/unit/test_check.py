"""`envlock check`: the live environment against a lock, software layers only."""

from __future__ import annotations

import json

from envlock import records
from envlock.check import check_against
from envlock.lockfile import model as m
from tests.conftest import run_envlock
from tests.unit._capture_envs import add_dist, make_venv


def test_hardware_and_project_are_not_drift():
    lock = m.Lock(
        python=m.PythonSection(version="3.11.7", packages=(m.PythonPackage(name="six", version="1.16.0"),)),
        os=m.OsSection(id="debian", version_id="12", kernel="6.1.0-18-amd64"),
        nvidia=m.NvidiaSection(driver_present=True, driver_version="550.54.15"),
        cpu=m.CpuSection(flags=("avx2",)),
        project=m.ProjectSection(commit="a" * 40),
    )
    live = records.replace(
        lock,
        os=records.replace(lock.os, kernel="6.8.0-45-generic"),
        nvidia=m.NvidiaSection(driver_present=False),
        cpu=m.CpuSection(flags=("avx512f",)),
        project=m.ProjectSection(commit="b" * 40),
    )
    assert check_against(lock, live) == []
    drifted = records.replace(
        live, python=records.replace(lock.python, packages=(m.PythonPackage(name="six", version="1.17.0"),))
    )
    found = check_against(lock, drifted)
    assert [(f.path, f.locked, f.actual) for f in found] == [("python.packages[six]", "1.16.0", "1.17.0")]
    assert found[0].message == "six: 1.16.0 in the lock, 1.17.0 in this environment"


def test_check_a_real_venv_then_drift_it(tmp_path):
    venv = make_venv(tmp_path / "venv")
    add_dist(venv.site, "six", "1.16.0")
    lock = tmp_path / "envlock.lock"
    captured = run_envlock("capture", "-q", "--python", str(venv.python), "-o", str(lock), cwd=tmp_path)
    assert captured.returncode == 0, captured.stderr

    same = run_envlock("check", str(lock), "--python", str(venv.python), cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no drift: this environment matches the lock" in same.stdout

    add_dist(venv.site, "idna", "3.7")
    drift = run_envlock("check", str(lock), "--python", str(venv.python), "--json", cwd=tmp_path)
    assert drift.returncode == 1, drift.stderr
    findings = [f for f in json.loads(drift.stdout)["findings"] if f["status"] != "unknown"]
    assert [(f["path"], f.get("locked"), f["actual"]) for f in findings] == [("python.packages[idna]", None, "3.7")]
    quiet = run_envlock("check", str(lock), "--python", str(venv.python), "-q", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout) == (1, "")


def test_check_bad_input_exits_2(tmp_path):
    assert run_envlock("check", str(tmp_path / "missing.lock")).returncode == 2
    lock = tmp_path / "envlock.lock"
    lock.write_text('lock-version = "1.0"\n')
    nothing = run_envlock("check", str(lock))
    assert nothing.returncode == 2
    assert "records none of the layers to check" in nothing.stderr
    bad = run_envlock("check", str(lock), "--layers", "python,gpu")
    assert bad.returncode == 2
    assert "--layers: gpu is not a software layer" in bad.stderr
