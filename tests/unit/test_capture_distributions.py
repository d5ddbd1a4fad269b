"""The shared distribution scan: RECORD reading, the fast shared-library search, metadata decoding."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from envlock.capture.distributions import (
    decode_metadata,
    parse_metadata_head,
    parse_record,
    scan_distributions,
    shared_library,
)
from tests.unit._capture_envs import add_dist

# A RECORD as pip writes it (csv, CRLF line ends), with a quoted path that holds a comma.
RECORD = (
    "torch/__init__.py,sha256=abc,100\r\n"
    "torch/lib/libtorch_cpu.so,sha256=def,200\r\n"
    "torch/lib/libgomp.so.1,sha256=ghi,300\r\n"
    'torch/lib/"odd,name".so.2,,\r\n'
    '"torch/lib/with,comma.so",sha256=jkl,400\r\n'
    "torch/_C.cpython-311-x86_64-linux-gnu.so,sha256=mno,500\r\n"
    "torch/resolve.py,sha256=pqr,600\r\n"
    "torch/solver.source,,\r\n"
    "../../lib/libmkl_rt.so.2,sha256=stu,700\r\n"
    "torch-2.13.0.dist-info/RECORD,,\r\n"
)


def test_parse_record_reads_the_path_column() -> None:
    assert parse_record(RECORD) == [
        "torch/__init__.py",
        "torch/lib/libtorch_cpu.so",
        "torch/lib/libgomp.so.1",
        'torch/lib/"odd',
        "torch/lib/with,comma.so",
        "torch/_C.cpython-311-x86_64-linux-gnu.so",
        "torch/resolve.py",
        "torch/solver.source",
        "../../lib/libmkl_rt.so.2",
        "torch-2.13.0.dist-info/RECORD",
    ]


def test_shared_library_search_equals_filtering_every_record_entry(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    info = add_dist(site, "torch", "2.13.0")
    (info / "RECORD").write_bytes(RECORD.encode())
    (dist,) = scan_distributions([str(site)])
    expected = [p for p in dist.record_files() if shared_library().search(os.path.basename(p))]
    (fresh,) = scan_distributions([str(site)])  # not helped by the full parse above
    assert fresh.record_shared_libraries() == expected
    assert [os.path.basename(p) for p in expected] == [
        "libtorch_cpu.so",
        "libgomp.so.1",
        "with,comma.so",
        "_C.cpython-311-x86_64-linux-gnu.so",
        "libmkl_rt.so.2",
    ]
    # Paths are spelled as pathlib spelled them (joined, not resolved).
    assert expected[-1] == str(site / "../../lib/libmkl_rt.so.2")
    assert all(isinstance(p, str) for p in dist.record_files())


def test_unreadable_record_gives_no_files(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    info = add_dist(site, "norecord", "1.0")
    (info / "RECORD").unlink()
    (dist,) = scan_distributions([str(site)])
    assert dist.record_files() == [] and dist.record_shared_libraries() == []


@pytest.mark.parametrize(
    ("raw", "truncated", "problem"),
    [
        ("Name: caf\u00e9\n".encode(), False, False),
        (b"Name: caf\xe9\n", False, True),  # Latin-1
        ("Summary: \u00e9".encode()[:-1], True, False),  # a read cut inside a character is not the file's fault
        ("Summary: \u00e9".encode()[:-1], False, True),
    ],
)
def test_decode_metadata(raw: bytes, truncated: bool, problem: bool) -> None:
    text, found = decode_metadata(raw, truncated)
    assert (found is not None) == problem
    assert isinstance(text, str)


def test_metadata_header_ends_at_the_first_blank_line() -> None:
    text = "Metadata-Version: 2.1\nName: real\nSummary: x\n\nName: in-the-description\nVersion: 9\n"
    assert parse_metadata_head(text) == ("real", None)
    assert parse_metadata_head("name: Lower\nVERSION: 1.0\n") == ("Lower", "1.0")


def test_same_site_directory_twice_is_scanned_once(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "site-packages"
    add_dist(site, "only", "1.0")
    (tmp_path / "lib64").symlink_to(tmp_path / "lib")
    dists = scan_distributions([str(site), str(tmp_path / "lib64" / "site-packages")])
    assert [d.name for d in dists] == ["only"]
    assert dists[0].warnings == []


def test_legacy_editable_install_through_an_egg_link(tmp_path: Path) -> None:
    """``setup.py develop`` / pip < 21.3: site-packages holds only ``<name>.egg-link``; the metadata is in the project."""
    site = tmp_path / "site-packages"
    site.mkdir()
    project = tmp_path / "src" / "oldproj"
    (project / "oldproj.egg-info").mkdir(parents=True)
    (project / "oldproj.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 1.2\nName: oldproj\nVersion: 0.4.dev0\n\n"
    )
    (site / "oldproj.egg-link").write_text(f"{project}\n.\n")
    (site / "dangling.egg-link").write_text(f"{tmp_path / 'gone'}\n.\n")
    (dist,) = scan_distributions([str(site)])
    assert (dist.name, dist.version) == ("oldproj", "0.4.dev0")
    assert json.loads(dist.direct_url_text) == {"url": project.as_uri(), "dir_info": {"editable": True}}
