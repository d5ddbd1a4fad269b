"""Templates ship inside the wheel (as envlock/templates) and render from an installed copy.

Builds envlock's wheel with pip (hatchling, through pip's build isolation),
installs it into a plain directory and renders a whole Dockerfile from there
in a subprocess whose ``envlock`` is that copy (``python -S``: the editable
install's .pth hook is not read).  The result must equal the expected file,
so a template missing from the wheel, or read from the source tree by
mistake, fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from envlock.replay.templates import fill, read_template, template_source
from tests.unit.replay_data import DOCKERFILES, LOCKS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    wheels = tmp_path_factory.mktemp("wheels")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = wheels.glob("envlock-*.whl")
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return wheel, target


@pytest.mark.slow
def test_the_wheel_holds_the_templates_and_the_matrix(installed_wheel):
    wheel, _ = installed_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in sorted(p.name for p in (REPO / "templates").iterdir() if p.is_file()):
        assert f"envlock/templates/{template}" in names
    assert "envlock/replay/data/base_images.csv" in names


@pytest.mark.slow
def test_an_installed_wheel_renders_the_expected_dockerfile(installed_wheel):
    _, target = installed_wheel
    script = f"""
import json, sys
sys.path[:0] = [{str(target)!r}, {str(REPO)!r}]
sys.path.append({sysconfig.get_paths()["purelib"]!r})
import envlock
from envlock.replay.templates import template_source
from envlock.replay.plan import ReplayOptions, plan_replay
from envlock.replay.render import render_dockerfile
from tests.unit.replay_data import lock, pins
text = render_dockerfile(plan_replay(lock("cpu"), ReplayOptions(pins=pins("cpu"))))
print(json.dumps({{"envlock": envlock.__file__, "source": template_source("Dockerfile.tmpl"), "dockerfile": text}}))
"""
    done = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, timeout=120, cwd=str(LOCKS)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["envlock"].startswith(str(target))
    assert result["source"] == "package"
    assert result["dockerfile"] == (DOCKERFILES / "cpu.Dockerfile").read_text(encoding="utf-8")


def test_an_editable_install_reads_the_repository_templates():
    assert template_source("Dockerfile.tmpl") == "repository"
    assert read_template("Dockerfile.tmpl") == (REPO / "templates" / "Dockerfile.tmpl").read_text(encoding="utf-8")


def test_template_names_cannot_leave_the_folder():
    for bad in ("../pyproject.toml", "/etc/passwd", ""):
        with pytest.raises(ValueError):
            read_template(bad)


def test_the_dockerfile_template_has_exactly_the_placeholders_the_renderer_fills():
    text = read_template("Dockerfile.tmpl")
    assert fill(text, {"from_ref": "X", "python_stage": "P", "final_stage": "F"}).count("X") == 2
