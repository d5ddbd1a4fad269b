"""`envlock pin` against a package index on 127.0.0.1 that holds real PyPI wheels and changes afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from envlock import byte_verdicts as bv
from envlock.capture.artifact import parse_wheel_metadata
from envlock.index_client import IndexFile
from envlock.lockfile import load_lock
from envlock.lockfile import model as m
from envlock.wheel_select import canonical_tag, match_installed
from tests.conftest import run_envlock
from tests.loopback_index import LoopbackIndex, build_tagged_copy, real_wheel, sha256_of

SIX = "six-1.16.0-py2.py3-none-any.whl"
IDNA = "idna-3.7-py3-none-any.whl"
MARKUPSAFE = "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def _wheel(name: str) -> Path:
    try:
        return real_wheel(name)
    except FileNotFoundError as exc:
        if os.environ.get("CI") or os.environ.get("ENVLOCK_REQUIRE_DOCKER") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def _installed_tags(wheel: Path) -> tuple[tuple[str, ...], str | None]:
    """The WHEEL file inside a real wheel, as an installer leaves it in .dist-info."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/WHEEL"))
        return parse_wheel_metadata(archive.read(name).decode())


def _files(*paths: Path) -> list[IndexFile]:
    return [IndexFile(p.name, f"https://example.org/files/{p.name}", sha256_of(p)) for p in paths]


# --- tag matching against the WHEEL files of real wheels -------------------------------------


def test_manylinux_aliases_in_the_file_name_match_the_installed_tags(tmp_path: Path) -> None:
    wheel = _wheel(MARKUPSAFE)
    tags, build = _installed_tags(wheel)
    assert tags == ("cp311-cp311-manylinux2014_x86_64", "cp311-cp311-manylinux_2_17_x86_64")
    chosen, why, note = match_installed(_files(wheel), "MarkupSafe", "2.1.5", tags, build)
    assert chosen is not None and chosen.filename == MARKUPSAFE and why == "" and note is None
    # A WHEEL that names only the PEP 600 spelling still finds the file, and says how.
    chosen, _, note = match_installed(_files(wheel), "markupsafe", "2.1.5", ["cp311-cp311-manylinux_2_17_x86_64"], None)
    assert chosen is not None and note is not None and "up to manylinux aliases" in note
    # Tags that only overlap (a newer auditwheel added 2_28): taken, and said so.
    overlapping = ["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux_2_28_x86_64"]
    chosen, _, note = match_installed(_files(wheel), "markupsafe", "2.1.5", overlapping, None)
    assert chosen is not None and note is not None and "overlap" in note
    assert canonical_tag("cp311-cp311-manylinux2014_x86_64") == "cp311-cp311-manylinux_2_17_x86_64"
    assert canonical_tag("py3-none-manylinux1_i686") == "py3-none-manylinux_2_5_i686"


def test_compressed_py2_py3_tag_set_and_a_build_tagged_reupload(tmp_path: Path) -> None:
    wheel = _wheel(SIX)
    tags, build = _installed_tags(wheel)
    assert tags == ("py2-none-any", "py3-none-any") and build is None
    rebuilt = build_tagged_copy(wheel, "1", tmp_path, "six.py")
    assert rebuilt.name == "six-1.16.0-1-py2.py3-none-any.whl"
    files = _files(rebuilt, wheel)
    chosen, _, note = match_installed(files, "six", "1.16.0", tags, None)
    assert chosen is not None and chosen.filename == SIX
    assert note is not None and rebuilt.name in note and "pip would prefer" in note
    # The rebuilt file's own WHEEL names build 1: a lock captured from it pins it.
    rebuilt_tags, rebuilt_build = _installed_tags(rebuilt)
    assert rebuilt_build == "1"
    chosen, _, _ = match_installed(files, "six", "1.16.0", rebuilt_tags, rebuilt_build)
    assert chosen is not None and chosen.filename == rebuilt.name


def test_no_matching_file_says_what_the_index_has(tmp_path: Path) -> None:
    wheel = _wheel(MARKUPSAFE)
    chosen, why, _ = match_installed(_files(wheel), "markupsafe", "2.1.5", ["cp312-cp312-manylinux_2_17_x86_64"], None)
    assert chosen is None
    assert "cp312-cp312-manylinux_2_17_x86_64" in why and MARKUPSAFE in why
    assert match_installed(_files(wheel), "markupsafe", "9.9", ["py3-none-any"], None)[1] == "no such version"


# --- byte verdicts (pure) -----------------------------------------------------------------


def _pkg(name: str, version: str, digest: str | None, build: str | None = None) -> m.PythonPackage:
    return m.PythonPackage(name=name, version=version, content_digest=digest, build_tag=build)


def test_byte_verdicts_and_the_top_line() -> None:
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    locked = m.PythonSection(
        packages=(
            _pkg("a", "1.0", d1),
            _pkg("b", "1.0", d1),
            _pkg("c", "1.0", d1),
            _pkg("d", "1.0", d1),
            _pkg("e", "1", None),
        )
    )
    image = m.PythonSection(
        packages=(_pkg("A", "1.0", d1), _pkg("b", "1.0", d2, build="1"), _pkg("c", "2.0", d2), _pkg("e", "1", d1))
    )
    verdicts = {v.name: v.verdict for v in bv.byte_verdicts(locked, image)}
    assert verdicts == {
        "a": bv.IDENTICAL,
        "b": bv.DIFFERENT_BYTES,
        "c": bv.DIFFERENT_VERSION,
        "d": bv.MISSING,
        "e": bv.NO_DIGEST,
    }
    line = bv.summary_line(bv.byte_verdicts(locked, image))
    assert line == (
        "1 of 5 Python distributions byte-identical (1 same version with different bytes, 1 different version, "
        "1 missing, 1 without a digest to compare)"
    )
    no_digests = m.PythonSection(packages=(_pkg("a", "1.0", None),))
    assert bv.summary_line(bv.byte_verdicts(no_digests, image)) is None
    (finding,) = bv.byte_findings(bv.byte_verdicts(locked, image))
    assert finding.path == "python.packages[b]" and "same version, different bytes" in finding.message
    assert "build tag 1 instead of none" in finding.message


# --- envlock pin, end to end, against the loopback index ------------------------------------


def _venv_from_index(path: Path, index: str, *requirements: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, capture_output=True)
    pip_wheel = next((Path(sys.base_prefix) / "lib").glob("python3*/ensurepip/_bundled/pip-*.whl"), None)
    if pip_wheel is None:
        import ensurepip

        pip_wheel = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))[0]
    subprocess.run(
        [str(path / "bin/python"), f"{pip_wheel}/pip", "install", "--isolated", "--no-deps", "--no-compile"]
        + ["--index-url", index, *requirements],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return path / "bin" / "python"


def _pkg_of(lock_path: Path, name: str) -> m.PythonPackage:
    lock = load_lock(lock_path).lock
    assert lock.python is not None
    return next(p for p in lock.python.packages if p.name == name)


def test_pin_records_exact_files_and_keeps_them_when_the_index_moves(tmp_path: Path) -> None:
    six, idna = _wheel(SIX), _wheel(IDNA)
    lock_path = tmp_path / "envlock.lock"
    with LoopbackIndex(tmp_path / "index") as index:
        index.add(six, "2021-05-05T14:18:17.123456Z")
        index.add(idna)
        python = _venv_from_index(tmp_path / "venv", index.url, "six==1.16.0", "idna==3.7")
        captured = run_envlock(
            "capture", "--python", str(python), "-o", str(lock_path), "--pin", "--index-url", index.url
        )
        assert captured.returncode == 0, captured.stdout + captured.stderr
        assert "python: 2 of 2 pinned to exact files" in captured.stdout
        pinned = _pkg_of(lock_path, "six")
        assert pinned.file == SIX
        assert pinned.file_sha256 == "sha256:" + sha256_of(six)
        assert pinned.file_size == six.stat().st_size
        assert pinned.file_upload_time == "2021-05-05T14:18:17.123456Z"
        assert pinned.file_url == f"{index.url.rsplit('/', 1)[0]}/files/{SIX}"
        assert pinned.wheel_tags == ("py2-none-any", "py3-none-any") and pinned.content_digest
        first = load_lock(lock_path).lock.fingerprint

        # Months later: a rebuilt six with a build tag (pip would take it), idna deleted.
        index.add(build_tagged_copy(six, "1", tmp_path, "six.py"))
        index.remove(IDNA)
        again = run_envlock("pin", str(lock_path), "--index-url", index.url)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "python: 1 of 2 pinned to exact files" in again.stdout
    assert f"chose {SIX}" in again.stdout and "six-1.16.0-1-py2.py3-none-any.whl" in again.stdout
    assert "python.packages[idna]" in again.stdout and "3.7 not on" in again.stdout
    assert _pkg_of(lock_path, "six").file_sha256 == "sha256:" + sha256_of(six)
    # The file is gone from the index, but the lock keeps which bytes were installed.
    assert _pkg_of(lock_path, "idna").file == IDNA
    assert _pkg_of(lock_path, "idna").file_sha256 == "sha256:" + sha256_of(idna)
    assert f"idna 3.7 keeps its earlier pin ({IDNA}" in again.stdout
    # Nothing the lock records has changed: the pins (and so the fingerprint) are the same.
    assert load_lock(lock_path).lock.fingerprint == first


def test_pin_refuses_a_bad_index_url_and_leaves_the_lock_alone(tmp_path: Path) -> None:
    lock_path = tmp_path / "envlock.lock"
    lock_path.write_text('lock-version = "1.0"\n')
    before = lock_path.read_bytes()
    result = run_envlock("pin", str(lock_path), "--index-url", "ftp://mirror/simple")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--index-url" in result.stderr
    assert lock_path.read_bytes() == before


# --- replay's side: a pinned package is never resolved again -----------------------------------


def test_a_pinned_file_is_kept_a_gone_one_named_a_yanked_one_installed_with_its_reason(tmp_path: Path) -> None:
    from envlock import resolve

    six, idna, markupsafe = _wheel(SIX), _wheel(IDNA), _wheel(MARKUPSAFE)
    with LoopbackIndex(tmp_path / "index") as index:
        for wheel in (six, idna, markupsafe):
            index.add(wheel)
        files = f"{index.url.rsplit('/', 1)[0]}/files"

        def pinned(name: str, version: str, wheel: Path) -> m.PythonPackage:
            return m.PythonPackage(
                name=name,
                version=version,
                file=wheel.name,
                file_url=f"{files}/{wheel.name}",
                file_sha256="sha256:" + sha256_of(wheel),
                file_index=index.url,
            )

        locked = [pinned("six", "1.16.0", six), pinned("idna", "3.7", idna), pinned("markupsafe", "2.1.5", markupsafe)]
        index.add(build_tagged_copy(six, "1", tmp_path, "six.py"))
        index.remove(IDNA)
        index.yank(MARKUPSAFE, "broken on 3.13")
        target = resolve.Target((3, 11), "cp311", ("cp311",), ("manylinux_2_17_x86_64", "linux_x86_64"))
        pins = resolve.resolve_packages(locked, target, index_url=index.url)
        fetched = resolve.fetch_machine_local(pins, tmp_path / "cache")
    by_name = {p.name: p for p in fetched.pins}
    assert by_name["six"].filename == SIX and by_name["six"].sha256 == sha256_of(six)
    assert Path(by_name["six"].wheelhouse_file or "").read_bytes() == six.read_bytes()
    assert by_name["markupsafe"].yanked and by_name["markupsafe"].yanked_reason == "broken on 3.13"
    (gone,) = fetched.problems
    assert (gone.name, gone.kind, gone.filename, gone.sha256) == ("idna", "gone", IDNA, sha256_of(idna))
    messages = {f.path: f for f in fetched.to_findings()}
    idna_finding = messages["python.packages[idna]"]
    assert IDNA in idna_finding.message and sha256_of(idna) in idna_finding.message and "3.7" in idna_finding.message
    assert idna_finding.fix and "envlock pack" in idna_finding.fix and "--find-links" in idna_finding.fix
    assert "broken on 3.13" in messages["python.packages[markupsafe]"].message


def test_check_names_the_files_of_a_rebuilt_wheel_with_the_same_version(tmp_path: Path) -> None:
    """The venv's six is replaced by the build-tagged re-upload: same version, other bytes, six.py named."""
    six, idna = _wheel(SIX), _wheel(IDNA)
    env = {"ENVLOCK_CACHE_DIR": str(tmp_path / "envlock-cache")}
    lock_path = tmp_path / "envlock.lock"
    with LoopbackIndex(tmp_path / "index") as index:
        index.add(six)
        index.add(idna)
        python = _venv_from_index(tmp_path / "venv", index.url, "six==1.16.0", "idna==3.7")
        pinned = run_envlock(
            "capture", "--python", str(python), "-o", str(lock_path), "--pin", "--index-url", index.url, env=env
        )
        assert pinned.returncode == 0, pinned.stdout + pinned.stderr
        same = run_envlock("check", str(lock_path), "--python", str(python), "--layers", "python", env=env)
        assert same.returncode == 0, same.stdout + same.stderr
        assert same.stdout.startswith("2 of 2 Python distributions byte-identical")

        rebuilt = build_tagged_copy(six, "1", tmp_path, "six.py")
        pip_wheel = sorted(Path(sys.base_prefix, "lib").glob("python3*/ensurepip/_bundled/pip-*.whl"))[0]
        subprocess.run(
            [str(python), f"{pip_wheel}/pip", "install", "--isolated", "--no-deps", "--no-index", "--force-reinstall"]
            + ["--no-compile", str(rebuilt)],
            check=True,
            capture_output=True,
        )
        drift = run_envlock("check", str(lock_path), "--python", str(python), "--layers", "python", env=env)
        report = run_envlock("check", str(lock_path), "--python", str(python), "--layers", "python", "--json", env=env)
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert drift.stdout.startswith("1 of 2 Python distributions byte-identical (1 same version with different bytes)")
    import json

    messages = [f["message"] for f in json.loads(report.stdout)["findings"]]
    (different,) = [text for text in messages if "different bytes" in text]
    assert different == (
        "six 1.16.0: same version, different bytes (build tag 1 instead of none); "
        "files that differ: six-1.16.0.dist-info/WHEEL, six.py"
    )
