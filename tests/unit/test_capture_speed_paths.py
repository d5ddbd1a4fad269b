"""The shortcuts that keep capture fast give what the plain paths give.

The lock written from ``capture_lock_data`` (data computed once) equals the
one ``codec`` would write; the cached OS package list and RECORD library
lists equal a fresh read, and a changed database file is read again; the
temporary-file writer behaves as ``tempfile.mkstemp`` did.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from envlock.capture import fatbin, os_packages
from envlock.capture.background import Background
from envlock.capture.collect import CaptureContext, capture_lock_data
from envlock.capture.distributions import scan_distributions
from envlock.capture.interpreter import inspect_interpreter, inspect_interpreter_in_background
from envlock.errors import EnvlockError, UsageError
from envlock.lockfile import codec, dumps_lock, identity, parse_lock, write
from envlock.paths import pure_path_text
from tests.unit._capture_envs import add_dist, make_venv


def test_lock_data_is_to_dict_of_the_lock_with_its_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    venv = make_venv(tmp_path / "venv")
    add_dist(venv.site, "demo", "1.0", requested=True)
    lock, data = capture_lock_data(str(venv.python), project_dir=str(tmp_path))
    assert data == codec.to_dict(lock)
    assert list(data) == list(codec.to_dict(lock))  # key order decides the file's layout
    assert lock.fingerprint == identity.fingerprint(lock)
    text = write.dumps_lock_data(data, "envlock capture")
    assert text == dumps_lock(lock, "envlock capture")
    loaded = parse_lock(text.encode())
    assert loaded.lock == lock and loaded.warnings == []


def test_background_hands_back_the_value_or_the_exception():
    assert Background(lambda a, b: a + b, 2, 3, name="t").result() == 5
    assert Background.done("ready").result() == "ready"

    def fail() -> None:
        raise UsageError("no such interpreter")

    pending = Background(fail, name="t")
    with pytest.raises(UsageError, match="no such interpreter"):
        pending.result()


def test_a_bad_python_path_is_refused_at_once(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        inspect_interpreter_in_background(str(tmp_path / "missing" / "python"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no bin/python"):
        inspect_interpreter_in_background(str(tmp_path / "empty"))


def test_an_interpreter_that_will_not_run_fails_when_asked_for_its_answer(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    pending = inspect_interpreter_in_background(str(fake))
    with pytest.raises(UsageError, match="could not run it"):
        pending.result()


def test_a_venv_given_with_odd_spelling_is_the_same_interpreter(tmp_path):
    venv = make_venv(tmp_path / "venv")
    plain = inspect_interpreter(str(venv.python))
    odd = inspect_interpreter(str(venv.path) + "//./bin/./python")
    assert odd == plain
    assert inspect_interpreter(str(venv.path) + "/") == plain  # the directory: bin/python inside it


# --- the OS package cache -----------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/var/lib/dpkg/status"), reason="needs a dpkg system")
def test_cached_os_packages_equal_a_fresh_read_and_keep_their_warnings(tmp_path, monkeypatch):
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    fresh_warnings: list[str] = []
    fresh = os_packages._read_os_packages("/", fresh_warnings.append)
    first_warnings: list[str] = []
    first = os_packages.collect_os_packages("/", warn=first_warnings.append)
    assert (tmp_path / "cache" / os_packages._CACHE_FILE).is_file()
    cached_warnings: list[str] = []
    cached = os_packages.collect_os_packages("/", warn=cached_warnings.append)
    assert first == cached == fresh and len(fresh[1]) > 50
    assert first_warnings == cached_warnings == fresh_warnings


@pytest.mark.skipif(not os.path.exists("/var/lib/dpkg/status"), reason="needs a dpkg system")
def test_an_answer_for_other_database_files_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    real = os_packages.collect_os_packages("/", warn=lambda _m: None)
    path = tmp_path / "cache" / os_packages._CACHE_FILE
    data = json.loads(path.read_text())
    # The answer as it would be stored for a status file of another size (dpkg wrote a new one).
    data["identity"][0][1] += 1
    data["packages"] = [["stale", "1.0", "amd64", True]]
    path.write_text(json.dumps(data))
    assert os_packages.collect_os_packages("/", warn=lambda _m: None) == real
    # A damaged cache file is no answer either.
    path.write_text("{not json")
    assert os_packages.collect_os_packages("/", warn=lambda _m: None) == real


def test_no_cache_for_a_recorded_host_or_when_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "host"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n"
    )
    assert os_packages.collect_os_packages(str(root), warn=lambda _m: None)[0] == "dpkg"
    monkeypatch.setenv("ENVLOCK_NO_CACHE", "1")
    os_packages.collect_os_packages("/", warn=lambda _m: None)
    assert not (tmp_path / "cache").exists()


# --- the RECORD library lists in the kernel cache ------------------------------------------


def test_record_library_lists_are_cached_until_record_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    site = tmp_path / "site-packages"
    info = add_dist(site, "demo", "1.0")
    (info / "RECORD").write_text("demo/_ext.so,,\ndemo/__init__.py,,\n")
    ctx = CaptureContext(inspect_interpreter(None), scan_distributions([str(site)]))
    cache = fatbin.KernelCache()
    assert fatbin._dist_libraries(ctx.dists[0], cache) == [str(site / "demo" / "_ext.so")]
    cache.save()
    # One line for the site directory, however many distributions it holds.
    lines = (tmp_path / "xdg" / "envlock" / fatbin.CACHE_FILE).read_text().splitlines()
    assert [line.split("\t")[0] for line in lines[1:]] == ["S" + json.dumps(str(site))]
    reread = fatbin.KernelCache()
    (fresh,) = scan_distributions([str(site)])
    assert fatbin._dist_libraries(fresh, reread) == [str(site / "demo" / "_ext.so")]
    assert fresh._record_libraries is None  # served from the cache: RECORD was not read
    (info / "RECORD").write_text("demo/_ext.so,,\ndemo/_other.so.1,,\n")
    (changed,) = scan_distributions([str(site)])
    assert fatbin._dist_libraries(changed, reread) == [
        str(site / "demo" / "_ext.so"),
        str(site / "demo" / "_other.so.1"),
    ]


def test_kernel_cache_ignores_lines_it_cannot_read(tmp_path):
    path = tmp_path / "kernels.tsv"
    path.write_text(
        fatbin.CACHE_HEADER + '\nF"/x.so"\t{broken\nnonsense\nS"/site"\t[1]\nS"/other"\t{"/other/a/RECORD": 5}\n'
    )
    cache = fatbin.KernelCache(path)
    assert cache.get("/x.so", [1, 2, 3]) is None
    assert cache.get_libraries("/site/a.dist-info/RECORD", [1, 2, 3]) is None
    assert cache.get_libraries("/other/a/RECORD", [1, 2, 3]) is None
    path.write_text("another format\n")
    assert fatbin.KernelCache(path).entries == {}


# --- writing without tempfile ----------------------------------------------------------------


def test_atomic_write_makes_a_private_temporary_and_keeps_the_target_mode(tmp_path, monkeypatch):
    target = tmp_path / "envlock.lock"
    seen: list[tuple[str, int]] = []
    real_replace = os.replace

    def watch(src, dst):  # the temporary as it is renamed into place
        seen.append((os.path.basename(src), stat.S_IMODE(os.stat(src).st_mode)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watch)
    write.atomic_write_text(target, "one\n")
    assert target.read_text() == "one\n"
    name, _mode = seen[0]
    assert name.startswith(".envlock.lock.") and name.endswith(".tmp") and len(name) == len(".envlock.lock.") + 8 + 4
    os.chmod(target, 0o640)
    write.atomic_write_text(str(target), "two\n")
    assert target.read_text() == "two\n" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["envlock.lock"]


def test_atomic_write_errors_name_the_path_as_given(tmp_path):
    with pytest.raises(EnvlockError, match=r"cannot write .*/missing/x\.lock: the directory .*/missing does not exist"):
        write.atomic_write_text(str(tmp_path) + "//missing/./x.lock", "x")
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        # root may write into a read-only directory; no one may create a file in /proc.
        unwritable = tmp_path / "ro" if not os.access(tmp_path / "ro", os.W_OK) else Path("/proc")
        with pytest.raises(EnvlockError, match=f"cannot write {unwritable}/x.lock: "):
            write.atomic_write_text(unwritable / "x.lock", "x")
        assert not (tmp_path / "ro").exists() or os.listdir(tmp_path / "ro") == []
    finally:
        os.chmod(tmp_path / "ro", 0o700)


@pytest.mark.parametrize("spelling", ["a/./b", "a//b/", "./a", "a/../b", "//a//b", "/", "", "."])
def test_pure_path_text_spells_paths_as_pathlib_does(spelling):
    from pathlib import PurePosixPath

    assert pure_path_text(spelling) == str(PurePosixPath(spelling))


def test_a_trailing_slash_writes_the_file_as_before(tmp_path):
    write.atomic_write_text(str(tmp_path / "out.lock") + "/", "x\n")
    assert Path(tmp_path / "out.lock").read_text() == "x\n"
