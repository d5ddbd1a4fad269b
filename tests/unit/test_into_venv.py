"""``envlock replay --into-venv DIR``: the Python layer into a fresh virtualenv, hash-checked.

The real thing: pip downloads six and idna from PyPI (marked ``network``) and
checks them against the sha256 values the resolver recorded from PyPI's own
file list (tests/data/lockfiles/cpu.pins.json).  pip runs ``--isolated``, so
this machine's pip.conf (local extra indexes, find-links, a constraint file)
cannot take part; the proxy's CA comes from PIP_CERT.
"""

from __future__ import annotations

import platform
import re

import pytest

from envlock import records
from envlock.errors import ReplayError, UsageError
from envlock.findings import EXACT, NOT_REPRODUCIBLE
from envlock.lockfile import Lock, OsPackage, OsSection, PythonPackage, PythonSection, RuntimeSection, dumps_lock
from envlock.replay.venv import replay_into_venv
from envlock.resolve import PinSet
from tests.conftest import run_envlock
from tests.unit.replay_data import pins

SMALL = Lock(
    python=PythonSection(
        implementation="cpython",
        version=platform.python_version(),
        packages=(
            PythonPackage("idna", "3.7", installer="pip"),
            PythonPackage("pip", "24.0", installer="pip"),
            PythonPackage("six", "1.16.0", installer="pip"),
        ),
    ),
    os=OsSection(id="debian", version_id="12", packages=(OsPackage("curl", "7.88.1-10+deb12u5", manual=True),)),
    runtime=RuntimeSection(env={"OMP_NUM_THREADS": "1"}),
)


def _small_pins() -> PinSet:
    recorded = pins("cpu")
    return PinSet(pins=tuple(p for p in recorded.pins if p.name in ("idna", "pip", "six")))


@pytest.mark.network
@pytest.mark.slow
def test_small_lock_into_a_fresh_venv(tmp_path):
    target = tmp_path / "venv"
    result = replay_into_venv(SMALL, target, _small_pins())
    assert result.installed["six"] == "1.16.0"
    assert result.installed["idna"] == "3.7"
    assert result.installed["pip"] == "24.0"  # the locked pip replaced the one the venv bootstrapped
    assert "setuptools" not in result.installed  # bootstrapped, not locked: removed
    assert (target / "bin" / "python").exists()
    assert (target / "lib").is_dir()
    import subprocess

    done = subprocess.run(
        [
            str(target / "bin" / "python"),
            "-c",
            "import six, idna, pip; print(six.__version__, idna.__version__, pip.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["1.16.0", "3.7", "24.0"]
    statuses = {f.path: f.status for f in result.findings}
    assert statuses["python.packages"] == EXACT
    assert statuses["python.version"] == EXACT
    # every other layer is reported, as not replayed
    assert statuses["os"] == NOT_REPRODUCIBLE and statuses["runtime"] == NOT_REPRODUCIBLE
    assert result.exit_code == 0


@pytest.mark.network
@pytest.mark.slow
def test_a_tampered_hash_fails_cleanly_and_leaves_nothing(tmp_path):
    good = _small_pins()
    tampered = PinSet(pins=tuple(records.replace(p, sha256="0" * 64) if p.name == "six" else p for p in good.pins))
    target = tmp_path / "venv"
    with pytest.raises(ReplayError) as info:
        replay_into_venv(SMALL, target, tampered)
    assert "DO NOT MATCH THE HASHES" in info.value.message
    assert "sha256 differs" in info.value.hint
    assert not target.exists()


@pytest.mark.network
@pytest.mark.slow
def test_small_lock_into_a_fresh_venv_with_uv(tmp_path):
    from envlock.replay import uv_tool

    uv = uv_tool.find_uv(uv_tool.host_arch() or "none")
    if uv is None:
        pytest.skip("uv has no wheel for this machine")
    target = tmp_path / "venv"
    result = replay_into_venv(SMALL, target, _small_pins(), uv=uv)
    assert result.installed == {"idna": "3.7", "pip": "24.0", "six": "1.16.0"}  # no setuptools: never bootstrapped
    assert result.exit_code == 0
    assert list((target / "lib").glob("python3.*/site-packages/__pycache__/six.*.pyc"))  # compiled at install
    tampered = PinSet(
        pins=tuple(records.replace(p, sha256="0" * 64) if p.name == "six" else p for p in _small_pins().pins)
    )
    with pytest.raises(ReplayError) as info:
        replay_into_venv(SMALL, tmp_path / "bad", tampered, uv=uv)
    assert "Hash mismatch" in info.value.message and "sha256 differs" in info.value.hint
    assert not (tmp_path / "bad").exists()


@pytest.mark.network
@pytest.mark.slow
def test_cli_into_venv_with_a_tampered_lock_exits_2_without_a_traceback(tmp_path):
    # A package installed from a URL carries its archive hash in the lock; change it.
    six = next(p for p in pins("cpu").pins if p.name == "six")
    lock = Lock(
        python=PythonSection(
            version=platform.python_version(),
            packages=(PythonPackage("six", "1.16.0", source="url", url=six.url, archive_hash="sha256:" + "e" * 64),),
        )
    )
    path = tmp_path / "tampered.lock"
    path.write_text(dumps_lock(lock), encoding="utf-8")
    target = tmp_path / "venv"
    done = run_envlock("replay", str(path), "--into-venv", str(target), timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    # The CLI installs with uv (issue 13) where this machine has its wheel; pip's words otherwise.
    assert "Hash mismatch" in done.stderr or "DO NOT MATCH THE HASHES" in done.stderr
    assert "its sha256 differs" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not target.exists()


def test_a_non_empty_directory_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="exists and is not empty"):
        replay_into_venv(SMALL, tmp_path, _small_pins())
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_another_python_minor_is_refused_with_a_hint(tmp_path):
    old = records.replace(SMALL, python=records.replace(SMALL.python, version="2.7.18"))
    with pytest.raises(ReplayError, match=r"the lock needs Python 2\.7") as info:
        replay_into_venv(old, tmp_path / "venv", _small_pins())
    assert re.search(r"--python PATH", info.value.hint)
    assert not (tmp_path / "venv").exists()
