"""A real Slurm cluster for the fleet tests: slurmctld and three slurmd nodes on 127.0.0.1.

`.ci/run` starts it with `scripts/slurm_test_cluster.sh` and exports
ENVLOCK_TEST_SLURM_DIR; a developer with Debian's slurm-wlm and munge
installed gets one started here for the session (root needed).  Without Slurm
the tests skip, except when ENVLOCK_REQUIRE_SLURM=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "slurm_test_cluster.sh"


class SlurmCluster:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.conf = directory / "etc" / "slurm.conf"
        self.nodes = tuple(f"node{i}" for i in range(1, int((directory / "nodes").read_text()) + 1))

    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def set_node_env(self, node: str, values: dict[str, str]) -> None:
        """What the cluster's TaskProlog exports into tasks on ``node`` (how real nodes differ)."""
        lines = "".join(f"export {name}={value}\n" for name, value in values.items())
        (self.directory / "node-env" / f"{node}.env").write_text(lines)

    def clear_node_env(self) -> None:
        for path in (self.directory / "node-env").glob("*.env"):
            path.unlink()

    def script(self, *args: str) -> None:
        subprocess.run(["bash", str(SCRIPT), *args], check=True, timeout=120)


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("ENVLOCK_REQUIRE_SLURM") == "1":
        pytest.fail(f"ENVLOCK_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    given = os.environ.get("ENVLOCK_TEST_SLURM_DIR")
    if given:
        cluster = SlurmCluster(Path(given))
        if not cluster.conf.is_file():
            _fail_or_skip(f"ENVLOCK_TEST_SLURM_DIR={given} holds no etc/slurm.conf")
        yield cluster
        return
    if not (shutil.which("slurmctld") and shutil.which("slurmd") and shutil.which("srun") and shutil.which("munged")):
        _fail_or_skip("Slurm is not installed (apt-get install slurm-wlm munge; .ci/run does)")
    if os.geteuid() != 0:
        _fail_or_skip("starting the test cluster's slurmd needs root")
    directory = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(directory)], capture_output=True, text=True, timeout=120
    )
    if started.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop", str(directory)], timeout=60)
        pytest.fail(f"the test cluster did not start:\n{started.stdout}{started.stderr}")
    try:
        yield SlurmCluster(directory)
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(directory)], timeout=60)
