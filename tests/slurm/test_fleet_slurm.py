"""`envlock fleet` against a real Slurm cluster: three slurmd nodes that differ the way real nodes do.

node1 and node2 are H200 hosts on driver 580; node3 has the same GPU on an
older driver and OMP_NUM_THREADS=4.  The differences reach each node's task
through the cluster's TaskProlog (a fake libnvidia-ml.so.1 per node), so
envlock's own NVML code and Slurm's own launcher run unchanged.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_envlock
from tests.fakes.nvml import H200, FakeHost

pytestmark = pytest.mark.slurm

CURRENT = FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(H200,))
OLDER = FakeHost(driver_version="570.133.20", cuda_driver_version=12080, gpus=(H200,))


@pytest.fixture
def differing_nodes(slurm_cluster, fake_nvml, tmp_path):
    for node in slurm_cluster.nodes:
        host = OLDER if node == "node3" else CURRENT
        (tmp_path / node).mkdir()
        values = _env_in(fake_nvml, host, tmp_path / node)
        if node == "node3":
            values["OMP_NUM_THREADS"] = "4"
        slurm_cluster.set_node_env(node, values)
    yield slurm_cluster
    slurm_cluster.clear_node_env()


def _env_in(fake_nvml, host, directory):
    """The fake's environment with its config file in a directory of the node's own."""
    env = fake_nvml.env(host)
    config = directory / "nvml.conf"
    config.write_text(host.config_text())
    env["FAKE_NVML_CONFIG"] = str(config)
    env.pop("FAKE_NVML_LOG", None)
    return env


def test_fleet_capture_diff_and_check(differing_nodes, tmp_path):
    cluster = differing_nodes
    out = tmp_path / "fleet"
    result = run_envlock(
        "fleet", "capture", "--slurm", "-o", str(out), "--", "-N", "3", env=cluster.env(), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["fleet.json", "node1.lock", "node2.lock", "node3.lock"]
    index = json.loads((out / "fleet.json").read_text())
    assert [(n["name"], n["status"], n["lock"]) for n in index["nodes"]] == [
        ("node1", "captured", "node1.lock"),
        ("node2", "captured", "node2.lock"),
        ("node3", "captured", "node3.lock"),
    ]
    assert index["command"][:5] == ["srun", "-v", "--label", "--ntasks-per-node=1", "--kill-on-bad-exit=0"]
    for node in cluster.nodes:
        text = (out / f"{node}.lock").read_text()
        # The node's name lives in the file name and fleet.json, never in the lock.
        assert node not in text
        assert 'driver-version = "' + ("570.133.20" if node == "node3" else "580.65.06") + '"' in text

    diff = run_envlock("diff", str(out))
    assert diff.returncode == 1, diff.stderr
    lines = diff.stdout.splitlines()
    assert lines[0].startswith("3 locks compared: 2 groups of identical locks; 2 match the majority in every layer")
    at = lines.index("outliers, most likely to change numbers first:")
    assert lines[at + 1] == "  1 lock differs: node3"
    shown = "\n".join(lines[at + 2 :])
    assert "nvidia.driver-version: majority 580.65.06, here 570.133.20" in " ".join(shown.split())
    assert "runtime.env.OMP_NUM_THREADS: majority unset, here 4" in " ".join(shown.split())

    check = run_envlock(
        "fleet", "check", "--slurm", str(out / "node1.lock"), "--json", "--", "-N", "3", env=cluster.env(), cwd=tmp_path
    )
    assert check.returncode == 1, check.stderr
    payload = json.loads(check.stdout)
    assert payload["matching"] == ["node1", "node2"]
    assert [g["nodes"] for g in payload["drifted"]] == [["node3"]]
    paths = {f["path"]: (f.get("locked"), f.get("actual")) for f in payload["drifted"][0]["findings"]}
    assert paths["nvidia.driver-version"] == ("580.65.06", "570.133.20")
    assert paths["runtime.env.OMP_NUM_THREADS"] == (None, "4")
    text = run_envlock(
        "fleet", "check", "--slurm", str(out / "node1.lock"), "--", "-N", "3", env=cluster.env(), cwd=tmp_path
    )
    assert text.returncode == 1
    assert text.stdout.splitlines()[0] == (
        f"the fleet has drifted: 3 nodes checked against {out / 'node1.lock'}: 2 match, 1 drifted, 0 failed"
    )
    assert "1 node drifted the same way: node3" in text.stdout


def test_a_node_whose_slurmd_stopped_is_named_and_the_others_are_written(slurm_cluster, tmp_path):
    cluster = slurm_cluster
    out = tmp_path / "fleet"
    cluster.script("stop-node", str(cluster.directory), "node3")
    try:
        result = run_envlock(
            "fleet",
            "capture",
            "--slurm",
            "-o",
            str(out),
            "--timeout",
            "120",
            "--",
            "-N",
            "3",
            env=cluster.env(),
            cwd=tmp_path,
        )
    finally:
        cluster.script("start-node", str(cluster.directory), "node3")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "envlock: error: node3: Communication connection failure" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["fleet.json", "node1.lock", "node2.lock"]
    index = json.loads((out / "fleet.json").read_text())
    assert index["nodes"][2] == {"name": "node3", "status": "failed", "error": "Communication connection failure"}
    # The nodes that answered still compare as a fleet.
    assert run_envlock("diff", str(out)).returncode == 0


def test_srun_refusing_the_request_is_exit_2_with_slurms_words(slurm_cluster, tmp_path):
    result = run_envlock(
        "fleet",
        "capture",
        "--slurm",
        "-o",
        str(tmp_path / "f"),
        "--",
        "-p",
        "no-such-partition",
        env=slurm_cluster.env(),
    )
    assert result.returncode == 2
    assert "Slurm ran no capture" in result.stderr and "partition" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_inside_an_allocation_no_srun_options_are_needed(slurm_cluster, tmp_path):
    """Under salloc (or sbatch), srun takes the allocation's nodes: `fleet capture` needs nothing after `--`."""
    import os
    import subprocess
    import sys

    out = tmp_path / "fleet"
    env = dict(os.environ, **slurm_cluster.env())
    result = subprocess.run(
        ["salloc", "-N2", sys.executable, "-m", "envlock", "fleet", "capture", "--slurm", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    index = json.loads((out / "fleet.json").read_text())
    assert len(index["nodes"]) == 2 and all(n["status"] == "captured" for n in index["nodes"])
    assert sorted(p.name for p in out.glob("*.lock")) == sorted(f"{n['name']}.lock" for n in index["nodes"])
