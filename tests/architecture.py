"""The parts of envlock and the arrows allowed between them (docs/architecture.md), as code.

``forbidden_imports(package_dir)`` reads every module of the package with
``ast`` (nothing is imported or run) and returns one line per import that
goes against the arrows; ``printing_calls(package_dir)`` returns one line per
place where the replay or capture core would write to the screen.
tests/unit/test_architecture.py runs both over envlock/, and over a copy with
a planted violation to show that they can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

# Each part and its rank: a module may import modules of its own part and of
# parts of a lower rank, nothing else.  Parts of equal rank do not import each
# other (capture and compat; analysis, resolution and presentation; formats, pin and fleet).
PARTS: dict[str, tuple[str, int]] = {
    # foundation: small modules every part shares; they import only each other and the standard library
    "envlock.records": ("foundation", 0),
    "envlock.errors": ("foundation", 0),
    "envlock.paths": ("foundation", 0),
    "envlock.proc": ("foundation", 0),
    "envlock.names": ("foundation", 0),
    "envlock.versions": ("foundation", 0),
    "envlock.findings": ("foundation", 0),
    "envlock.lockfile": ("lockfile", 1),
    "envlock.capture": ("capture", 2),
    "envlock.compat": ("compat", 2),
    "envlock.diff": ("analysis", 3),
    "envlock.diff_nway": ("analysis", 3),
    "envlock.doctor": ("analysis", 3),
    "envlock.check": ("analysis", 3),
    "envlock.byte_verdicts": ("analysis", 3),
    "envlock.report": ("presentation", 3),
    "envlock.verdict": ("presentation", 3),
    "envlock.summary": ("presentation", 3),
    "envlock.index_client": ("resolution", 3),
    "envlock.wheel_select": ("resolution", 3),
    "envlock.resolve": ("resolution", 3),
    "envlock.resolve_findings": ("resolution", 3),
    "envlock.os_anchor": ("resolution", 3),
    "envlock.byte_files": ("resolution", 3),
    "envlock.replay": ("replay", 4),
    "envlock.formats": ("formats", 5),
    "envlock.pin": ("pin", 5),
    "envlock.fleet": ("fleet", 5),
    "envlock.pack": ("pack", 6),
    "envlock.commands": ("interface", 7),
    "envlock.cli": ("interface", 7),
    "envlock.__main__": ("interface", 7),
}

# Cores that must never write to the screen: they return values, raise errors
# or hand lines to a Progress, and the command layer decides what is shown.
QUIET_PARTS = ("capture", "replay")


def part_of(module: str) -> tuple[str, int] | None:
    """The part a module belongs to: its longest listed prefix; None for the package itself."""
    name = module
    while name:
        if name in PARTS:
            return PARTS[name]
        name = name.rpartition(".")[0]
    return None


def module_name(package_dir: Path, path: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, module) for every absolute import of ``package``'s modules, at any depth of the code."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from envlock.lockfile import model`` imports the submodule when there is one.
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name == package or name.startswith(package + ".")]


def unlisted_modules(package_dir: Path) -> list[str]:
    """Modules that belong to no part: each new top-level module must be placed in PARTS."""
    names = (module_name(package_dir, path) for path in sorted(package_dir.rglob("*.py")))
    return [name for name in names if name != package_dir.name and part_of(name) is None]


def forbidden_imports(package_dir: Path) -> list[str]:
    package = package_dir.name
    problems = []
    for path in sorted(package_dir.rglob("*.py")):
        source = module_name(package_dir, path)
        here = part_of(source)
        if here is None:
            continue
        for line, target in imported_modules(ast.parse(path.read_text(encoding="utf-8")), package):
            there = part_of(target)
            if there is None or there[0] == here[0]:
                continue  # the package itself (its version), or the same part
            if there[1] >= here[1]:
                where = path.relative_to(package_dir.parent)
                problems.append(f"{where}:{line}: {here[0]} ({source}) must not import {there[0]} ({target})")
    return problems


def printing_calls(package_dir: Path) -> list[str]:
    """``print(...)``, ``sys.stdout``/``sys.stderr`` and ``traceback.print_*`` in the quiet cores."""
    problems = []
    for path in sorted(package_dir.rglob("*.py")):
        part = part_of(module_name(package_dir, path))
        if part is None or part[0] not in QUIET_PARTS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            what = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                what = "print()"
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "sys" and node.attr in ("stdout", "stderr"):
                    what = f"sys.{node.attr}"
                elif node.value.id == "traceback" and node.attr.startswith("print"):
                    what = f"traceback.{node.attr}"
            if what:
                problems.append(
                    f"{path.relative_to(package_dir.parent)}:{node.lineno}: {part[0]} writes to the screen ({what})"
                )
    return problems
