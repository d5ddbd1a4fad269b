"""The pieces of `envlock pack` that need no engine: apt's --print-uris answer, and the CLI on damaged packs."""

from __future__ import annotations

from envlock.pack.build import parse_print_uris
from envlock.pack.format import source_from_bytes, write_pack
from tests.conftest import run_envlock

# apt-get install -qq -o Acquire::ForceHash=SHA256 --print-uris -y tree=2.1.0-1 jq (bookworm, 2026-12-07)
PRINT_URIS = """\
'http://deb.debian.org/debian/pool/main/libo/libonig/libonig5_6.9.8-1_amd64.deb' libonig5_6.9.8-1_amd64.deb 187828 SHA256:59ecfce6d88c7c4b09496ce182b3b8303e8e8477664e009b16ae83a09cd12be7
'http://deb.debian.org/debian-security/pool/updates/main/j/jq/libjq1_1.6-2.1%2bdeb12u3_amd64.deb' libjq1_1.6-2.1+deb12u3_amd64.deb 136460 SHA256:5e9a7081ba10ce826f6d3d103aa9b912170c5adc836e2561000733571995dd5b
'http://deb.debian.org/debian/pool/main/t/tree/tree_2.1.0-1_amd64.deb' tree_2.1.0-1_amd64.deb 52464 MD5Sum:a12f30705b94d891f14bd5199fe6f4f2
W: a warning line
"""


def test_print_uris_lines_with_sha256_are_read_and_others_ignored():
    assert parse_print_uris(PRINT_URIS) == [
        (
            "http://deb.debian.org/debian/pool/main/libo/libonig/libonig5_6.9.8-1_amd64.deb",
            "libonig5_6.9.8-1_amd64.deb",
            187828,
            "59ecfce6d88c7c4b09496ce182b3b8303e8e8477664e009b16ae83a09cd12be7",
        ),
        (
            "http://deb.debian.org/debian-security/pool/updates/main/j/jq/libjq1_1.6-2.1%2bdeb12u3_amd64.deb",
            "libjq1_1.6-2.1+deb12u3_amd64.deb",
            136460,
            "5e9a7081ba10ce826f6d3d103aa9b912170c5adc836e2561000733571995dd5b",
        ),
    ]


def _pack(tmp_path):
    path = tmp_path / "env.pack"
    lock = b'lock-version = "1.0"\n'
    write_pack(path, {"lock-fingerprint": None}, lock, [source_from_bytes("wheels/a-1-py3-none-any.whl", b"PK" * 300)])
    return path


def test_pack_check_on_a_tampered_pack_exits_2_naming_the_member(tmp_path):
    path = _pack(tmp_path)
    data = bytearray(path.read_bytes())
    data[data.index(b"PKPK") + 7] ^= 0x20
    path.write_bytes(bytes(data))
    result = run_envlock("pack", "--check", str(path))
    assert result.returncode == 2
    assert "pack member 'wheels/a-1-py3-none-any.whl'" in result.stderr and "Traceback" not in result.stderr


def test_show_and_replay_refuse_a_truncated_pack_by_content_not_name(tmp_path):
    path = _pack(tmp_path)
    cut = tmp_path / "looks-like.lock"
    cut.write_bytes(path.read_bytes()[:1500])
    for args in (("show", str(cut)), ("replay", str(cut), "--json")):
        result = run_envlock(*args)
        assert result.returncode == 2, args
        assert "truncated" in result.stderr and "Traceback" not in result.stderr
