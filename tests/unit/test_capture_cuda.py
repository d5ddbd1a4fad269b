"""CUDA stack capture: the real toolkit here, real CUDA wheels asked through ctypes, real framework files.

Expected versions are read independently by the tests (the toolkit's own
version.json or ``nvcc --version``, the wheels' dist-info names), never taken
from envlock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from envlock import records
from envlock.capture import cuda, cuda_libs
from envlock.capture.collect import CaptureContext
from envlock.capture.distributions import scan_distributions
from envlock.capture.interpreter import inspect_interpreter
from envlock.lockfile import load_lock
from tests.conftest import DATA, run_envlock
from tests.envs import cuda_wheels_venv, torch_cpu_venv

FRAMEWORKS = DATA / "frameworks"
SYSTEM_CUDA = Path("/usr/local/cuda")


def capture_lock(tmp_path: Path, *args: str, env: dict | None = None):
    out = tmp_path / "envlock.lock"
    full_env = {"ENVLOCK_CACHE_DIR": str(tmp_path / "cache")}
    full_env.update(env or {})
    result = run_envlock("capture", "-q", "-o", str(out), *args, env=full_env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return load_lock(out).lock


def components(lock, source: str) -> dict[str, object]:
    return {c.name: c for c in lock.cuda.components if c.source == source}


def wheel_version(venv, project: str) -> str:
    """The installed wheel's version, from its dist-info directory name (read here, not by envlock)."""
    (info,) = venv.site_packages.glob(f"{project.replace('-', '_')}-*.dist-info")
    return info.name[len(project) + 1 : -len(".dist-info")]


@pytest.fixture(scope="module")
def cuda_venv():
    return cuda_wheels_venv()


@pytest.fixture(scope="module")
def torch_venv():
    return torch_cpu_venv()


def compile_library(tmp_path: Path, name: str, source: str) -> Path:
    c_file = tmp_path / f"{name}.c"
    c_file.write_text(source)
    target = tmp_path / name
    result = subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(target), str(c_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return target


# --- the system toolkit of this machine ------------------------------------------------------


@pytest.mark.skipif(not SYSTEM_CUDA.exists(), reason="no CUDA toolkit under /usr/local/cuda on this machine")
def test_system_toolkit_under_usr_local_cuda(tmp_path):
    version_json = SYSTEM_CUDA / "version.json"
    if version_json.is_file():
        data = json.loads(version_json.read_text())
        expected_toolkit = data["cuda"]["version"]
        expected_release = ".".join(expected_toolkit.split(".")[:2])
    else:  # this machine's toolkit (pip-built, 13.0) ships no version.json: ask its nvcc directly
        out = subprocess.run([str(SYSTEM_CUDA / "bin" / "nvcc"), "--version"], capture_output=True, text=True).stdout
        expected_release = re.search(r"release (\d+\.\d+)", out).group(1)
        expected_toolkit = expected_release
        expected_nvcc = re.search(r", V(\S+)", out).group(1)
    lock = capture_lock(tmp_path)
    system = [c for c in lock.cuda.components if c.source == "system" and c.location == os.path.realpath(SYSTEM_CUDA)]
    by_name = {c.name: c.version for c in system}
    assert by_name["cuda-toolkit"] == expected_toolkit
    # libcudart answered cudaRuntimeGetVersion through ctypes: the same release.
    assert by_name["cudart"] == expected_release
    if not version_json.is_file():
        assert by_name["nvcc"] == expected_nvcc
    # /usr/local/bin/nvcc is a wrapper script here: /usr/local must not pass for a toolkit.
    assert all(c.location != "/usr/local" for c in lock.cuda.components)


def test_toolkit_named_by_cuda_home_with_version_json(tmp_path, cuda_venv):
    """A toolkit outside /usr/local: version.json read, and its libcudart (a real one) asked for its version."""
    root = tmp_path / "cuda-12.8"
    (root / "lib64").mkdir(parents=True)
    shutil.copy(cuda_venv.site_packages / "nvidia/cuda_runtime/lib/libcudart.so.12", root / "lib64" / "libcudart.so.12")
    (root / "version.json").write_text(
        json.dumps(
            {
                "cuda": {"name": "CUDA SDK", "version": "12.8.1"},
                "cuda_cudart": {"name": "CUDA Runtime (cudart)", "version": "12.8.90"},
                "cuda_nvcc": {"name": "CUDA NVCC", "version": "12.8.93"},
            }
        )
    )
    lock = capture_lock(tmp_path, env={"CUDA_HOME": str(root)})
    mine = {c.name: c.version for c in lock.cuda.components if c.source == "system" and c.location == str(root)}
    assert mine == {"cuda-toolkit": "12.8.1", "nvcc": "12.8.93", "cudart": "12.8"}


# --- CUDA libraries from pip wheels, asked through ctypes ------------------------------------------


def test_cudnn_and_cublas_versions_come_from_the_libraries(tmp_path, cuda_venv):
    lock = capture_lock(tmp_path, "--python", str(cuda_venv.python))
    pip = components(lock, "pip")
    cudnn_wheel = wheel_version(cuda_venv, "nvidia_cudnn_cu12")
    cublas_wheel = wheel_version(cuda_venv, "nvidia_cublas_cu12")
    runtime_wheel = wheel_version(cuda_venv, "nvidia_cuda_runtime_cu12")
    major_minor = lambda v: ".".join(v.split(".")[:2])  # noqa: E731
    assert major_minor(pip["cudnn"].version) == major_minor(cudnn_wheel)
    assert major_minor(pip["cublas"].version) == major_minor(cublas_wheel)
    assert pip["cudart"].version == major_minor(runtime_wheel)
    # The library's own answer (MAJOR.MINOR.PATCH), not the 4-part wheel version: ctypes really ran.
    assert pip["cudnn"].version != cudnn_wheel and len(pip["cudnn"].version.split(".")) == 3
    assert pip["cublas"].version != cublas_wheel and len(pip["cublas"].version.split(".")) == 3
    assert pip["cudnn"].location == f"nvidia-cudnn-cu12=={cudnn_wheel}"
    assert pip["cublas"].location == f"nvidia-cublas-cu12=={cublas_wheel}"
    assert not [w for w in lock.capture_warnings if w.startswith("cuda")]


def test_version_cache_is_keyed_by_file_identity(tmp_path, cuda_venv, monkeypatch):
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    library = tmp_path / "lib" / "libcudart.so.12"
    library.parent.mkdir()
    shutil.copy(cuda_venv.site_packages / "nvidia/cuda_runtime/lib/libcudart.so.12", library)
    first = cuda_libs.query_versions([("cudart", str(library))])[str(library)].version
    assert first == "12.8"
    cache_file = tmp_path / "cache" / "cuda-library-versions.json"
    data = json.loads(cache_file.read_text())
    (entry,) = data["entries"].values()
    # Plant a different answer: a second query must come from the cache, not the library.
    entry["raw"] = [11040]
    cache_file.write_text(json.dumps(data))
    assert cuda_libs.query_versions([("cudart", str(library))])[str(library)].version == "11.4"
    # A changed file (new mtime) is asked again.
    stat = library.stat()
    os.utime(library, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cuda_libs.query_versions([("cudart", str(library))])[str(library)].version == first


def _plant_cached_answer(cache_file, raw: list[int]) -> None:
    data = json.loads(cache_file.read_text())
    (entry,) = data["entries"].values()
    entry["raw"] = raw
    cache_file.write_text(json.dumps(data))


def test_version_cache_key_has_the_change_time(tmp_path, cuda_venv, monkeypatch):
    """A file whose contents changed but whose size and mtime were put back (``touch -d``) is asked again."""
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    library = tmp_path / "lib" / "libcudart.so.12"
    library.parent.mkdir()
    shutil.copy(cuda_venv.site_packages / "nvidia/cuda_runtime/lib/libcudart.so.12", library)
    first = cuda_libs.query_versions([("cudart", str(library))])[str(library)].version
    cache_file = tmp_path / "cache" / "cuda-library-versions.json"
    _plant_cached_answer(cache_file, [11040])
    assert cuda_libs.query_versions([("cudart", str(library))])[str(library)].version == "11.4"
    stat = library.stat()
    os.chmod(library, 0o600)  # moves the change time only
    os.utime(library, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert library.stat().st_mtime_ns == stat.st_mtime_ns and library.stat().st_size == stat.st_size
    assert cuda_libs.query_versions([("cudart", str(library))])[str(library)].version == first


def test_envlock_no_cache_turns_the_version_cache_off(tmp_path, cuda_venv, monkeypatch):
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    library = tmp_path / "lib" / "libcudart.so.12"
    library.parent.mkdir()
    shutil.copy(cuda_venv.site_packages / "nvidia/cuda_runtime/lib/libcudart.so.12", library)
    monkeypatch.setenv("ENVLOCK_NO_CACHE", "1")
    assert cuda_libs.query_versions([("cudart", str(library))])[str(library)].version == "12.8"
    cache_file = tmp_path / "cache" / "cuda-library-versions.json"
    assert not cache_file.exists()  # nothing written either
    monkeypatch.delenv("ENVLOCK_NO_CACHE")
    cuda_libs.query_versions([("cudart", str(library))])
    _plant_cached_answer(cache_file, [11040])
    monkeypatch.setenv("ENVLOCK_NO_CACHE", "1")
    assert cuda_libs.query_versions([("cudart", str(library))])[str(library)].version == "12.8"  # not the planted 11.4


def test_a_crashing_library_costs_only_itself(tmp_path, cuda_venv, monkeypatch):
    """A real crash: cuDNN 9's front library copied away from its sub-libraries aborts the
    process inside cudnnGetVersion ("Unable to load any of {libcudnn_graph.so.9...}", SIGABRT)."""
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    crasher = tmp_path / "libcudnn.so.9"
    shutil.copy(cuda_venv.site_packages / "nvidia/cudnn/lib/libcudnn.so.9", crasher)
    no_symbol = compile_library(tmp_path, "libnccl.so.2", "int unrelated(void) { return 0; }\n")
    good_dir = tmp_path / "good"
    good_dir.mkdir()
    nccl = compile_library(good_dir, "libnccl.so.2", "int ncclGetVersion(int *v) { *v = 22703; return 0; }\n")
    cudart = cuda_venv.site_packages / "nvidia/cuda_runtime/lib/libcudart.so.12"
    answers = cuda_libs.query_versions(
        [("cudnn", str(crasher)), ("nccl", str(no_symbol)), ("nccl", str(nccl)), ("cudart", str(cudart))]
    )
    assert answers[str(crasher)].version is None and "crashed" in answers[str(crasher)].error
    assert "signal 6" in answers[str(crasher)].error
    assert answers[str(no_symbol)].version is None and "AttributeError" in answers[str(no_symbol)].error
    assert answers[str(nccl)].version == "2.27.3"
    assert answers[str(cudart)].version == "12.8"


def test_wheel_version_recorded_and_noted_when_the_library_cannot_answer(tmp_path, monkeypatch):
    """A real scan of a site-packages holding an nccl wheel whose library lacks ncclGetVersion, and an NVTX wheel."""
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    site = tmp_path / "site-packages"
    for project, version, library in (
        ("nvidia_nccl_cu12", "2.27.3", "nvidia/nccl/lib/libnccl.so.2"),
        ("nvidia_nvtx_cu12", "12.8.90", "nvidia/nvtx/lib/libnvToolsExt.so.1"),
    ):
        info = site / f"{project}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {project.replace('_', '-')}\nVersion: {version}\n\n"
        )
        (info / "RECORD").write_text(f"{library},,\n{info.name}/METADATA,,\n")
        (site / library).parent.mkdir(parents=True)
        compile_library((site / library).parent, Path(library).name, "int unrelated(void) { return 0; }\n")
    ctx = CaptureContext(inspect_interpreter(None), scan_distributions([str(site)]))
    section = cuda.probe_cuda(ctx)
    pip = {c.name: c for c in section.components if c.source == "pip"}
    assert (pip["nccl"].version, pip["nccl"].location) == ("2.27.3", "nvidia-nccl-cu12==2.27.3")
    assert pip["nvtx"].version == "12.8.90"  # no version function: the wheel's version, by design
    (warning,) = [w for w in ctx.warnings if "nccl" in w]
    assert "libnccl.so.2 did not report its version" in warning and "2.27.3" in warning
    assert not [w for w in ctx.warnings if "nvtx" in w]


# --- framework builds ------------------------------------------------------------------------------


def test_torch_cpu_venv_is_captured_with_its_label_and_no_cuda(tmp_path, torch_venv):
    lock = capture_lock(tmp_path, "--python", str(torch_venv.python))
    torch_pkg = [p for p in lock.python.packages if p.name == "torch"]
    assert [p.version for p in torch_pkg] == ["2.13.0+cpu"]
    (build,) = [f for f in lock.cuda.frameworks if f.name == "torch"]
    assert (build.version, build.cuda, build.cudnn, build.rocm) == ("2.13.0+cpu", None, None, None)
    assert components(lock, "pip") == {}


def test_torch_version_py_of_the_real_cpu_wheel(torch_venv):
    text = (torch_venv.site_packages / "torch" / "version.py").read_text()
    assert cuda.parse_torch_version_py(text) == {"__version__": "2.13.0+cpu", "cuda": None, "hip": None}


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("torch-2.7.1+cu126.version.py", {"__version__": "2.7.1+cu126", "cuda": "12.6", "hip": None}),
        ("torch-2.2.1+cu121.version.py", {"__version__": "2.2.1+cu121", "cuda": "12.1", "hip": None}),
        (
            "torch-2.3.0.dev20240308+rocm6.0.version.py",
            {"__version__": "2.3.0.dev20240308+rocm6.0", "cuda": None, "hip": "6.0.32830-d62f6a171"},
        ),
    ],
)
def test_parse_recorded_torch_version_py(file, expected):
    assert cuda.parse_torch_version_py((FRAMEWORKS / file).read_text()) == expected


def _site_with_torch(tmp_path: Path, version: str, version_py: str, requires: str = "") -> Path:
    site = tmp_path / "site-packages"
    info = site / f"torch-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n{requires}\n")
    (site / "torch").mkdir()
    (site / "torch" / "version.py").write_text(version_py)
    return site


def test_cuda_torch_build_with_its_cudnn_pin(tmp_path):
    requires = (
        "Requires-Dist: filelock\n"
        'Requires-Dist: nvidia-cuda-runtime-cu12==12.6.77; platform_system == "Linux" and platform_machine == "x86_64"\n'
        'Requires-Dist: nvidia-cudnn-cu12==9.5.1.17; platform_system == "Linux" and platform_machine == "x86_64"\n'
    )
    site = _site_with_torch(
        tmp_path, "2.7.1+cu126", (FRAMEWORKS / "torch-2.7.1+cu126.version.py").read_text(), requires
    )
    builds, _ = cuda.find_frameworks(scan_distributions([str(site)]))
    assert [(b.name, b.version, b.cuda, b.cudnn, b.rocm) for b in builds] == [
        ("torch", "2.7.1+cu126", "12.6", "9.5.1.17", None)
    ]


def test_rocm_torch_build(tmp_path):
    site = _site_with_torch(
        tmp_path, "2.3.0.dev20240308+rocm6.0", (FRAMEWORKS / "torch-2.3.0.dev20240308+rocm6.0.version.py").read_text()
    )
    builds, _ = cuda.find_frameworks(scan_distributions([str(site)]))
    assert [(b.cuda, b.cudnn, b.rocm) for b in builds] == [(None, None, "6.0.32830")]


@pytest.mark.parametrize(
    ("file", "cuda_version", "cudnn_version"),
    [
        ("tensorflow-win-cuda10.1-dict.build_info.py", "10.1", "7"),
        ("tensorflow-win-cuda11.2-ordereddict.build_info.py", "11.2", "8"),
        ("tensorflow-linux-cuda12.1.build_info.py", "12.1", "8"),
    ],
)
def test_tensorflow_build_info(tmp_path, file, cuda_version, cudnn_version):
    site = tmp_path / "site-packages"
    info = site / "tensorflow-2.15.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tensorflow\nVersion: 2.15.0\n\n")
    platform_dir = site / "tensorflow" / "python" / "platform"
    platform_dir.mkdir(parents=True)
    shutil.copy(FRAMEWORKS / file, platform_dir / "build_info.py")
    builds, _ = cuda.find_frameworks(scan_distributions([str(site)]))
    assert [(b.name, b.cuda, b.cudnn) for b in builds] == [("tensorflow", cuda_version, cudnn_version)]


def test_tensorflow_build_info_is_never_executed():
    hostile = (
        "import os\nos.system('touch /tmp/envlock-pwned')\nbuild_info = {'cuda_version': __import__('os').getcwd()}\n"
    )
    assert cuda.parse_tensorflow_build_info(hostile) == {}
    assert cuda.parse_tensorflow_build_info("build_info = [") == {}


@pytest.mark.parametrize(
    ("dists", "expected"),
    [
        ({"jaxlib": "0.4.20+cuda12.cudnn89"}, ("0.4.20+cuda12.cudnn89", "12", "8.9")),
        ({"jaxlib": "0.7.2", "jax-cuda12-plugin": "0.7.2", "jax-cuda12-pjrt": "0.7.2"}, ("0.7.2", "12", None)),
        ({"jaxlib": "0.7.2"}, ("0.7.2", None, None)),
    ],
)
def test_jax_builds(tmp_path, dists, expected):
    site = tmp_path / "site-packages"
    for name, version in dists.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    builds, _ = cuda.find_frameworks(scan_distributions([str(site)]))
    assert [(b.version, b.cuda, b.cudnn) for b in builds] == [expected]


# --- conda ------------------------------------------------------------------------------------------


def test_conda_cuda_packages_from_conda_meta_names(tmp_path):
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    # Names as in shared/corpus/conda_lock/conda-lock.clay-model-cuda118.yml (cudatoolkit 11.8.0, cudnn 8.8.0.121,
    # nccl 2.19.4.1) and a cuda-* split package with its -dev twin, which is left out.
    for name in (
        "cudatoolkit-11.8.0-h4ba93d1_13.json",
        "cudnn-8.8.0.121-h264754d_4.json",
        "nccl-2.19.4.1-h6103f9b_0.json",
        "cuda-version-11.8-h70ddcb2_3.json",
        "cuda-cudart-dev-11.8.89-0.json",
        "python-3.11.6-hab00c5b_0_cpython.json",
        "history",
        "not-a-record.txt",
    ):
        (prefix / "conda-meta" / name).write_text("{}")
    found = cuda.find_conda_components(prefix)
    assert sorted((f.name, f.fallback_version, f.location) for f in found) == [
        ("cuda-version", "11.8", "cuda-version-11.8-h70ddcb2_3"),
        ("cudatoolkit", "11.8.0", "cudatoolkit-11.8.0-h4ba93d1_13"),
        ("cudnn", "8.8.0.121", "cudnn-8.8.0.121-h264754d_4"),
        ("nccl", "2.19.4.1", "nccl-2.19.4.1-h6103f9b_0"),
    ]


# --- pure parsers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("cudart", [13000], "13.0"),
        ("cudart", [12080], "12.8"),
        ("cudart", [11020], "11.2"),
        ("cudnn", [91002], "9.10.2"),  # cuDNN 9: 10000*major + 100*minor + patch
        ("cudnn", [8902], "8.9.2"),  # cuDNN 8: 1000*major + 100*minor + patch
        ("cudnn", [7605], "7.6.5"),
        ("nccl", [22703], "2.27.3"),
        ("nccl", [2804], "2.8.4"),  # before NCCL 2.9's wider encoding
        ("cublas", [12, 9, 3], "12.9.3"),
        ("cufft", [11, 3, 3], "11.3.3"),
        ("nvrtc", [12, 8], "12.8"),
        ("nvjitlink", [13, 0], "13.0"),
        ("cublas", [12, 9], None),
        ("cudart", [], None),
        ("cudnn", [-1], None),
        ("cupti", [1], None),
    ],
)
def test_decode_version(kind, raw, expected):
    assert cuda_libs.decode_version(kind, raw) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nvidia-cudnn-cu12", "cudnn"),
        ("nvidia-cublas-cu12", "cublas"),
        ("nvidia-cublas", "cublas"),  # CUDA 13 wheels dropped the suffix
        ("nvidia-cuda-runtime-cu12", "cudart"),
        ("nvidia-cuda-runtime", "cudart"),
        ("nvidia-cuda-nvrtc-cu11", "nvrtc"),
        ("nvidia-nccl-cu12", "nccl"),
        ("nvidia-nvjitlink-cu12", "nvjitlink"),
        ("nvidia-cusparselt-cu13", "cusparselt"),
        ("nvidia-nvtx-cu12", "nvtx"),
        ("nvidia-ml-py", None),  # the NVML binding, not a CUDA library
        ("nvidia-dali-cuda120", None),
        ("torch", None),
    ],
)
def test_parse_pip_component(name, expected):
    assert cuda.parse_pip_component(name) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 13.0, V13.0.88\n",
            ("13.0", "13.0.88"),
        ),
        (
            "Cuda compilation tools, release 11.8, V11.8.89\nBuild cuda_11.8.r11.8/compiler.31833905_0\n",
            ("11.8", "11.8.89"),
        ),
        ("garbage", (None, None)),
    ],
)
def test_parse_nvcc_version(text, expected):
    assert cuda.parse_nvcc_version(text) == expected


def test_parse_version_files():
    assert cuda.parse_version_txt("CUDA Version 10.1.243\n") == "10.1.243"
    assert cuda.parse_version_json(
        '{"cuda": {"name": "CUDA SDK", "version": "12.4.1"}, "cuda_nvcc": {"version": "12.4.131"}}'
    ) == {"cuda-toolkit": "12.4.1", "nvcc": "12.4.131"}
    assert cuda.parse_version_json("[1, 2]") == {} and cuda.parse_version_json("{") == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.3", "12.3"),
        ("64_112", "11.2"),
        ("64_101", "10.1"),
        ("64_8", "8"),
        ("8", "8"),
        ("", None),
        ("64_x", None),
        (None, None),
    ],
)
def test_normalize_tensorflow_cuda(value, expected):
    assert cuda.normalize_tensorflow_cuda(value) == expected


def test_batches_never_hold_two_libraries_of_one_file_name():
    queries = [("cublas", "/a/libcublas.so.12"), ("cublas", "/b/libcublas.so.12"), ("cudnn", "/a/libcudnn.so.9")]
    assert cuda_libs.split_into_batches(queries) == [
        [("cublas", "/a/libcublas.so.12"), ("cudnn", "/a/libcudnn.so.9")],
        [("cublas", "/b/libcublas.so.12")],
    ]


def test_conda_env_libraries_are_asked_too(tmp_path, cuda_venv, monkeypatch):
    """A conda prefix whose cuda-cudart package put a real libcudart.so.12 in lib/: the library's answer wins."""
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "lib").mkdir()
    (prefix / "conda-meta" / "cuda-cudart-12.8.90-h5888daf_1.json").write_text("{}")
    shutil.copy(cuda_venv.site_packages / "nvidia/cuda_runtime/lib/libcudart.so.12", prefix / "lib" / "libcudart.so.12")
    interpreter = records.replace(inspect_interpreter(None), prefix=str(prefix), site_dirs=())
    ctx = CaptureContext(interpreter, [])
    section = cuda.probe_cuda(ctx)
    conda = [(c.name, c.version, c.location) for c in section.components if c.source == "conda"]
    assert conda == [("cudart", "12.8", "cuda-cudart-12.8.90-h5888daf_1")]
