"""docs/fleet.md's Kubernetes recipe cannot run here (no cluster can be made): at least its manifest must parse
and keep the parts the recipe depends on."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO


def _yaml_blocks() -> list[dict]:
    text = (REPO / "docs" / "fleet.md").read_text()
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S)]


def test_the_kubernetes_job_runs_one_capture_per_node_and_names_it():
    (job,) = _yaml_blocks()
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    spec = job["spec"]["template"]["spec"]
    # One pod per node: required anti-affinity on the job's own pods, per host name.
    term = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == job["spec"]["template"]["metadata"]["labels"]
    (container,) = spec["containers"]
    # The lock goes to the pod's log (collected with kubectl logs), quietly.
    assert container["command"] == ["envlock", "capture", "-q", "-o", "-"]
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]
    assert spec["restartPolicy"] == "Never"
