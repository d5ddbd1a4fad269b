"""Package-list importers: pip-freeze, pylock, conda-explicit, conda-env, conda-lock.

Corpus files are real (tests/data/corpus/*/NAME.source.txt); expected values were
read from the files by eye.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from envlock.errors import FormatError
from envlock.formats.importers import import_bytes
from envlock.lockfile import dumps_lock

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"


def load(fmt: str, relative: str, **options):
    path = CORPUS / relative
    return import_bytes(fmt, path.read_bytes(), path.name, **options)


def text_import(fmt: str, text: str, **options):
    return import_bytes(fmt, text.encode("utf-8"), "input", **options)


# --- pip freeze / requirements.txt ------------------------------------------------------

FREEZE = """\
# a comment
numpy==1.26.4
Torch==2.3.0+cu121 ; sys_platform == "linux"  # trailing comment
requests==2.31.0 \\
    --hash=sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f
scipy>=1.0
--index-url https://user:s3cret@example.com/simple
-r other.txt
foo @ https://files.example.com/foo-1.2.3-py3-none-any.whl
# Editable install with no version control (mypkg==0.1.0)
-e /home/alice-canary/src/mypkg
-e git+https://github.com/o/baz@0123456789abcdef0123456789abcdef01234567#egg=baz
"""


def test_pip_freeze_lines():
    lock = text_import("pip-freeze", FREEZE)
    packages = {p.name: p for p in lock.python.packages}
    assert set(packages) == {"numpy", "torch", "requests", "scipy", "foo", "mypkg", "baz"}
    assert packages["scipy"].version == "unknown"  # not pinned: its name is kept, its version unknown
    assert (packages["baz"].version, packages["baz"].source, packages["baz"].url) == (
        "unknown",
        "editable",
        "https://github.com/o/baz",
    )
    assert (packages["numpy"].version, packages["numpy"].source) == ("1.26.4", "index")
    assert packages["torch"].version == "2.3.0+cu121"  # local label kept, name normalised
    assert (
        packages["requests"].archive_hash == "sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f"
    )
    assert (packages["foo"].version, packages["foo"].source, packages["foo"].url) == (
        "1.2.3",
        "url",
        "https://files.example.com/foo-1.2.3-py3-none-any.whl",
    )
    assert (packages["mypkg"].source, packages["mypkg"].url) == ("editable", "file://~/src/mypkg")
    warnings = " ".join(lock.capture_warnings)
    assert "line 6" in warnings and "not pinned" in warnings  # scipy>=1.0
    assert "--index-url is not recorded" in warnings
    assert "baz" in warnings  # editable VCS install without a version: named, not recorded
    assert lock.python.version is None and lock.nvidia is None and lock.os is None
    text = dumps_lock(lock)
    assert "s3cret" not in text and "alice-canary" not in text


def test_pip_freeze_duplicates_keep_the_first():
    lock = text_import("pip-freeze", "numpy==1.26.4\nNumPy==2.0.0\n")
    assert [(p.name, p.version) for p in lock.python.packages] == [("numpy", "1.26.4")]
    assert any("more than once" in w for w in lock.capture_warnings)


@pytest.mark.parametrize(
    "text, line",
    [
        ("numpy==1.0\nthis is not ] a requirement\n", 2),
        ("numpy==1.0\nrequests==2.31.0 --hash=sha256:58cd21\n", 2),  # hash cut short
        ("numpy==1.0\nrequests==2.31.0 \\\n", 2),  # continuation with nothing after it
        ("numpy==1.0\n--frobnicate\n", 2),
        ("numpy==1.0\ntorch==2.0\r--index-url http://evil\n", 2),  # a bare CR hiding a second line
    ],
)
def test_pip_freeze_unreadable_lines_name_the_line(text, line):
    with pytest.raises(FormatError, match=rf"line {line}:"):
        text_import("pip-freeze", text)


# --- pylock.toml ----------------------------------------------------------------------------


def test_pylock_written_by_pip_lock():
    lock = load("pylock", "pylock/pylock.pip-build-project.toml")
    packages = {p.name: p for p in lock.python.packages}
    assert {n: p.version for n, p in packages.items()} == {
        "build": "1.5.0",
        "flit-core": "4.0.2",
        "packaging": "26.3",
        "pyproject-hooks": "1.2.0",
    }
    assert (
        packages["packaging"].archive_hash == "sha256:d7193f7c8e4e93f444fde0262bf90af30e16fa0ad0ad44cb553c87339b23cd1c"
    )
    assert lock.origin == "import:pylock"


def test_pylock_from_uv_export_with_torch_cuda_wheels_and_marker_splits():
    lock = load("pylock", "pylock/pylock.uv-export.maia3-torch-cu13.toml")
    packages = {p.name: p for p in lock.python.packages}
    assert packages["torch"].version == "2.13.0"
    assert packages["numpy"].version == "2.2.6"  # first of three entries split by python_full_version
    assert "maia3" not in packages  # the project itself: editable directory without a version
    assert packages["torch"].archive_hash is None  # many wheels: which one was installed is unknown
    warnings = " ".join(lock.capture_warnings)
    assert "numpy is listed 3 times" in warnings and "2.4.6" in warnings and "2.5.2" in warnings


def test_pylock_from_uv_pip_compile():
    lock = load("pylock", "pylock/pylock.uv-pip-compile.spectree.toml")
    assert len(lock.python.packages) == 67


def test_pylock_dotted_key_bomb_is_refused_quickly():
    started = time.perf_counter()
    with pytest.raises(FormatError, match="line 2"):
        text_import("pylock", 'lock-version = "1.0"\n' + "a." * 20000 + "a = 1\n")
    assert time.perf_counter() - started < 1.0


def test_pylock_future_major_version_is_refused():
    with pytest.raises(FormatError, match="not supported"):
        text_import("pylock", 'lock-version = "2.0"\n')


# --- conda explicit ---------------------------------------------------------------------------


def test_conda_explicit_with_md5():
    lock = load("conda-explicit", "conda_explicit/conda-linux-64.xview2-pytorch-gpu.lock")
    packages = {p.name: p for p in lock.conda.packages}
    cudatoolkit = packages["cudatoolkit"]
    assert (cudatoolkit.version, cudatoolkit.build, cudatoolkit.channel, cudatoolkit.subdir) == (
        "11.1.1",
        "h6406543_8",
        "esri",
        "linux-64",
    )
    assert cudatoolkit.md5 == "4851e7f19b684e517dc8e6b5b375dda0"
    assert (packages["cudnn"].version, packages["python"].version) == ("8.2.1.32", "3.7.12")
    torch = lock.cuda.frameworks[0]  # pytorch-1.10.0-cuda111py37h07fa5b8_1
    assert (torch.name, torch.version, torch.cuda) == ("torch", "1.10.0", "11.1")
    # The env's interpreter is its python package; pip packages are not in an explicit list.
    assert (lock.python.version, lock.python.environment_kind, lock.python.packages) == ("3.7.12", "conda", ())


def test_conda_list_explicit_without_hashes():
    lock = load("conda-explicit", "conda_explicit/conda-list-explicit.xview2-pytorch-cu111.txt")
    packages = {p.name: p for p in lock.conda.packages}
    assert (packages["blas"].channel, packages["blas"].build) == (
        "pkgs/main",
        "mkl",
    )  # repo.anaconda.com/pkgs/main, .conda file
    assert packages["pytorch"].md5 is None
    torch = lock.cuda.frameworks[0]  # pytorch-1.10.1-py3.9_cuda11.1_cudnn8.0.5_0
    assert (torch.version, torch.cuda, torch.cudnn) == ("1.10.1", "11.1", "8.0.5")


@pytest.mark.parametrize("name, count", [("conda-linux-64.zlib.lock", 6), ("conda-win-64.zlib.lock", 6)])
def test_conda_lock_rendered_explicit_files(name, count):
    lock = load("conda-explicit", f"conda_explicit/{name}")
    assert len(lock.conda.packages) == count
    assert all(p.md5 and p.channel == "conda-forge" for p in lock.conda.packages)


def test_conda_explicit_sha256_fragment_and_token_are_handled():
    lock = text_import(
        "conda-explicit",
        "@EXPLICIT\nhttps://conda.anaconda.org/t/tk-123456/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda"
        "#sha256:" + "ab" * 32 + "\n",
    )
    (package,) = lock.conda.packages
    assert package.sha256 == "sha256:" + "ab" * 32
    assert "tk-123456" not in dumps_lock(lock)


def test_conda_explicit_value_the_lock_refuses_is_skipped_with_a_warning():
    lock = text_import(
        "conda-explicit",
        "@EXPLICIT\nhttps://conda.anaconda.org/conda-forge/linux-64/zlib-1.3$x-h1_0.conda\n"
        "https://conda.anaconda.org/conda-forge/linux-64/xz-5.2.6-h166bdaf_0.tar.bz2\n",
    )
    assert [p.name for p in lock.conda.packages] == ["xz"]
    assert any(w.startswith("line 2:") and "zlib" in w for w in lock.capture_warnings)


# --- conda env export -------------------------------------------------------------------------


def test_conda_env_export_with_pip_section():
    lock = load("conda-env", "conda_env/conda-env-export.win64-pytorch-cu113.yaml")
    conda = {p.name: p for p in lock.conda.packages}
    assert len(conda) == 39
    assert (conda["pytorch"].version, conda["pytorch"].build) == ("1.10.2", "py3.7_cuda11.3_cudnn8_0")
    assert (conda["cudatoolkit"].version, conda["jpeg"].version) == ("11.3.1", "9d")
    assert lock.python.version == "3.7.11"
    assert lock.python.environment_kind == "conda"
    pip = {p.name: p.version for p in lock.python.packages}
    assert len(pip) == 44 and pip["mlflow"] == "1.23.1" and pip["pywin32"] == "227"
    torch = lock.cuda.frameworks[0]
    assert (torch.version, torch.cuda, torch.cudnn) == ("1.10.2", "11.3", "8")


def test_conda_env_versions_stay_text():
    # YAML 1.1 would read 1.10 as the float 1.1.
    lock = text_import(
        "conda-env", "name: x\nprefix: /home/alice-canary/miniconda3/envs/x\ndependencies:\n  - foo=1.10=h1_0\n"
    )
    assert lock.conda.packages[0].version == "1.10"
    assert "alice-canary" not in dumps_lock(lock)


def test_conda_env_yaml_alias_bomb_is_refused():
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\ndependencies: [*c]\n"
    with pytest.raises(FormatError, match="aliases"):
        text_import("conda-env", bomb)


# --- conda-lock.yml ---------------------------------------------------------------------------


def test_conda_lock_real_project_with_cuda_stack():
    lock = load("conda-lock", "conda_lock/conda-lock.clay-model-cuda118.yml")
    packages = {p.name: p for p in lock.conda.packages}
    assert (packages["pytorch"].version, packages["pytorch"].build) == ("2.0.0", "cuda118py311h3b8d1c1_304")
    assert (packages["cudnn"].version, packages["nccl"].version, packages["cudatoolkit"].version) == (
        "8.8.0.121",
        "2.19.4.1",
        "11.8.0",
    )
    assert packages["cudnn"].sha256 == "sha256:f3fe3a6e0d6de423cadd6de644680f71d97b18becef225bcb9aa4f570e623a1e"
    assert lock.python.version == "3.11.6"
    assert lock.cuda.frameworks[0].cuda == "11.8"


def test_conda_lock_with_pip_packages_and_two_platforms():
    lock = load("conda-lock", "conda_lock/conda-lock.install-with-pip-deps.yml")
    assert all(p.subdir in ("linux-64", "noarch") for p in lock.conda.packages)
    pip = {p.name: p for p in lock.python.packages}
    assert {n: p.version for n, p in pip.items()} == {
        "certifi": "2023.7.22",
        "charset-normalizer": "3.3.2",
        "requests": "2.31.0",
        "urllib3": "2.0.7",
    }
    assert pip["requests"].archive_hash == "sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f"
    assert any("linux-64, linux-aarch64" in w for w in lock.capture_warnings)
    aarch64 = load("conda-lock", "conda_lock/conda-lock.install-with-pip-deps.yml", platform="linux-aarch64")
    assert {p.subdir for p in aarch64.conda.packages} <= {"linux-aarch64", "noarch"}
    assert {p.name: p.archive_hash for p in aarch64.python.packages}["charset-normalizer"] == (
        "sha256:8f4a014bc36d3c57402e2977dada34f9c12300af536839dc38c0beab8878f38a"
    )


def test_conda_lock_older_key_order_with_version_last():
    lock = load("conda-lock", "conda_lock/conda-lock.pypi-resolve-gh155.yml")
    assert lock.python.version == "3.9.10"
    assert {p.name: p.version for p in lock.python.packages}["numpy"] == "1.22.2"


def test_conda_lock_unknown_platform_is_a_usage_problem():
    with pytest.raises(FormatError, match="osx-arm64"):
        load("conda-lock", "conda_lock/conda-lock.install-with-pip-deps.yml", platform="osx-arm64")


def test_pip_freeze_windows_editable_path_is_scrubbed():
    lock = text_import(
        "pip-freeze", "# Editable install with no version control (tool==2.0)\n-e C:\\Users\\bob-canary\\src\\tool\n"
    )
    (package,) = lock.python.packages
    assert (package.source, package.url) == ("editable", "file://~/src/tool")


def test_pip_freeze_relative_editable_has_no_url():
    lock = text_import("pip-freeze", "# Editable install with no version control (tool==2.0)\n-e .\n")
    (package,) = lock.python.packages
    assert (package.name, package.version, package.source, package.url) == ("tool", "2.0", "editable", None)


def test_local_files_are_written_with_home_as_tilde():
    lock = text_import("pip-freeze", "pkg @ file:///home/alice-canary/dist/pkg-1.0-py3-none-any.whl\n")
    (package,) = lock.python.packages
    assert (package.version, package.source, package.url) == ("1.0", "url", "file://~/dist/pkg-1.0-py3-none-any.whl")
    lock = text_import(
        "conda-explicit", "@EXPLICIT\nfile:///home/alice-canary/conda-bld/linux-64/mypkg-1.0-h1_0.tar.bz2\n"
    )
    (conda,) = lock.conda.packages
    assert (conda.name, conda.channel, conda.url) == (
        "mypkg",
        "file://~/conda-bld",
        "file://~/conda-bld/linux-64/mypkg-1.0-h1_0.tar.bz2",
    )
    assert "alice-canary" not in dumps_lock(lock)


def test_warnings_are_bounded():
    lock = text_import("pip-freeze", "".join(f"pkg{i}>=1.0\n" for i in range(500)) + "numpy==1.26.4\n")
    # Every name is kept; the unpinned ones with version "unknown" and a warning each.
    versions = {p.name: p.version for p in lock.python.packages}
    assert len(versions) == 501 and versions["numpy"] == "1.26.4" and versions["pkg499"] == "unknown"
    assert len(lock.capture_warnings) == 201
    assert lock.capture_warnings[0].startswith("line 1: ") and "pkg0" in lock.capture_warnings[0]
    assert lock.capture_warnings[-1] == "300 more warnings like the ones above were not kept"
