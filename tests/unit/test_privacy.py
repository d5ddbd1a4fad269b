"""Private by default: secrets, home paths, user and host names never reach the lock file.

The real CLI runs in a subprocess with canaries planted where capture looks:
secret environment variables, a token in the git remote, a home directory
(with the captured venv and the project under it), a user name and a host
name.  Then the *whole file text* is searched for each canary.  Each test also
checks that the place the canary was planted was really captured (the
variable's neighbours, the remote, the editable install), so a capture that
silently skipped those layers would fail too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from envlock.capture.privacy import normalize_remote_url, scrub_text, strip_url_credentials
from envlock.lockfile import load_lock, private
from envlock.lockfile import model as m
from tests.conftest import REPO
from tests.unit._capture_envs import add_dist, make_venv

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-canary-aws-0001",
    "HF_TOKEN": "hf_canaryHuggingFace0002",
    "WANDB_API_KEY": "canary-wandb-0003",
    "OPENAI_API_KEY": "sk-canary-openai-0004",
    "GITHUB_TOKEN": "ghp_canaryGithubEnv0005",
}
REMOTE_TOKEN = "ghp_canaryRemoteToken0006"
USER_NAME = "alice-canary"
HOST_NAME = "host-canary"


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": USER_NAME,
        "GIT_AUTHOR_EMAIL": f"{USER_NAME}@example.org",
        "GIT_COMMITTER_NAME": USER_NAME,
        "GIT_COMMITTER_EMAIL": f"{USER_NAME}@example.org",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


@pytest.fixture
def planted(tmp_path: Path):
    """A home directory named after a user, with a venv and a git project in it."""
    home = tmp_path / "home" / USER_NAME
    project = home / "papers" / "resnet"
    project.mkdir(parents=True)
    venv = make_venv(home / "venvs" / "paper")
    add_dist(venv.site, "resnet-paper", "0.1", direct_url={"url": f"file://{project}", "dir_info": {"editable": True}})
    add_dist(
        venv.site,
        "privatewheel",
        "1.0",
        direct_url={
            "url": f"https://{USER_NAME}:{REMOTE_TOKEN}@pypi.example.org/privatewheel-1.0-py3-none-any.whl",
            "archive_info": {},
        },
    )
    broken = add_dist(venv.site, "broken", "1.0")  # its warning names a path under the home directory
    (broken / "METADATA").unlink()
    (project / "train.py").write_text("print('hi')\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "x")
    _git(project, "remote", "add", "origin", f"https://{USER_NAME}:{REMOTE_TOKEN}@github.com/lab/resnet.git")
    env = {
        **os.environ,
        **SECRETS,
        "HOME": str(home),
        "USER": USER_NAME,
        "LOGNAME": USER_NAME,
        "OMP_NUM_THREADS": "4",
        "XLA_FLAGS": f"--xla_dump_to={home}/dumps",
        "PYTHONPATH": str(REPO),
    }
    return {"home": home, "project": project, "venv": venv, "env": env, "out": project / "envlock.lock"}


def _capture_argv(p: dict) -> list[str]:
    return [
        sys.executable,
        "-m",
        "envlock",
        "capture",
        "-q",
        "-o",
        str(p["out"]),
        "--python",
        str(p["venv"].python),
        "--project",
        str(p["project"]),
    ]


def _assert_nothing_private(text: str, p: dict, host: str | None = None) -> None:
    for name, value in SECRETS.items():
        assert value not in text, f"{name} leaked"
    assert REMOTE_TOKEN not in text
    assert USER_NAME not in text  # also covers the home path, which contains it
    assert str(p["home"]) not in text
    if host:
        assert host not in text


def _assert_layers_were_captured(p: dict) -> None:
    """The canaries' neighbours are there: the test looked where the secrets were."""
    lock = load_lock(p["out"]).lock
    assert lock.runtime.env["OMP_NUM_THREADS"] == "4"
    assert lock.runtime.env["XLA_FLAGS"] == "--xla_dump_to=~/dumps"
    assert lock.project.remote == "https://github.com/lab/resnet.git"
    packages = {pkg.name: pkg for pkg in lock.python.packages}
    assert packages["resnet-paper"].url == "file://~/papers/resnet"
    assert packages["privatewheel"].url == "https://pypi.example.org/privatewheel-1.0-py3-none-any.whl"
    assert any(
        w.startswith("~/venvs/paper/lib/") and "broken-1.0.dist-info/METADATA" in w for w in lock.capture_warnings
    )


def test_secrets_home_and_user_never_reach_the_lock(planted) -> None:
    result = subprocess.run(
        _capture_argv(planted), capture_output=True, text=True, env=planted["env"], cwd=planted["project"]
    )
    assert result.returncode == 0, result.stderr
    text = planted["out"].read_text(encoding="utf-8")
    _assert_nothing_private(text, planted)
    _assert_layers_were_captured(planted)


def _can_unshare_uts() -> bool:
    if shutil.which("unshare") is None or shutil.which("hostname") is None:
        return False
    probe = subprocess.run(["unshare", "--uts", "hostname", "probe-name"], capture_output=True)
    return probe.returncode == 0


def test_host_name_never_reaches_the_lock(planted) -> None:
    """The host name is set in a private UTS namespace (needs root or CAP_SYS_ADMIN; this suite runs as root)."""
    if not _can_unshare_uts():
        pytest.skip("cannot create a UTS namespace here (unshare --uts needs CAP_SYS_ADMIN)")
    script = f'hostname {HOST_NAME} && [ "$(hostname)" = {HOST_NAME} ] && exec "$@"'
    argv = ["unshare", "--uts", "sh", "-c", script, "sh", *_capture_argv(planted)]
    # The host name also appears in the project path, so a leak through any path is caught too.
    result = subprocess.run(argv, capture_output=True, text=True, env=planted["env"], cwd=planted["project"])
    assert result.returncode == 0, result.stderr
    text = planted["out"].read_text(encoding="utf-8")
    _assert_nothing_private(text, planted, host=HOST_NAME)
    _assert_layers_were_captured(planted)


def test_host_name_in_a_recorded_value_is_replaced(planted) -> None:
    """A value that names the machine (an NCCL rendezvous address) keeps its shape, not the name."""
    if not _can_unshare_uts():
        pytest.skip("cannot create a UTS namespace here (unshare --uts needs CAP_SYS_ADMIN)")
    env = {**planted["env"], "NCCL_COMM_ID": f"{HOST_NAME}:29500"}
    script = f'hostname {HOST_NAME} && exec "$@"'
    argv = ["unshare", "--uts", "sh", "-c", script, "sh", *_capture_argv(planted)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=planted["project"])
    assert result.returncode == 0, result.stderr
    assert HOST_NAME not in planted["out"].read_text(encoding="utf-8")
    assert load_lock(planted["out"]).lock.runtime.env["NCCL_COMM_ID"] == "<host>:29500"


def test_private_gpu_fields_are_stripped_unless_asked_for() -> None:
    """GPU UUIDs and serials are ``private`` fields: capture_lock strips them through private.strip_private.

    The NVML probe that fills them is tested with its fake library in
    test_capture_nvml.py; here the stripping itself, on a lock as capture
    assembles it.
    """
    uuid = "GPU-2f6c1a2e-canary-uuid-0007"
    lock = m.Lock(
        nvidia=m.NvidiaSection(
            driver_present=True, gpus=(m.Gpu(index=0, name="NVIDIA H200", uuid=uuid, serial="1650924060000"),)
        )
    )
    stripped = private.strip_private(lock)
    assert stripped.nvidia.gpus[0].uuid is None and stripped.nvidia.gpus[0].serial is None
    assert stripped.nvidia.gpus[0].name == "NVIDIA H200"
    assert lock.nvidia.gpus[0].uuid == uuid  # the input is not changed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:ghp_x@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://token@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://conda.anaconda.org/t/ab-1234/chan/linux-64", "https://conda.anaconda.org/chan/linux-64"),
        ("https://files.example/x.whl?X-Amz-Signature=abc&X-Amz-Credential=k", "https://files.example/x.whl"),
        ("https://files.example/x.whl?ref=main", "https://files.example/x.whl?ref=main"),
        ("ssh://git@github.com/a/b.git", "ssh://git@github.com/a/b.git"),  # the forge's shared account
        ("ssh://alice@host.example/a.git", "ssh://host.example/a.git"),
    ],
)
def test_strip_url_credentials(url: str, expected: str) -> None:
    assert strip_url_credentials(url) == expected


def test_scrub_text_escapes_characters_a_lock_cannot_hold() -> None:
    assert scrub_text("a\nb\x1b[31m\u202e") == "a\\u000ab\\u001b[31m\\u202e"


def test_scp_like_remote_becomes_a_url() -> None:
    assert normalize_remote_url("git@github.com:lab/paper.git") == "ssh://git@github.com/lab/paper.git"
