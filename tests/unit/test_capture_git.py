"""The project layer, against real git repositories made in a temporary directory.

Expected values come from git itself (``git rev-parse``, ``git diff``) and
hashlib, never from envlock.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from envlock.capture.git import parse_status_v2
from envlock.lockfile import load_lock
from tests.unit._capture_envs import capture, make_venv

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def git_bytes(repo: Path, *args: str) -> bytes:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env).stdout


@pytest.fixture
def venv(tmp_path: Path):
    return make_venv(tmp_path / "env")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    git(path, "init", "-q", "-b", "paper")
    (path / "train.py").write_bytes(b"lr = 0.1\r\nepochs = 3\r\n")  # CRLF: the hash must cover bytes, not text
    (path / "weights.bin").write_bytes(bytes(range(256)))
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    return path


def project_of(tmp_path: Path, venv, repo: Path, env: dict | None = None):
    result, text = capture(
        tmp_path / "p.lock", "--python", str(venv.python), "--project", str(repo), env={**GIT_ENV, **(env or {})}
    )
    assert result.returncode == 0, result.stderr
    return load_lock(tmp_path / "p.lock").lock.project, text


def test_clean_work_tree(tmp_path: Path, venv, repo: Path) -> None:
    project, _ = project_of(tmp_path, venv, repo)
    assert project.commit == git(repo, "rev-parse", "HEAD").strip()
    assert project.branch == "paper"
    assert project.dirty is False
    assert project.diff_hash is None
    assert project.remote is None


def test_uncommitted_changes_are_hashed_byte_for_byte(tmp_path: Path, venv, repo: Path) -> None:
    (repo / "train.py").write_bytes(b"lr = 0.05\r\nepochs = 3\r\n")
    (repo / "weights.bin").write_bytes(bytes(range(255, -1, -1)))
    expected = "sha256:" + hashlib.sha256(git_bytes(repo, "diff", "HEAD", "--binary")).hexdigest()
    project, _ = project_of(tmp_path, venv, repo)
    assert project.dirty is True
    assert project.diff_hash == expected
    # A different change gives a different hash.
    (repo / "train.py").write_bytes(b"lr = 0.01\r\nepochs = 3\r\n")
    again, _ = project_of(tmp_path, venv, repo)
    assert again.diff_hash != expected


def test_untracked_file_makes_it_dirty_without_a_diff(tmp_path: Path, venv, repo: Path) -> None:
    (repo / "new_experiment.py").write_text("print(1)\n")
    project, _ = project_of(tmp_path, venv, repo)
    assert project.dirty is True
    assert project.diff_hash is None


def test_detached_head_has_no_branch(tmp_path: Path, venv, repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    project, _ = project_of(tmp_path, venv, repo)
    assert project.branch is None
    assert project.commit == git(repo, "rev-parse", "HEAD").strip()


def test_repository_without_commits(tmp_path: Path, venv) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "start")
    project, _ = project_of(tmp_path, venv, empty)
    assert (project.commit, project.branch) == (None, "start")


def test_outside_a_work_tree_there_is_no_project_layer(tmp_path: Path, venv) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    project, text = project_of(tmp_path, venv, plain)
    assert project is None
    assert "[project]" not in text


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("https://alice:ghp_0123456789abcdefABCDEF@github.com/lab/paper.git", "https://github.com/lab/paper.git"),
        ("https://oauth2:glpat-xyz@gitlab.example.org/lab/paper.git", "https://gitlab.example.org/lab/paper.git"),
        ("git@github.com:lab/paper.git", "ssh://git@github.com/lab/paper.git"),
        ("ssh://alice@git.example.org:2222/srv/paper.git", "ssh://git.example.org:2222/srv/paper.git"),
    ],
)
def test_origin_remote_without_credentials(tmp_path: Path, venv, repo: Path, remote: str, expected: str) -> None:
    git(repo, "remote", "add", "origin", remote)
    project, text = project_of(tmp_path, venv, repo)
    assert project.remote == expected
    for secret in ("ghp_0123456789abcdefABCDEF", "glpat-xyz", "alice"):
        assert secret not in text


def test_repository_configured_programs_are_not_run(tmp_path: Path, venv, repo: Path) -> None:
    """A cloned repo's config must not make capture run programs (fsmonitor, external diff, textconv)."""
    marker = tmp_path / "ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho ran >> {marker}\n")
    hook.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(hook))
    git(repo, "config", "diff.external", str(hook))
    git(repo, "config", "diff.bin.textconv", str(hook))
    (repo / ".gitattributes").write_text("*.bin diff=bin\n")
    (repo / "weights.bin").write_bytes(b"changed")
    project, _ = project_of(tmp_path, venv, repo)
    assert project.dirty is True and project.diff_hash is not None
    assert not marker.exists()


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("# branch.oid " + "a" * 40 + "\0# branch.head main\0", ("a" * 40, "main", False)),
        ("# branch.oid " + "b" * 40 + "\0# branch.head (detached)\0", ("b" * 40, None, False)),
        ("# branch.oid (initial)\0# branch.head start\0? new.py\0", (None, "start", True)),
        (
            "# branch.oid " + "c" * 40 + "\0# branch.head main\0# branch.upstream origin/main\0"
            "1 .M N... 100644 100644 100644 " + "d" * 40 + " " + "d" * 40 + " train.py\0",
            ("c" * 40, "main", True),
        ),
    ],
)
def test_parse_status_v2(output: str, expected) -> None:
    assert parse_status_v2(output) == expected
