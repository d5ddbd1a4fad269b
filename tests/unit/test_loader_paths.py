"""Lockfile paths in messages are written as pathlib writes them, with or without pathlib."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envlock.errors import LockfileError
from envlock.lockfile import io
from envlock.paths import pure_path_text


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ab./", max_size=12))
def test_a_path_is_written_as_pathlib_writes_it(path):
    assert pure_path_text(path) == str(Path(path))
    assert pure_path_text(os.fspath(Path(path))) == str(Path(path))


@pytest.mark.parametrize("written", ["./missing.lock", "dir//missing.lock", "missing.lock", "dir/./missing.lock"])
def test_a_missing_file_is_named_as_pathlib_writes_it(tmp_path, monkeypatch, written):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir").mkdir()
    with pytest.raises(LockfileError) as info:
        io.read_lock_bytes(written)
    assert info.value.message == f"{Path(written)}: no such file"
