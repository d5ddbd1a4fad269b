"""The arrows of docs/architecture.md hold over envlock/, and the check can fail."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.architecture import PARTS, forbidden_imports, printing_calls, unlisted_modules

PACKAGE = Path(__file__).resolve().parents[2] / "envlock"
ARCHITECTURE_DOC = PACKAGE.parent / "docs" / "architecture.md"


def test_every_module_belongs_to_a_part():
    assert unlisted_modules(PACKAGE) == []


def test_no_import_goes_against_the_arrows():
    assert forbidden_imports(PACKAGE) == []


def test_the_capture_and_replay_cores_never_write_to_the_screen():
    assert printing_calls(PACKAGE) == []


@pytest.fixture
def copy_of_envlock(tmp_path) -> Path:
    target = tmp_path / "envlock"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "data", "*.csv"))
    return target


@pytest.mark.parametrize(
    "module, planted, part, target",
    [
        # the model importing a probe: the arrow issue 17 found
        ("lockfile/checks.py", "from envlock.capture.env_vars import read_numerics_env", "lockfile", "capture"),
        # a core reaching up into the command layer, inside a function
        (
            "replay/engine.py",
            "def _show():\n    from envlock.commands.progress import TerminalDisplay",
            "replay",
            "interface",
        ),
        # two parts of the same rank
        ("capture/cpu.py", "import envlock.compat.rules", "capture", "compat"),
        ("diff.py", "from envlock import resolve", "analysis", "resolution"),
    ],
)
def test_a_planted_forbidden_import_is_reported(copy_of_envlock, module, planted, part, target):
    path = copy_of_envlock / module
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + planted + "\n", encoding="utf-8")
    (problem,) = forbidden_imports(copy_of_envlock)
    assert problem.startswith(f"envlock/{module}:")
    assert f"{part} (" in problem and f"must not import {target} (" in problem


def test_an_allowed_import_is_not_reported(copy_of_envlock):
    path = copy_of_envlock / "replay" / "engine.py"
    path.write_text(path.read_text(encoding="utf-8") + "\nfrom envlock.lockfile import model\n", encoding="utf-8")
    assert forbidden_imports(copy_of_envlock) == []


def test_a_planted_print_in_a_core_is_reported(copy_of_envlock):
    path = copy_of_envlock / "capture" / "cpu.py"
    path.write_text(path.read_text(encoding="utf-8") + "\n\ndef _say():\n    print('hello')\n", encoding="utf-8")
    (problem,) = printing_calls(copy_of_envlock)
    assert problem.startswith("envlock/capture/cpu.py:") and "print()" in problem


def test_a_new_module_outside_every_part_is_reported(copy_of_envlock):
    (copy_of_envlock / "helpers.py").write_text("X = 1\n", encoding="utf-8")
    assert unlisted_modules(copy_of_envlock) == ["envlock.helpers"]


def test_the_architecture_document_names_every_part():
    text = ARCHITECTURE_DOC.read_text(encoding="utf-8")
    for part, _rank in set(PARTS.values()):
        assert f"**{part}**" in text, f"docs/architecture.md does not describe the {part} part"
