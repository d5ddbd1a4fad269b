"""The Python layer: interpreter tags, every distribution, and where each came from (PEP 610).

Environments are real virtualenvs whose site-packages hold the files an
installer leaves; capture runs through the real CLI (``envlock capture
--python``) so the interpreter is asked about itself in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import packaging.tags
import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from envlock.capture.interpreter import (
    _PROBE_SCRIPT,
    inspect_interpreter,
    interpreter_from_dict,
    parse_interpreter_json,
    parse_probe_output,
)
from envlock.capture.python_env import abi_tag, parse_direct_url, platform_tag
from envlock.lockfile import load_lock
from envlock.names import canonical_name
from tests.unit._capture_envs import add_dist, capture, make_venv, other_python_version, python_packages

SHA = "5" * 64
COMMIT = "0123456789abcdef0123456789abcdef01234567"


# --- direct_url.json, PEP 610 -------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"url": "https://files.example.org/a-1.0-py3-none-any.whl", "archive_info": {"hashes": {"sha256": SHA}}},
            {
                "source": "url",
                "url": "https://files.example.org/a-1.0-py3-none-any.whl",
                "archive_hash": f"sha256:{SHA}",
            },
        ),
        (  # the pre-2023 single "hash" key
            {"url": "https://x.example/a.tar.gz", "archive_info": {"hash": f"sha256={SHA.upper()}"}},
            {"source": "url", "url": "https://x.example/a.tar.gz", "archive_hash": f"sha256:{SHA}"},
        ),
        (  # an md5-only archive: the source is known, the hash is not one a lock keeps
            {"url": "https://x.example/a.tar.gz", "archive_info": {"hash": "md5=" + "1" * 32}},
            {"source": "url", "url": "https://x.example/a.tar.gz"},
        ),
        (
            {
                "url": "https://github.com/pypa/sampleproject.git",
                "vcs_info": {"vcs": "git", "commit_id": COMMIT, "requested_revision": "main"},
                "subdirectory": "pkg/sub",
            },
            {
                "source": "vcs",
                "url": "https://github.com/pypa/sampleproject.git",
                "vcs": "git",
                "commit": COMMIT,
                "subdirectory": "pkg/sub",
            },
        ),
        (
            {"url": "file:///src/proj", "dir_info": {"editable": True}},
            {"source": "editable", "url": "file:///src/proj"},
        ),
        ({"url": "file:///src/proj", "dir_info": {}}, {"source": "directory", "url": "file:///src/proj"}),
        (
            {"url": "file:///src/proj", "dir_info": {"editable": False}},
            {"source": "directory", "url": "file:///src/proj"},
        ),
    ],
)
def test_parse_direct_url(doc: dict, expected: dict) -> None:
    assert parse_direct_url(json.dumps(doc)) == expected


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"url": 3, "dir_info": {}}', '{"url": "https://x"}'])
def test_parse_direct_url_rejects_what_pep_610_does_not_describe(text: str) -> None:
    with pytest.raises(ValueError):
        parse_direct_url(text)


# --- tags -------------------------------------------------------------------------------


def test_tags_of_the_running_interpreter_agree_with_packaging() -> None:
    """packaging.tags is the reference: its ABI tag, and its most specific manylinux tag."""
    info = inspect_interpreter(None)
    reference = next(iter(packaging.tags.sys_tags()))
    assert abi_tag(info) == reference.abi
    if sys.platform.startswith("linux"):
        manylinux = next(t for t in packaging.tags.platform_tags() if t.startswith("manylinux_"))
        assert platform_tag(info) == manylinux


def _info(**changes) -> object:
    base = {
        "executable": "/x/bin/python",
        "implementation": "cpython",
        "version": "3.13.1",
        "version_info": [3, 13, 1],
        "prefix": "/x",
        "base_prefix": "/usr",
        "site_dirs": [],
        "soabi": None,
        "platform": "linux-x86_64",
        "machine": "x86_64",
        "ext_suffix": ".cpython-313-x86_64-linux-gnu.so",
        "libc": "glibc 2.28",
        "pointer_bits": 64,
    }
    base.update(changes)
    return parse_interpreter_json(json.dumps(base))


@pytest.mark.parametrize(
    ("changes", "abi", "platform"),
    [
        ({}, "cp313", "manylinux_2_28_x86_64"),
        ({"ext_suffix": ".cpython-313t-x86_64-linux-gnu.so"}, "cp313t", "manylinux_2_28_x86_64"),  # free-threaded
        ({"ext_suffix": ".cpython-311d-x86_64-linux-gnu.so"}, "cp311d", "manylinux_2_28_x86_64"),  # debug build
        (
            {"implementation": "pypy", "ext_suffix": ".pypy39-pp73-x86_64-linux-gnu.so"},
            "pypy39_pp73",
            "manylinux_2_28_x86_64",
        ),
        ({"libc": None}, "cp313", "linux_x86_64"),  # musl: no glibc floor to state
        ({"pointer_bits": 32}, "cp313", "manylinux_2_28_i686"),  # 32-bit interpreter on a 64-bit kernel
        ({"platform": "linux-aarch64", "libc": "glibc 2.39"}, "cp313", "manylinux_2_39_aarch64"),
        (
            {"platform": "macosx-11.0-arm64", "libc": None, "ext_suffix": ".cpython-313-darwin.so"},
            "cp313",
            "macosx_11_0_arm64",
        ),
        ({"platform": "win-amd64", "libc": None, "ext_suffix": ".cp313-win_amd64.pyd"}, "cp313", "win_amd64"),
    ],
)
def test_tags_from_the_interpreters_own_answers(changes: dict, abi: str, platform: str) -> None:
    info = _info(**changes)
    assert (abi_tag(info), platform_tag(info)) == (abi, platform)


# --- the Python layer through the CLI ----------------------------------------------------------


@pytest.fixture
def venv(tmp_path: Path):
    return make_venv(tmp_path / "env")


def test_every_distribution_with_name_version_installer_and_requested(venv, tmp_path: Path) -> None:
    add_dist(venv.site, "Foo_Bar", "1.0", installer="pip", requested=True)
    add_dist(venv.site, "torch", "2.13.0+cpu", installer="pip")
    add_dist(venv.site, "nvidia-cudnn-cu12", "9.10.2.21", installer="uv")
    add_dist(venv.site, "legacy", "0.1", installer=None)
    result, text = capture(tmp_path / "env.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    lock = load_lock(tmp_path / "env.lock").lock
    packages = python_packages(lock)
    assert set(packages) == {"foo-bar", "torch", "nvidia-cudnn-cu12", "legacy"}  # envlock itself is not there
    assert packages["foo-bar"].requested is True and packages["foo-bar"].installer == "pip"
    assert packages["torch"].version == "2.13.0+cpu"  # the local label replay needs to pick the index
    assert packages["torch"].requested is False
    assert packages["nvidia-cudnn-cu12"].installer == "uv"
    assert packages["legacy"].installer is None
    assert all(p.source == "index" for p in packages.values())
    assert lock.python.environment_kind == "venv"
    assert lock.python.version == ".".join(map(str, sys.version_info[:3]))


def test_sources_from_direct_url_with_credentials_and_home_removed(venv, tmp_path: Path) -> None:
    home = tmp_path / "home" / "researcher"
    (home / "src" / "myproj").mkdir(parents=True)
    add_dist(
        venv.site, "myproj", "0.3.dev0", direct_url={"url": f"file://{home}/src/myproj", "dir_info": {"editable": True}}
    )
    add_dist(venv.site, "localdir", "1.0", direct_url={"url": "file:///opt/src/localdir", "dir_info": {}})
    add_dist(
        venv.site,
        "private-wheel",
        "2.0",
        direct_url={
            "url": "https://deploy:s3cr3t-token@pypi.corp.example/files/private_wheel-2.0-py3-none-any.whl",
            "archive_info": {"hashes": {"sha256": SHA}},
        },
    )
    add_dist(
        venv.site,
        "fromgit",
        "0.0.1",
        direct_url={
            "url": "https://x-access-token:ghp_abcdef123456@github.com/org/fromgit.git",
            "vcs_info": {"vcs": "git", "commit_id": COMMIT},
            "subdirectory": "python",
        },
    )
    result, text = capture(tmp_path / "env.lock", "--python", str(venv.python), env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr
    packages = python_packages(load_lock(tmp_path / "env.lock").lock)
    assert (packages["myproj"].source, packages["myproj"].url) == ("editable", "file://~/src/myproj")
    assert (packages["localdir"].source, packages["localdir"].url) == ("directory", "file:///opt/src/localdir")
    wheel = packages["private-wheel"]
    assert (wheel.source, wheel.url, wheel.archive_hash) == (
        "url",
        "https://pypi.corp.example/files/private_wheel-2.0-py3-none-any.whl",
        f"sha256:{SHA}",
    )
    git = packages["fromgit"]
    assert (git.source, git.url, git.vcs, git.commit, git.subdirectory) == (
        "vcs",
        "https://github.com/org/fromgit.git",
        "git",
        COMMIT,
        "python",
    )
    for secret in ("s3cr3t-token", "ghp_abcdef123456", "deploy", "x-access-token", str(home)):
        assert secret not in text


def test_values_the_lock_cannot_hold_are_recorded_as_far_as_possible_with_a_warning(venv, tmp_path: Path) -> None:
    add_dist(venv.site, "oldpkg", "1.0 beta 2")  # a pre-PEP 440 version with spaces
    add_dist(
        venv.site, "ftppkg", "1.0", direct_url={"url": "ftp://mirror.example/ftppkg-1.0.tar.gz", "archive_info": {}}
    )
    add_dist(
        venv.site,
        "svnpkg",
        "2.0",
        direct_url={"url": "https://svn.example/repo", "vcs_info": {"vcs": "svn", "commit_id": "1234"}},
    )
    add_dist(venv.site, "oddinstaller", "1.0", installer="my installer v2")
    result, text = capture(tmp_path / "env.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    lock = load_lock(tmp_path / "env.lock").lock  # the written lock loads again
    packages = python_packages(lock)
    assert packages["oldpkg"].version == "1.0_beta_2"
    assert (packages["ftppkg"].source, packages["ftppkg"].url) == ("url", None)
    assert (packages["svnpkg"].source, packages["svnpkg"].vcs, packages["svnpkg"].commit) == ("vcs", "svn", None)
    assert packages["oddinstaller"].installer is None
    warnings = "\n".join(lock.capture_warnings)
    assert "oldpkg-1.0 beta 2.dist-info" in warnings and "'1.0 beta 2'" in warnings
    assert "ftppkg-1.0.dist-info/direct_url.json" in warnings
    assert "svnpkg-2.0.dist-info/direct_url.json" in warnings
    assert "oddinstaller-1.0.dist-info/INSTALLER" in warnings


def test_a_second_copy_of_one_distribution_is_reported(venv, tmp_path: Path) -> None:
    add_dist(venv.site, "dup", "1.0")
    (venv.site / "dup-2.0.dist-info").mkdir()
    (venv.site / "dup-2.0.dist-info" / "METADATA").write_text("Name: dup\nVersion: 2.0\n\n")
    result, _ = capture(tmp_path / "env.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    lock = load_lock(tmp_path / "env.lock").lock
    assert python_packages(lock)["dup"].version == "1.0"
    assert any("dup-2.0.dist-info" in w and "second copy" in w for w in lock.capture_warnings)


def test_capture_of_another_interpreter_uses_its_own_tags_and_packages(tmp_path: Path) -> None:
    """--python runs a stdlib-only script under the target; nothing of envlock is installed there."""
    other = other_python_version()
    if other is None:
        pytest.skip("this machine has no Python of another minor version to build a venv from")
    venv = make_venv(tmp_path / "other", python=other)
    add_dist(venv.site, "only-here", "1.0")
    version = [
        int(x)
        for x in subprocess.run(
            [str(venv.python), "-c", "import sys; print(*sys.version_info[:3])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    ]
    result, _ = capture(tmp_path / "other.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    lock = load_lock(tmp_path / "other.lock").lock
    assert lock.python.version == ".".join(map(str, version))
    assert lock.python.abi_tag == f"cp{version[0]}{version[1]}"
    assert lock.python.abi_tag != f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert set(python_packages(lock)) == {"only-here"}
    assert not list(venv.site.glob("envlock*"))


@pytest.mark.slow
def test_torch_cpu_wheel_keeps_its_local_label(tmp_path: Path) -> None:
    """The real torch 2.13.0 CPU wheel (tests/envs.py, cached): ``+cpu`` survives into the lock."""
    from tests.envs import torch_cpu_venv

    venv = torch_cpu_venv()
    result, _ = capture(tmp_path / "torch.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    packages = python_packages(load_lock(tmp_path / "torch.lock").lock)
    assert packages["torch"].version == "2.13.0+cpu"
    assert packages["torch"].source == "index"
    assert "numpy" in packages


@given(st.text(alphabet="AbZz09-_.", min_size=1, max_size=24))
def test_canonical_name_is_packagings(name: str) -> None:
    """capture normalises names without importing packaging (import cost); it must agree with it."""
    assert canonical_name(name) == canonicalize_name(name)


def test_an_interpreter_outside_any_venv_is_a_system_environment(tmp_path: Path) -> None:
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if sys.prefix == sys.base_prefix or not base.exists():
        pytest.skip("the tests do not run from a virtualenv, so there is no separate base interpreter")
    result, _ = capture(tmp_path / "base.lock", "--python", str(base))
    assert result.returncode == 0, result.stderr
    assert load_lock(tmp_path / "base.lock").lock.python.environment_kind == "system"


def test_the_interpreter_probe_answers_the_same_in_process_and_in_a_subprocess(tmp_path: Path) -> None:
    """The script that runs under --python targets gives what the in-process read gives for the same interpreter."""
    venv = make_venv(tmp_path / "same")
    completed = subprocess.run(
        [str(venv.python), "-I", "-c", _PROBE_SCRIPT], capture_output=True, text=True, check=True
    )
    from_child = interpreter_from_dict(parse_probe_output(completed.stdout))
    in_process = inspect_interpreter(None)
    assert from_child.version_info == in_process.version_info == tuple(sys.version_info[:3])
    for attr in ("implementation", "version", "soabi", "ext_suffix", "libc", "pointer_bits", "platform", "machine"):
        assert getattr(from_child, attr) == getattr(in_process, attr), attr
    assert from_child.prefix == str(venv.path)
    assert from_child.site_dirs == (str(venv.site),)


def test_probe_output_keeps_any_path(tmp_path: Path) -> None:
    """Quotes, a tab, spaces and non-ASCII letters in a directory name survive the trip from the child.

    (``python -m venv`` itself refuses a newline in the path, so none is tried.)
    """
    odd = tmp_path / 'we\'ird "dir"\t\u00e9\u4e2d'
    try:
        odd.mkdir()
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses such a name")
    venv = make_venv(odd / "env")
    info = inspect_interpreter(str(venv.python))
    assert info.prefix == str(venv.path)
    assert info.site_dirs == (str(venv.site),)


def test_user_site_packages_of_a_base_interpreter_are_recorded(tmp_path: Path) -> None:
    """``pip install --user`` packages are importable outside a venv, and so are part of what is captured."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if not base.exists():
        pytest.skip("no base interpreter beside the venv")
    home = tmp_path / "home"
    user_site = home / ".local" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    add_dist(user_site, "user-only-pkg", "3.2.1")
    env = {"HOME": str(home), "PYTHONUSERBASE": str(home / ".local")}
    result, _ = capture(tmp_path / "user.lock", "--python", str(base), env=env)
    assert result.returncode == 0, result.stderr
    assert python_packages(load_lock(tmp_path / "user.lock").lock)["user-only-pkg"].version == "3.2.1"
    # Inside a venv the user site is not importable, so it is not recorded.
    venv = make_venv(tmp_path / "venv")
    result, _ = capture(tmp_path / "venv.lock", "--python", str(venv.python), env=env)
    assert result.returncode == 0, result.stderr
    assert "user-only-pkg" not in python_packages(load_lock(tmp_path / "venv.lock").lock)
