"""The command line: every command is listed and reachable, and only the invoked one is set up."""

from __future__ import annotations

import subprocess
import sys

from envlock.cli import COMMANDS


def envlock(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "envlock", *args] if code is None else [sys.executable, "-c", code, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_top_level_help_lists_every_command_with_its_summary():
    result = envlock("--help")
    assert result.returncode == 0
    for name, (_module, help_text) in COMMANDS.items():
        assert name in result.stdout
        assert help_text.split()[0] in result.stdout


def test_each_command_help_shows_its_own_options():
    # Options that only the named command declares.
    own = {"capture": "--include-private", "diff": "LOCK", "replay": "--ca-cert", "doctor": "--markdown"}
    for name, option in own.items():
        result = envlock(name, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: envlock {name}")
        assert option in result.stdout, (name, option)


def test_a_mistyped_command_is_refused_with_the_list_of_commands():
    result = envlock("captur")
    assert result.returncode == 2
    assert "invalid choice: 'captur'" in result.stderr
    assert all(name in result.stderr for name in COMMANDS)


def test_no_command_prints_help_and_exits_2():
    result = envlock()
    assert result.returncode == 2
    assert "COMMAND" in result.stdout


def test_only_the_invoked_command_module_is_imported():
    code = (
        "import sys; from envlock.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('envlock.commands.')))"
    )
    result = envlock("show", "--help", code=code)
    assert result.stdout.strip().splitlines()[-1] == "['envlock.commands.show']"
