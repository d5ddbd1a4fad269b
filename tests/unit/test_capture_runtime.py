"""The numerics runtime: allow-listed variables and the BLAS/OpenMP libraries packages bundle.

Libraries are found from files; the layouts below are the ones real wheels use
(tests/data/envs/bundled-blas/SOURCE.md), and numpy/scipy's build configuration
files are the real ones.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import pytest

from envlock import records
from envlock.capture.collect import CaptureContext
from envlock.capture.distributions import scan_distributions
from envlock.capture.interpreter import inspect_interpreter
from envlock.capture.runtime import classify_shared_object, parse_build_config, probe_runtime, version_from_file_name
from envlock.lockfile import load_lock
from tests.conftest import DATA
from tests.unit._capture_envs import add_dist, capture, make_venv

BLAS_DATA = DATA / "envs" / "bundled-blas"


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("libscipy_openblas64_-32a4b2a6.so", ("blas", "scipy_openblas")),
        ("libopenblas64_p-r0-742d56dc.3.20.so", ("blas", "openblas")),
        ("libopenblasp-r0-2d23e62b.3.21.dev.so", ("blas", "openblas")),
        ("libmkl_rt.so.2", ("blas", "mkl")),
        ("libmkl_avx512.so.2", ("blas", "mkl")),
        ("libblis.so.4", ("blas", "blis")),
        ("libgomp-e985bcbb.so.1.0.0", ("openmp", "gomp")),
        ("libgomp.so.1", ("openmp", "gomp")),
        ("libiomp5.so", ("openmp", "iomp5")),
        ("libomp.dylib", ("openmp", "omp")),
        ("liblapack.so.3", ("lapack", "lapack")),
        ("libgfortran-040039e1-0352e75f.so.5.0.0", None),  # the Fortran runtime is not a BLAS
        ("libtorch_cpu.so", None),
        ("openblas_config.h", None),  # not a shared library
        ("openblas.py", None),
    ],
)
def test_classify_shared_object(file_name: str, expected) -> None:
    found = classify_shared_object(file_name)
    assert (found[:2] if found else None) == expected


@pytest.mark.parametrize(
    ("file_name", "version"),
    [
        ("libopenblas64_p-r0-742d56dc.3.20.so", "0.3.20"),  # numpy 1.22-1.25 wheels
        ("libopenblasp-r0-2d23e62b.3.21.dev.so", "0.3.21"),
        ("libopenblasp-r0.3.21.so", "0.3.21"),  # OpenBLAS's own name, unvendored
        ("libgomp.so.1", None),  # a soname number, not the library's release
        ("libgomp-e985bcbb.so.1.0.0", None),
        ("libscipy_openblas64_-32a4b2a6.so", None),
    ],
)
def test_version_from_file_name(file_name: str, version) -> None:
    assert version_from_file_name(file_name) == version


def test_build_config_of_real_numpy_and_scipy_wheels() -> None:
    numpy = parse_build_config((BLAS_DATA / "numpy-2.4.6.__config__.py").read_text())
    scipy = parse_build_config((BLAS_DATA / "scipy-1.17.1.__config__.py").read_text())
    assert numpy == {"blas": ("scipy-openblas", "0.3.31.188.0"), "lapack": ("scipy-openblas", "0.3.31.188.0")}
    assert scipy == {"blas": ("scipy-openblas", "0.3.30"), "lapack": ("scipy-openblas", "0.3.30")}


def test_build_config_without_a_build_dependencies_table() -> None:
    """numpy < 1.26 wrote a distutils-era config with no versions: nothing is invented."""
    old = "blas_opt_info={'libraries': ['openblas', 'openblas'], 'language': 'c'}\n"
    assert parse_build_config(old) == {}


def _site_with_bundled_libraries(site: Path, prefix: Path) -> None:
    """Lay out what numpy, scipy, scikit-learn, torch and the mkl wheel leave on disk (names from the real wheels)."""
    add_dist(site, "numpy", "2.4.6")
    (site / "numpy").mkdir()
    (site / "numpy" / "__config__.py").write_bytes((BLAS_DATA / "numpy-2.4.6.__config__.py").read_bytes())
    (site / "numpy.libs").mkdir()
    for name in ("libscipy_openblas64_-32a4b2a6.so", "libgfortran-040039e1-0352e75f.so.5.0.0"):
        (site / "numpy.libs" / name).write_bytes(b"")
    add_dist(site, "scipy", "1.17.1")
    (site / "scipy").mkdir()
    (site / "scipy" / "__config__.py").write_bytes((BLAS_DATA / "scipy-1.17.1.__config__.py").read_bytes())
    (site / "scipy.libs").mkdir()
    (site / "scipy.libs" / "libscipy_openblas-6cdc3b4a.so").write_bytes(b"")
    add_dist(site, "scikit-learn", "1.9.1")
    (site / "sklearn").mkdir()
    (site / "scikit_learn.libs").mkdir()
    (site / "scikit_learn.libs" / "libgomp-e985bcbb.so.1.0.0").write_bytes(b"")
    add_dist(site, "torch", "2.13.0+cpu")
    (site / "torch" / "lib").mkdir(parents=True)
    for name in ("libgomp.so.1", "libtorch_cpu.so", "libc10.so"):
        (site / "torch" / "lib" / name).write_bytes(b"")
    # The mkl wheel installs into <prefix>/lib, outside site-packages; its RECORD says so.
    mkl = add_dist(site, "mkl", "2025.3.0")
    (prefix / "lib").mkdir(exist_ok=True)
    rel = Path("..") / ".." / ".."
    for name in ("libmkl_core.so.2", "libmkl_rt.so.2", "libmkl_avx512.so.2"):
        (prefix / "lib" / name).write_bytes(b"")
    (mkl / "RECORD").write_text(
        "".join(f"{rel}/lib/{n},sha256=x,1\n" for n in ("libmkl_core.so.2", "libmkl_rt.so.2", "libmkl_avx512.so.2"))
    )
    # An old auditwheel layout: <package>/.libs inside the package.
    add_dist(site, "oldnumpy-fork", "1.0")
    (site / "oldnumpy_fork" / ".libs").mkdir(parents=True)
    (site / "oldnumpy_fork" / ".libs" / "libopenblasp-r0-2d23e62b.3.21.dev.so").write_bytes(b"")


def test_bundled_libraries_found_from_files(tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "env")
    _site_with_bundled_libraries(venv.site, venv.path)
    result, _ = capture(tmp_path / "env.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    libraries = {(lib.package, lib.name): lib for lib in load_lock(tmp_path / "env.lock").lock.runtime.libraries}
    assert {key: (lib.kind, lib.file, lib.version) for key, lib in libraries.items()} == {
        ("numpy", "scipy_openblas"): ("blas", "numpy.libs/libscipy_openblas64_-32a4b2a6.so", "0.3.31.188.0"),
        ("scipy", "scipy_openblas"): ("blas", "scipy.libs/libscipy_openblas-6cdc3b4a.so", "0.3.30"),
        ("scikit-learn", "gomp"): ("openmp", "scikit_learn.libs/libgomp-e985bcbb.so.1.0.0", None),
        ("torch", "gomp"): ("openmp", "torch/lib/libgomp.so.1", None),
        ("mkl", "mkl"): ("blas", "lib/libmkl_rt.so.2", "2025.3.0"),
        ("oldnumpy-fork", "openblas"): ("blas", "oldnumpy_fork/.libs/libopenblasp-r0-2d23e62b.3.21.dev.so", "0.3.21"),
    }


def test_no_package_is_imported(tmp_path: Path) -> None:
    """A numpy whose __init__ would announce an import: capture must not run it."""
    venv = make_venv(tmp_path / "env")
    _site_with_bundled_libraries(venv.site, venv.path)
    marker = tmp_path / "imported"
    for package in ("numpy", "scipy", "sklearn", "torch"):
        (venv.site / package / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('{package}\\n')\n")
    (venv.site / "numpy" / "__config__.py").write_text(
        (BLAS_DATA / "numpy-2.4.6.__config__.py").read_text() + f"\nopen({str(marker)!r}, 'a').write('config\\n')\n"
    )
    result, _ = capture(tmp_path / "env.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    assert not marker.exists()


def test_numerics_variables_recorded_and_others_not(tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "env")
    home = tmp_path / "home" / "someone"
    home.mkdir(parents=True)
    env = {
        "HOME": str(home),
        "OMP_NUM_THREADS": "8",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "NCCL_ALGO": "Ring",
        "XLA_FLAGS": f"--xla_dump_to={home}/xla-dumps",
        "MY_PRIVATE_SETTING": "not-allow-listed-7731",
    }
    result, text = capture(tmp_path / "env.lock", "--python", str(venv.python), env=env)
    assert result.returncode == 0, result.stderr
    recorded = load_lock(tmp_path / "env.lock").lock.runtime.env
    assert recorded["OMP_NUM_THREADS"] == "8"
    assert recorded["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert recorded["NCCL_ALGO"] == "Ring"
    assert recorded["XLA_FLAGS"] == "--xla_dump_to=~/xla-dumps"
    assert "MY_PRIVATE_SETTING" not in recorded and "not-allow-listed-7731" not in text


def test_runtime_probe_is_fast_on_a_sixty_package_env(tmp_path: Path) -> None:
    """Budget ~20 ms (issue 2: capture must cost well under pip freeze); measured ~0.5 ms here."""
    site = tmp_path / "site-packages"
    site.mkdir()
    _site_with_bundled_libraries(site, tmp_path)
    for i in range(54):
        add_dist(site, f"filler-{i}", "1.0")
    info = records.replace(inspect_interpreter(None), site_dirs=(str(site),))
    ctx = CaptureContext(info, scan_distributions(info.site_dirs))
    assert len(ctx.dists) == 60
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        section = probe_runtime(ctx)
        timings.append(time.perf_counter() - start)
    assert len(section.libraries) == 6
    median = statistics.median(timings)
    print(f"probe_runtime on 60 distributions: median {median * 1000:.2f} ms", file=sys.stderr)
    assert median < 0.020


def test_conda_provided_blas_and_openmp(tmp_path: Path) -> None:
    """In a conda env numpy uses conda's libopenblas / llvm-openmp from <prefix>/lib: named from conda-meta file lists.

    The two records are written here in the shape conda gives them (name,
    version, build, files); libgcc-ng is the real corpus record, whose files
    include share/info/libgomp.info but no libgomp library.
    """
    venv = make_venv(tmp_path / "condaenv")
    meta = venv.path / "conda-meta"
    meta.mkdir()
    (meta / "libopenblas-0.3.21-pthreads_h78a6416_3.json").write_text(
        json.dumps(
            {
                "name": "libopenblas",
                "version": "0.3.21",
                "build": "pthreads_h78a6416_3",
                "subdir": "linux-64",
                "channel": "https://conda.anaconda.org/conda-forge/linux-64",
                "files": ["lib/libopenblas.so", "lib/libopenblas.so.0", "lib/libopenblasp-r0.3.21.so"],
            }
        )
    )
    (meta / "llvm-openmp-15.0.7-h0cdce71_0.json").write_text(
        json.dumps(
            {
                "name": "llvm-openmp",
                "version": "15.0.7",
                "build": "h0cdce71_0",
                "subdir": "linux-64",
                "channel": "https://conda.anaconda.org/conda-forge/linux-64",
                "files": ["lib/libomp.so", "lib/libgomp.so.1"],
            }
        )
    )
    (meta / "libgcc-ng-9.3.0-h5101ec6_17.json").write_bytes(
        (DATA / "conda_meta" / "autodock-linux64.defaults.libgcc-ng-9.3.0-h5101ec6_17.json").read_bytes()
    )
    result, _ = capture(tmp_path / "conda.lock", "--python", str(venv.python))
    assert result.returncode == 0, result.stderr
    libraries = {
        (lib.package, lib.name): (lib.kind, lib.file, lib.version)
        for lib in load_lock(tmp_path / "conda.lock").lock.runtime.libraries
    }
    assert libraries == {
        ("libopenblas", "openblas"): ("blas", "lib/libopenblas.so", "0.3.21"),
        ("llvm-openmp", "omp"): ("openmp", "lib/libomp.so", "15.0.7"),
        ("llvm-openmp", "gomp"): ("openmp", "lib/libgomp.so.1", "15.0.7"),  # llvm-openmp's libgomp compatibility link
    }
