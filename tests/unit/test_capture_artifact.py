"""Wheel tags, build tags and the content digest, read offline from what an installer left (issue 11)."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envlock.capture.artifact import (
    content_digest,
    digest_lines,
    expand_tag,
    files_differing_from_record,
    parse_wheel_metadata,
    read_artifact,
)

WHEELS = Path(__file__).resolve().parent.parent / "data" / "wheel_metadata"


# --- WHEEL files as real wheels ship them ---------------------------------------------------


@pytest.mark.parametrize(
    ("wheel_file", "tags"),
    [
        # bdist_wheel wrote py2.py3 as two Tag lines.
        ("six-1.16.0.WHEEL", ("py2-none-any", "py3-none-any")),
        # auditwheel: one build, three manylinux names (two aliases of glibc 2.17, one 2.28).
        (
            "markupsafe-3.0.4.WHEEL",
            (
                "cp311-cp311-manylinux2014_x86_64",
                "cp311-cp311-manylinux_2_17_x86_64",
                "cp311-cp311-manylinux_2_28_x86_64",
            ),
        ),
        ("numpy-2.4.6.WHEEL", ("cp311-cp311-manylinux_2_27_x86_64", "cp311-cp311-manylinux_2_28_x86_64")),
        (
            "nvidia_cuda_runtime_cu12-12.8.90.WHEEL",
            ("py3-none-manylinux2014_x86_64", "py3-none-manylinux_2_17_x86_64"),
        ),
    ],
)
def test_wheel_tags_from_real_wheel_files(wheel_file: str, tags: tuple[str, ...]) -> None:
    assert parse_wheel_metadata((WHEELS / wheel_file).read_text()) == (tags, None)


def test_build_tag_and_a_compressed_tag_line() -> None:
    # six's WHEEL as `wheel tags --build 1 --python-tag py2.py3` rewrites it.
    text = (WHEELS / "six-1.16.0.WHEEL").read_text().replace("Tag: py2-none-any\nTag: py3-none-any\n", "")
    text += "Build: 1\nTag: py2.py3-none-any\n"
    assert parse_wheel_metadata(text) == (("py2-none-any", "py3-none-any"), "1")


def test_expand_tag_sets() -> None:
    assert expand_tag("py2.py3-none-any") == ["py2-none-any", "py3-none-any"]
    assert expand_tag("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64") == [
        "cp311-cp311-manylinux_2_17_x86_64",
        "cp311-cp311-manylinux2014_x86_64",
    ]
    assert expand_tag("not-a-tag-at-all") == []
    assert expand_tag("py3--any") == []


# --- the content digest ------------------------------------------------------------------


def _digest_of(text: str) -> str:
    return content_digest(digest_lines(text.encode()))


RECORD = (
    "demo/__init__.py,sha256=AAAA,10\r\n"
    "demo/__pycache__/__init__.cpython-311.pyc,sha256=BBBB,20\r\n"
    "demo-1.0.dist-info/INSTALLER,sha256=CCCC,4\r\n"
    "demo-1.0.dist-info/REQUESTED,sha256=DDDD,0\r\n"
    "demo-1.0.dist-info/direct_url.json,sha256=EEEE,50\r\n"
    "demo-1.0.dist-info/uv_cache.json,sha256=KKKK,90\r\n"
    "demo-1.0.dist-info/METADATA,sha256=FFFF,60\r\n"
    "demo-1.0.dist-info/RECORD,,\r\n"
    "../../../bin/demo,sha256=GGGG,200\r\n"
    "../../../share/demo/data.txt,sha256=HHHH,7\r\n"
    '"demo/with,comma.py",sha256=IIII,8\r\n'
)


def test_digest_covers_exactly_the_defined_rows() -> None:
    kept = [line.decode() for line in digest_lines(RECORD.encode())]
    assert kept == [
        "../../../share/demo/data.txt,sha256=HHHH,7",
        "demo-1.0.dist-info/METADATA,sha256=FFFF,60",
        "demo/__init__.py,sha256=AAAA,10",
        "demo/with,comma.py,sha256=IIII,8",
    ]
    expected = hashlib.sha256("".join(line + "\n" for line in kept).encode()).hexdigest()
    assert _digest_of(RECORD) == "sha256:" + expected


def test_digest_ignores_row_order_line_ends_and_per_machine_rows() -> None:
    reordered = "\n".join(reversed(RECORD.split("\r\n"))) + "\n"
    other_installer = RECORD.replace("sha256=CCCC,4", "sha256=ZZZZ,3").replace("sha256=GGGG,200", "sha256=YYYY,190")
    without_pyc = "".join(line for line in RECORD.splitlines(keepends=True) if ".pyc" not in line)
    assert _digest_of(reordered) == _digest_of(other_installer) == _digest_of(without_pyc) == _digest_of(RECORD)


def test_digest_changes_with_any_installed_file() -> None:
    assert _digest_of(RECORD.replace("AAAA", "AAAB")) != _digest_of(RECORD)
    assert _digest_of(RECORD.replace("HHHH,7", "HHHH,8")) != _digest_of(RECORD)
    assert _digest_of(RECORD + "demo/extra.py,sha256=JJJJ,1\r\n") != _digest_of(RECORD)


def _bundled_pip_wheel() -> Path:
    import ensurepip

    bundled = Path(ensurepip.__file__).parent / "_bundled"
    wheels = sorted(bundled.glob("pip-*.whl"))
    if not wheels:
        pytest.skip("this Python ships no bundled pip wheel")
    return wheels[0]


def _pip_install(wheel: Path, prefix: Path, *extra: str) -> Path:
    """Install ``wheel`` into a new venv at ``prefix`` with the pip inside that wheel (nothing else touched)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True, capture_output=True)
    subprocess.run(
        [str(prefix / "bin" / "python"), f"{wheel}/pip", "install", "--isolated", "--no-index", "--no-deps"]
        + list(extra)
        + [str(wheel)],
        check=True,
        capture_output=True,
    )
    return next(prefix.glob("lib/python3*/site-packages"))


@pytest.fixture(scope="module")
def two_installs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """pip's own wheel installed by pip with and without byte-compiling, into two venvs."""
    wheel = _bundled_pip_wheel()
    tmp = tmp_path_factory.mktemp("installs")
    return wheel, _pip_install(wheel, tmp / "a"), _pip_install(wheel, tmp / "b", "--no-compile")


def test_same_wheel_installed_twice_differently_gives_one_digest(two_installs: tuple[Path, Path, Path]) -> None:
    """pip's own wheel (console scripts, data in .dist-info) installed with and without .pyc files,
    under two prefixes (so the scripts' shebangs differ): one digest; a file changed or removed
    after installing is found by re-hashing the files on disk."""
    _wheel, site_a, site_b = two_installs
    tmp_path = site_a.parents[2].parent
    (info_a,) = site_a.glob("pip-*.dist-info")
    (info_b,) = site_b.glob("pip-*.dist-info")
    assert "bin/pip" in (info_a / "RECORD").read_text()
    assert (tmp_path / "a/bin/pip").read_text() != (tmp_path / "b/bin/pip").read_text()
    found_a = read_artifact(str(info_a))
    found_b = read_artifact(str(info_b))
    assert found_a is not None and found_b is not None
    assert found_a.wheel_tags == ("py3-none-any",)
    assert found_a.content_digest == found_b.content_digest
    assert found_a.files > 500

    assert files_differing_from_record(str(site_a), str(info_a)) == []
    target = site_a / "pip" / "__init__.py"
    target.write_text(target.read_text() + "# changed\n")
    os.remove(site_a / "pip" / "_internal" / "main.py")
    assert files_differing_from_record(str(site_a), str(info_a)) == ["pip/__init__.py", "pip/_internal/main.py"]


def test_digest_of_an_installed_wheel_matches_its_own_record(two_installs: tuple[Path, Path, Path]) -> None:
    """The digest computed from the wheel's RECORD (before any installer) equals the installed one's."""
    import zipfile

    wheel, _site_a, site = two_installs
    with zipfile.ZipFile(wheel) as archive:
        record_name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        from_wheel = content_digest(digest_lines(archive.read(record_name)))
        sample = next(n for n in archive.namelist() if n.endswith("__init__.py"))
        data = archive.read(sample)
    (info,) = site.glob("pip-*.dist-info")
    found = read_artifact(str(info))
    assert found is not None and found.content_digest == from_wheel
    # RECORD's hash form, recomputed here from the bytes in the archive.
    expected = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert f"{sample},{expected}," in (info / "RECORD").read_text()


def test_egg_info_has_no_artifact(tmp_path: Path) -> None:
    info = tmp_path / "demo-1.0.egg-info"
    info.mkdir()
    assert read_artifact(str(info)) is None


def test_the_digest_cache_is_used_while_record_is_unchanged_and_dropped_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envlock.capture.artifact import DigestCache

    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ENVLOCK_NO_CACHE", raising=False)
    info = tmp_path / "demo-1.0.dist-info"
    info.mkdir()
    record = info / "RECORD"
    record.write_text(RECORD)
    first = DigestCache()
    found = read_artifact(str(info), first)
    first.save()
    assert found is not None and found.content_digest == _digest_of(RECORD)
    # Same size, mtime and inode: the cached answer, even though the bytes were swapped behind its back.
    stat = record.stat()
    with record.open("r+") as fh:
        fh.write("x")
    os.utime(record, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cached = read_artifact(str(info), DigestCache())
    assert cached is not None and cached.content_digest == found.content_digest
    # A RECORD rewritten by an installer (new mtime): computed again.
    record.write_text(RECORD.replace("AAAA", "AAAB"))
    again = read_artifact(str(info), DigestCache())
    assert again is not None and again.content_digest == _digest_of(RECORD.replace("AAAA", "AAAB"))
