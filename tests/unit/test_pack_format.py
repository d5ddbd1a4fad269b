"""The pack file: canonical bytes, and every hostile or damaged pack refused with the member named (exit 2)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from envlock.pack.format import (
    PackError,
    check_pack,
    extract,
    is_pack,
    source_from_bytes,
    source_from_file,
    write_pack,
)

LOCK = b'lock-version = "1.0"\n'
META = {"envlock-version": "0.0-test", "lock-fingerprint": "sha256:" + "0" * 64, "platform": "linux/amd64"}


def _members(tmp_path: Path):
    wheel = tmp_path / "six-1.16.0-py2.py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 not really a wheel" * 37)
    return [
        source_from_file("wheels/six-1.16.0-py2.py3-none-any.whl", wheel),
        source_from_bytes("debs/tree_2.1.0-1_amd64.deb", b"!<arch>\n" + b"x" * 700),
        source_from_bytes("image/base.tar", b"\0" * 2048 + b"layer"),
    ]


@pytest.fixture
def pack(tmp_path):
    path = tmp_path / "env.pack"
    write_pack(path, META, LOCK, _members(tmp_path))
    return path


def test_a_pack_round_trips_and_is_recognised_by_content(pack, tmp_path):
    checked = check_pack(pack)
    assert [m.name for m in checked.members] == [
        "pack.json",
        "envlock.lock",
        "wheels/six-1.16.0-py2.py3-none-any.whl",
        "debs/tree_2.1.0-1_amd64.deb",
        "image/base.tar",
        "SHA256SUMS",
    ]
    assert checked.lock_bytes() == LOCK
    assert checked.meta["platform"] == "linux/amd64"
    assert checked.sha256 == hashlib.sha256(pack.read_bytes()).hexdigest()
    renamed = tmp_path / "no-extension"
    renamed.write_bytes(pack.read_bytes())
    assert is_pack(renamed) and not is_pack(tmp_path / "six-1.16.0-py2.py3-none-any.whl")
    # the standard tar reader agrees on what is inside
    with tarfile.open(pack) as archive:
        assert archive.extractfile("envlock.lock").read() == LOCK
    sums = checked.read("SHA256SUMS").decode().splitlines()
    assert f"{hashlib.sha256(LOCK).hexdigest()}  envlock.lock" in sums


def test_the_same_members_give_the_same_bytes(tmp_path):
    first, second = tmp_path / "a.pack", tmp_path / "b.pack"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    write_pack(first, META, LOCK, _members(tmp_path / "one"))
    write_pack(second, META, LOCK, list(reversed(_members(tmp_path / "two"))))  # order given does not matter
    assert first.read_bytes() == second.read_bytes()


def test_pack_size_is_the_members_plus_headers_and_padding(pack):
    checked = check_pack(pack)
    data = sum(m.size for m in checked.members)
    overhead = pack.stat().st_size - data
    assert 0 < overhead <= len(checked.members) * 1024 + 1024


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _offset_of(path: Path, needle: bytes) -> int:
    return path.read_bytes().index(needle)


@pytest.mark.parametrize(
    "where, member, words",
    [
        (
            lambda p: _offset_of(p, b"debs/tree_2.1.0-1_amd64.deb\0") + 110,
            "debs/tree_2.1.0-1_amd64.deb",
            "header",
        ),  # uid
        (lambda p: _offset_of(p, b"x" * 700) + 5, "debs/tree_2.1.0-1_amd64.deb", "SHA256SUMS"),  # member data
        (
            lambda p: _offset_of(p, b"debs/tree_2.1.0-1_amd64.deb\0") + 140,
            "debs/tree_2.1.0-1_amd64.deb",
            "header",
        ),  # mtime
        (lambda p: _offset_of(p, b"x" * 700) + 710, "debs/tree_2.1.0-1_amd64.deb", "padding"),  # padding after it
        (lambda p: p.stat().st_size - 3, None, "end-of-archive"),  # the end marker
        (lambda p: _offset_of(p, b'"platform"') + 14, "pack.json", "SHA256SUMS"),  # pack.json itself
    ],
)
def test_any_changed_byte_is_found_and_the_member_named(pack, where, member, words):
    _flip(pack, where(pack))
    with pytest.raises(PackError) as caught:
        check_pack(pack)
    assert caught.value.member == member
    assert words in caught.value.message


def test_bytes_after_the_end_and_a_truncated_pack_are_refused(pack):
    original = pack.read_bytes()
    pack.write_bytes(original + b"\0" * 512)
    with pytest.raises(PackError, match="after the end"):
        check_pack(pack)
    cut = original.index(b"\0" * 2048 + b"layer") + 100
    pack.write_bytes(original[:cut])
    with pytest.raises(PackError) as caught:
        check_pack(pack)
    assert caught.value.member == "image/base.tar" and "truncated" in caught.value.message


def _raw_pack(entries) -> bytes:
    """A tar whose first member is a valid pack.json, then the hostile entries (TarInfo, data)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        meta = json.dumps({"format": "envlock-pack", "format-version": 1, "members": []}).encode()
        info = tarfile.TarInfo("pack.json")
        info.size = len(meta)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(meta))
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _info(name, kind=tarfile.REGTYPE, size=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    "entry, member, words",
    [
        ((_info("wheels/../../etc/passwd", size=1), b"x"), "wheels/../../etc/passwd", "plain relative"),
        ((_info("/etc/passwd", size=1), b"x"), "/etc/passwd", "absolute"),
        ((_info("wheels/link", tarfile.SYMTYPE, linkname="/etc/passwd"), None), "wheels/link", "symbolic link"),
        ((_info("wheels/hard", tarfile.LNKTYPE, linkname="pack.json"), None), "wheels/hard", "hard link"),
        ((_info("debs/null", tarfile.CHRTYPE), None), "debs/null", "device"),
        ((_info("debs/fifo", tarfile.FIFOTYPE), None), "debs/fifo", "device"),
    ],
)
def test_hostile_members_are_refused_by_name(tmp_path, entry, member, words):
    path = tmp_path / "hostile.pack"
    path.write_bytes(_raw_pack([entry]))
    with pytest.raises(PackError) as caught:
        check_pack(path)
    assert caught.value.member == member and words in caught.value.message


def test_a_duplicate_member_and_one_over_its_declared_size_are_refused(pack, tmp_path):
    original = pack.read_bytes()
    checked = check_pack(pack)
    # the deb's header and data again, before SHA256SUMS: a duplicate name
    start = checked.offsets["debs/tree_2.1.0-1_amd64.deb"] - 512
    end = checked.offsets["debs/tree_2.1.0-1_amd64.deb"] + 1024
    sums_start = checked.offsets["SHA256SUMS"] - 512
    pack.write_bytes(original[:sums_start] + original[start:end] + original[sums_start:])
    with pytest.raises(PackError) as caught:
        check_pack(pack)
    assert caught.value.member == "debs/tree_2.1.0-1_amd64.deb" and "twice" in caught.value.message
    # a header claiming more bytes than pack.json declares for it
    from envlock.pack.format import header

    bigger = header("debs/tree_2.1.0-1_amd64.deb", 5000)
    pack.write_bytes(original[:start] + bigger + original[start + 512 :])
    with pytest.raises(PackError) as caught:
        check_pack(pack)
    assert caught.value.member == "debs/tree_2.1.0-1_amd64.deb" and "over the 708" in caught.value.message


def test_extract_writes_only_inside_the_directory_and_never_over_a_file(pack, tmp_path):
    checked = check_pack(pack)
    target = tmp_path / "private"
    target.mkdir()
    out = extract(checked, ["wheels/six-1.16.0-py2.py3-none-any.whl"], target)
    path = Path(out["wheels/six-1.16.0-py2.py3-none-any.whl"])
    assert path.parent.parent == target and path.read_bytes().startswith(b"PK")
    with pytest.raises(FileExistsError):
        extract(checked, ["wheels/six-1.16.0-py2.py3-none-any.whl"], target)


def test_not_a_pack_is_refused_before_anything_else(tmp_path):
    path = tmp_path / "x.tar"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(_info("evil", size=1), io.BytesIO(b"x"))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(PackError, match="not an envlock pack"):
        check_pack(path)


def test_a_missing_file_is_named_as_missing(tmp_path):
    with pytest.raises(PackError, match="cannot be read"):
        check_pack(tmp_path / "missing.pack")


LONG = "wheels/charset_normalizer-3.5.3-cp311-cp311-manylinux1_x86_64.manylinux_2_28_x86_64.manylinux_2_5_x86_64.whl"


def test_a_name_past_ustars_100_characters_round_trips_and_its_pax_record_is_checked(tmp_path):
    path = tmp_path / "long.pack"
    write_pack(path, META, LOCK, [source_from_bytes(LONG, b"PK" * 400)])
    checked = check_pack(path)
    assert LONG in [m.name for m in checked.members]
    with tarfile.open(path) as archive:  # the standard reader agrees
        assert archive.extractfile(LONG).read() == b"PK" * 400
    data = bytearray(path.read_bytes())
    where = data.index(b"path=wheels/charset") + 12
    data[where] ^= 0x01  # one byte of the long name in the pax record
    path.write_bytes(bytes(data))
    with pytest.raises(PackError) as caught:
        check_pack(path)
    assert "changed bytes" in caught.value.message and "harset_normalizer" in str(caught.value.member)
