"""`envlock show`: the text summary, --json, and the --markdown paper appendix."""

from __future__ import annotations

from envlock.lockfile import (
    CpuSection,
    CudaComponent,
    CudaSection,
    Gpu,
    Lock,
    NvidiaSection,
    PythonPackage,
    PythonSection,
    with_fingerprint,
    write_lock,
)
from tests.conftest import run_envlock


def _lock() -> Lock:
    return with_fingerprint(
        Lock(
            created_by="envlock 0.1.0",
            created_at="2026-11-29T03:00:00Z",
            origin="capture",
            python=PythonSection(
                implementation="cpython",
                version="3.11.7",
                environment_kind="venv",
                packages=(
                    PythonPackage(name="torch", version="2.7.0+cu128"),
                    PythonPackage(name="six", version="1.16.0"),
                ),
            ),
            cuda=CudaSection(
                components=(CudaComponent(name="cudnn", version="9.1.0", source="pip", location="nvidia-cudnn-cu12"),)
            ),
            nvidia=NvidiaSection(
                driver_present=True,
                driver_version="570.86.15",
                cuda_driver_version="12.8",
                gpus=(
                    Gpu(index=0, name="NVIDIA A100-SXM4-80GB", compute_capability="8.0"),
                    Gpu(index=1, name="NVIDIA A100-SXM4-80GB", compute_capability="8.0"),
                ),
            ),
            cpu=CpuSection(
                model_name="AMD EPYC 7763 64-Core Processor",
                microarchitecture="zen3",
                flags=("avx2", "fma"),
                physical_cores=64,
                logical_cores=128,
            ),
        )
    )


def test_show_text_names_every_layer(tmp_path):
    path = tmp_path / "envlock.lock"
    write_lock(_lock(), path)
    result = run_envlock("show", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "3.11.7" in out and "2.7.0+cu128" in out
    assert "570.86.15 (CUDA 12.8)" in out
    assert "2× NVIDIA A100-SXM4-80GB (cc 8.0)" in out
    assert "9.1.0 (pip)" in out
    assert "zen3" in out
    # Layers the lock does not know are said to be unknown, not left out.
    assert "OS" in out and "unknown" in out


def test_show_markdown_is_a_paper_appendix(tmp_path):
    path = tmp_path / "envlock.lock"
    lock = _lock()
    write_lock(lock, path)
    result = run_envlock("show", "--markdown", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "## Computational environment"
    # the appendix leads with the verdict, as every report does, before the table
    assert lines[2].startswith("**Python ") and lines[2].endswith("**")
    assert lines[4].startswith("- Python: ") and " packages; interpreter " in lines[4]
    assert lines.index("| Component | Version |") > 4
    assert "| NVIDIA driver | 570.86.15 (CUDA 12.8) |" in lines
    assert lock.fingerprint in result.stdout


def test_show_missing_file_is_exit_2_with_a_hint(tmp_path):
    result = run_envlock("show", str(tmp_path / "nope.lock"))
    assert result.returncode == 2
    assert "no such file" in result.stderr and "hint:" in result.stderr
