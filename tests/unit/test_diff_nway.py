"""N-way diff: machines grouped by identical layers, outliers explained against the majority."""

from __future__ import annotations

import json

from envlock import records
from envlock.diff_nway import group_locks
from envlock.lockfile import model as m
from envlock.lockfile.write import write_lock
from tests.conftest import run_envlock


def node(gpu: str = "NVIDIA A100-SXM4-80GB", cc: str = "8.0", torch: str = "2.3.0", omp: str | None = None) -> m.Lock:
    return m.Lock(
        python=m.PythonSection(
            version="3.11.7",
            packages=(m.PythonPackage(name="torch", version=torch), m.PythonPackage(name="six", version="1.16.0")),
        ),
        nvidia=m.NvidiaSection(
            driver_present=True,
            driver_version="550.54.15",
            gpus=tuple(m.Gpu(index=i, name=gpu, compute_capability=cc) for i in range(8)),
        ),
        runtime=m.RuntimeSection(env={"OMP_NUM_THREADS": omp} if omp else {}),
    )


def cluster() -> list[tuple[str, m.Lock]]:
    locks = [(f"node{i:02d}", node()) for i in range(9)]
    locks.insert(3, ("node-h100-a", node(gpu="NVIDIA H100 80GB HBM3", cc="9.0")))
    locks.append(("node-h100-b", node(gpu="NVIDIA H100 80GB HBM3", cc="9.0")))
    locks.append(("node-old-torch", node(torch="2.1.0")))
    locks.append(("laptop-import", records.replace(node(), nvidia=None)))
    return locks


def test_groups_per_layer_with_the_majority_first():
    report = group_locks(cluster())
    layers = {layer.section: layer for layer in report.layers}
    gpu = layers["nvidia"]
    assert [len(g.members) for g in gpu.groups] == [10, 2]
    assert gpu.groups[1].members == ("node-h100-a", "node-h100-b")
    assert gpu.unknown == ("laptop-import",)
    assert [f.path for f in gpu.groups[1].findings][:2] == ["nvidia.gpus.compute-capability", "nvidia.gpus.name"]
    assert gpu.groups[1].findings[0].locked == "8.0 ×8" and gpu.groups[1].findings[0].actual == "9.0 ×8"
    python = layers["python"]
    assert [g.members for g in python.groups[1:]] == [("node-old-torch",)]
    assert [(f.path, f.locked, f.actual) for f in python.groups[1].findings] == [
        ("python.packages[torch]", "2.3.0", "2.1.0")
    ]
    assert layers["runtime"].uniform
    assert report.outlier_layers == {
        "node-h100-a": ("nvidia",),
        "node-h100-b": ("nvidia",),
        "node-old-torch": ("python",),
    }
    assert not report.identical


def test_identical_locks_are_one_group_each_layer():
    report = group_locks([(f"n{i}", node()) for i in range(5)])
    assert report.identical
    assert all(len(layer.groups) == 1 for layer in report.layers if layer.groups)


def test_cli_hundred_locks_stays_readable(tmp_path):
    paths = []
    for i in range(100):
        lock = node(
            omp="4" if i % 25 == 7 else None,
            gpu="Tesla T4" if i == 42 else "NVIDIA A100-SXM4-80GB",
            cc="7.5" if i == 42 else "8.0",
        )
        path = tmp_path / f"node{i:03d}.lock"
        write_lock(lock, path)
        paths.append(str(path))
    result = run_envlock("diff", *paths)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    # Summary first: groups of identical locks, and the outliers counted.
    assert out.splitlines()[0] == (
        "100 locks compared: 3 groups of identical locks; 95 match the majority in every layer, 5 outliers in 2 groups"
    )
    # The majority is counted, not listed: 95 names would bury the outliers.
    assert "node000.lock" not in out
    # Outlier groups, the GPU architecture (rank 10) before a thread count (rank 60).
    outliers = out[out.index("outliers, most likely to change numbers first:") :].splitlines()
    assert outliers[1].startswith("  1 lock differs: ") and outliers[1].endswith("node042.lock")
    assert outliers[2].split() == [
        "numeric",
        "nvidia.gpus.compute-capability:",
        "majority",
        "8.0",
        "×8,",
        "here",
        "7.5",
        "×8",
    ]
    t4_group = [line for line in outliers if line.startswith("  4 locks differ the same way: ")]
    assert len(t4_group) == 1
    for i in (7, 32, 57, 82):
        assert f"node{i:03d}.lock" in t4_group[0]
    assert len(out.splitlines()) < 40
    as_json = json.loads(run_envlock("diff", "--json", *paths).stdout)
    groups = as_json["layers"]["runtime"]["groups"]
    assert [len(g["members"]) for g in groups] == [96, 4]
    assert groups[1]["findings"][0]["path"] == "runtime.env.OMP_NUM_THREADS"
    whole = as_json["groups"]
    assert [len(g["members"]) for g in whole] == [95, 1, 4]
    assert whole[0]["findings"] == [] and whole[1]["outside"] == ["nvidia"] and whole[2]["outside"] == ["runtime"]


def test_cli_identical_many_exit_zero(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"n{i}.lock"
        write_lock(node(), path)
        paths.append(str(path))
    result = run_envlock("diff", *paths, "--markdown")
    assert result.returncode == 0, result.stderr
    assert "| python | 1 | 3/3 | 0 |" in result.stdout
