"""The pieces of `envlock pack` that need no engine: apt's --print-uris answer, and the CLI on damaged packs."""

from __future__ import annotations

import hashlib

import pytest

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


# --- conda archives: downloaded from a channel served on 127.0.0.1 whose files the test changes ----------


@pytest.fixture
def conda_channel(tmp_path):
    import functools
    import http.server
    import threading

    root = tmp_path / "channel"
    (root / "linux-64").mkdir(parents=True)
    (root / "noarch").mkdir()
    (root / "linux-64" / "python-3.11.7-h_0.tar.bz2").write_bytes(b"python archive bytes" * 100)
    (root / "noarch" / "demo-1.0-py_0.conda").write_bytes(b"noarch archive bytes" * 50)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _conda_lock(root, url, md5_only: bool = False):
    from envlock.lockfile import model as m

    packages = []
    for subdir, filename in (("linux-64", "python-3.11.7-h_0.tar.bz2"), ("noarch", "demo-1.0-py_0.conda")):
        data = (root / subdir / filename).read_bytes()
        name, version, build = filename.rsplit(".tar.bz2", 1)[0].rsplit(".conda", 1)[0].rsplit("-", 2)
        sha = None if md5_only else "sha256:" + hashlib.sha256(data).hexdigest()
        packages.append(
            m.CondaPackage(
                name=name, version=version, build=build, subdir=subdir, url=f"{url}/{subdir}/{filename}",
                md5=hashlib.md5(data).hexdigest(), sha256=sha,
            )
        )  # fmt: skip
    return m.Lock(conda=m.CondaSection(packages=tuple(packages)))


@pytest.mark.parametrize("md5_only", [False, True], ids=["sha256", "md5-only"])
def test_conda_archives_are_downloaded_checked_and_named_conda_members(conda_channel, tmp_path, md5_only):
    from envlock.pack.build import PackRequest, _conda_install, gather_conda

    root, url = conda_channel
    lock = _conda_lock(root, url, md5_only)
    work = tmp_path / "work"
    work.mkdir()
    request = PackRequest(output=str(tmp_path / "x.pack"))
    sources = gather_conda(_conda_install(lock, request), request, work)
    expected = {
        f"conda/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }
    assert {s.name: s.sha256 for s in sources} == expected


def _gather_error(lock, tmp_path) -> str:
    from envlock.pack.build import PackBuildError, PackRequest, _conda_install, gather_conda

    work = tmp_path / "work"
    work.mkdir()
    request = PackRequest(output=str(tmp_path / "x.pack"))
    with pytest.raises(PackBuildError) as caught:
        gather_conda(_conda_install(lock, request), request, work)
    # Nothing unchecked is left behind to be packed.
    left = [path.name for path in (work / "conda").iterdir()]
    assert all(not name.startswith("demo-") for name in left) or "python" in str(caught.value.message), left
    return caught.value.message


@pytest.mark.parametrize("md5_only", [False, True], ids=["sha256", "md5-only"])
def test_a_changed_conda_archive_stops_the_pack_naming_package_url_and_both_hashes(conda_channel, tmp_path, md5_only):
    root, url = conda_channel
    lock = _conda_lock(root, url, md5_only)
    archive = root / "noarch" / "demo-1.0-py_0.conda"
    algorithm = hashlib.md5 if md5_only else hashlib.sha256
    locked = algorithm(archive.read_bytes()).hexdigest()
    archive.write_bytes(archive.read_bytes() + b"\0")  # same name, other bytes
    served = algorithm(archive.read_bytes()).hexdigest()
    message = _gather_error(lock, tmp_path)
    for part in ("conda.packages[demo] 1.0 py_0 (", f"{url}/noarch/demo-1.0-py_0.conda", locked, served):
        assert part in message, (part, message)
    assert ("md5" if md5_only else "sha256") in message


def test_a_conda_archive_gone_from_its_channel_stops_the_pack_naming_it(conda_channel, tmp_path):
    root, url = conda_channel
    lock = _conda_lock(root, url)
    (root / "linux-64" / "python-3.11.7-h_0.tar.bz2").unlink()
    message = _gather_error(lock, tmp_path)
    assert "conda.packages[python] 3.11.7 h_0" in message and f"{url}/linux-64/python-3.11.7-h_0.tar.bz2" in message
    assert "HTTP 404" in message


def _local_lock(*packages):
    from envlock.lockfile import Lock, PythonPackage, PythonSection

    return Lock(
        python=PythonSection(
            version="3.11.7",
            packages=tuple(PythonPackage(name, version, wheel_tags=tags) for name, version, tags in packages),
        )
    )


def test_a_package_no_index_has_is_pinned_to_the_find_links_wheel_with_the_installed_tags(tmp_path):
    from envlock.pack.build import pin_from_find_links

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    right = b"the cp311 manylinux build"
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(right)
    (wheels / "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl").write_bytes(b"another interpreter's")
    (wheels / "torch-2.12.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"another version")
    lock = _local_lock(
        ("torch", "2.13.0+cpu", ("cp311-cp311-manylinux_2_28_x86_64",)),
        ("gone", "1.0", ("py3-none-any",)),
    )
    notes: list[str] = []
    pinned = pin_from_find_links(lock, (str(tmp_path / "absent"), str(wheels)), notes)
    torch, gone = pinned.python.packages
    assert torch.file == "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert torch.file_sha256 == "sha256:" + hashlib.sha256(right).hexdigest()
    assert torch.file_size == len(right)
    assert torch.file_url is None  # a local path is nowhere a replay elsewhere could fetch from
    assert gone == lock.python.packages[1]
    assert notes == ["pinned from --find-links (no index has them): torch"]


def test_find_links_without_a_matching_wheel_leaves_the_lock_as_it_was(tmp_path):
    from envlock.pack.build import pin_from_find_links

    (tmp_path / "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl").write_bytes(b"x")
    lock = _local_lock(("torch", "2.13.0+cpu", ("cp311-cp311-manylinux_2_28_x86_64",)))
    notes: list[str] = []
    assert pin_from_find_links(lock, (str(tmp_path),), notes) is lock
    assert notes == []
