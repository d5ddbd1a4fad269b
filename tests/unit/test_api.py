"""The Python API (``import envlock``): capture, load, save, diff, check, and the MLflow recipe.

The recipe of docs/python-api.md is run as written against a real MLflow file
store (``mlflow-skinny``): capture, save next to the results, log as an
artifact, download it again and compare it with the live environment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

import envlock
from envlock import records
from envlock.errors import EnvlockError
from envlock.findings import EXACT, INFO, UNKNOWN
from envlock.lockfile import model as m
from tests.unit.replay_data import LOCKS

# `envlock --help` must answer within 0.15 s (benchmarks/RESULTS.md); it measures
# 0.03 s as a whole process there.  `import envlock` alone measured 0.2-2 ms in a
# fresh interpreter here (python -X importtime, warm and cold): the bound below
# is the whole --help budget, so only an import that drags in the package's
# modules (tens of ms) or a dependency could approach it.
HELP_BUDGET_S = 0.15


def _mismatches(findings):
    return [f for f in findings if f.status not in (EXACT, UNKNOWN) and f.severity != INFO]


def test_import_envlock_is_fast_and_imports_nothing_else(tmp_path):
    probe = (
        "import sys, time\n"
        "before = set(sys.modules)\n"
        "start = time.perf_counter()\n"
        "import envlock\n"
        "took = time.perf_counter() - start\n"
        "new = sorted(set(sys.modules) - before)\n"
        "print(took)\n"
        "print(' '.join(new))\n"
        "print(' '.join(envlock.__all__))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True, timeout=60
    )
    took, new, exported = result.stdout.splitlines()
    assert float(took) < HELP_BUDGET_S
    assert new.split() == ["envlock"]  # no submodule, no dependency: nothing runs on import
    assert exported.split() == ["capture", "check", "diff", "load", "save"]
    assert list(tmp_path.iterdir()) == []  # and nothing is written


def test_save_and_load_round_trip(tmp_path):
    lock = envlock.load(LOCKS / "cpu.lock")
    path = tmp_path / "envlock.lock"
    envlock.save(lock, path)
    again = envlock.load(path)
    assert again.python == lock.python and again.os == lock.os
    assert envlock.diff(lock, again) == []
    assert envlock.diff(path, LOCKS / "cpu.lock") == []  # paths are accepted as well


def test_save_refuses_a_lock_the_loader_would_refuse_and_leaves_the_file(tmp_path):
    path = tmp_path / "envlock.lock"
    path.write_text("previous content\n", encoding="utf-8")
    bad = m.Lock(runtime=m.RuntimeSection(env={"PATH": "/evil"}))
    with pytest.raises(EnvlockError) as info:
        envlock.save(bad, path)
    assert "runtime.env" in info.value.message and "PATH" in info.value.message
    assert path.read_text(encoding="utf-8") == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["envlock.lock"]  # no temporary file left


def test_load_reports_what_the_cli_reports(tmp_path):
    path = tmp_path / "envlock.lock"
    path.write_text('lock-version = "1.0"\nnvidia = 3\n', encoding="utf-8")
    with pytest.raises(EnvlockError) as info:
        envlock.load(path)
    assert isinstance(info.value, ValueError)
    cli = subprocess.run(
        [sys.executable, "-m", "envlock", "show", str(path)], capture_output=True, text=True, timeout=60
    )
    assert cli.returncode == 2 and info.value.message in cli.stderr


def test_capture_is_private_and_check_finds_no_drift_in_itself():
    lock = envlock.capture()
    text = json.dumps(envlock.lockfile.to_dict(lock))
    host = socket.gethostname()
    if len(host) >= 6:  # a short name ("vm") is a substring of unrelated text
        assert host not in text
    user = os.environ.get("USER") or os.environ.get("LOGNAME")
    if user and len(user) > 3:
        assert f"/{user}/" not in text
    assert lock.python.version == ".".join(map(str, sys.version_info[:3]))
    assert _mismatches(envlock.check(lock)) == []
    # still callable once the capture package is imported (Python binds the package's name)
    assert type(envlock.capture).__name__ == "CallableModule"
    assert envlock.capture().python.packages == lock.python.packages


def test_diff_of_two_real_locks_is_the_cli_diff():
    found = envlock.diff(LOCKS / "cpu.lock", LOCKS / "torch-cu121.lock")
    cli = subprocess.run(
        [sys.executable, "-m", "envlock", "diff", "--json", str(LOCKS / "cpu.lock"), str(LOCKS / "torch-cu121.lock")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 1
    assert [f.path for f in found] == [f["path"] for f in json.loads(cli.stdout)["findings"]]


def test_diff_rejects_what_is_not_a_lock():
    with pytest.raises(TypeError, match="expected an envlock Lock or a lockfile path"):
        envlock.diff(42, 43)


# --- the MLflow recipe (docs/python-api.md) ------------------------------------------------


@pytest.fixture
def mlflow_module(monkeypatch):
    try:
        import mlflow
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("mlflow-skinny is a test dependency (pip install -e '.[test]')")
        pytest.skip("mlflow-skinny is not installed")
    # MLflow 3 keeps the file store only on request; the recipe's readers may use it.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return mlflow


def test_lock_recorded_with_an_mlflow_run_is_compared_with_the_live_environment(mlflow_module, tmp_path):
    mlflow = mlflow_module
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    results = tmp_path / "results"
    results.mkdir()
    # the recipe, as documented
    with mlflow.start_run() as run:
        lock_path = results / "envlock.lock"
        envlock.save(envlock.capture(), lock_path)
        mlflow.log_artifact(str(lock_path))
    # later: the run's lock, from the store
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="envlock.lock", dst_path=str(tmp_path / "download")
    )
    assert Path(downloaded).read_bytes() == lock_path.read_bytes()
    recorded = envlock.load(downloaded)
    assert _mismatches(envlock.check(recorded)) == []
    assert _mismatches(envlock.diff(recorded, envlock.capture())) == []
    # and a record whose environment differs shows it: one package fewer in the record
    gone = recorded.python.packages[0]
    trimmed = records.replace(recorded, python=records.replace(recorded.python, packages=recorded.python.packages[1:]))
    found = _mismatches(envlock.diff(trimmed, envlock.capture()))
    assert [f.path for f in found] == [f"python.packages[{canonicalize_name(gone.name)}]"]
