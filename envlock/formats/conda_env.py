"""Import ``conda env export`` YAML (an environment.yml with every package pinned).

``dependencies`` holds ``name=version=build`` strings (``--no-builds`` drops
the build; ``channel::name=version=build`` names a channel) and one
``pip:`` list of requirement lines, read like ``pip freeze``.  ``name`` and
``prefix`` are not kept: the prefix is a path in someone's home directory.
A dependency that is not pinned to one version (a hand-written
environment.yml: ``numpy>=1.20``) is skipped with a warning.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.conda_explicit import torch_build_section
from envlock.formats.importers import ImportContext, YamlMap, checked, line_of, load_yaml, shown, unique
from envlock.formats.pip_freeze import parse_requirements
from envlock.lockfile import model as m

_SPEC = re.compile(
    r"^(?:(?P<channel>[A-Za-z0-9_./:-]+)::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9._-]*)"
    r"(?:(?P<op>==?)(?P<version>[^=\s]+)(?:=(?P<build>[^=\s]+))?)?$"
)


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    document = load_yaml(text, ctx)
    if not isinstance(document, YamlMap) or "dependencies" not in document:
        raise ctx.fail(
            "not a conda environment file: no top-level 'dependencies:' list",
            line_of(document, 1),
            hint="import the output of `conda env export`",
        )
    dependencies = document["dependencies"]
    if not isinstance(dependencies, list):
        raise ctx.fail("'dependencies' is not a list", line_of(dependencies, line_of(document, 1)))
    conda_packages: list[m.CondaPackage] = []
    pip_lines: list[tuple[int, str]] = []
    for position, item in enumerate(dependencies):
        where = f"dependencies[{position}]"
        if isinstance(item, dict):
            if set(item) != {"pip"} or not isinstance(item["pip"], list):
                raise ctx.fail(f"{where}: only a 'pip:' list may appear among the dependencies", line_of(item))
            for offset, requirement in enumerate(item["pip"]):
                if not isinstance(requirement, str):
                    raise ctx.fail(
                        f"{where}.pip[{offset}] is not a requirement string", line_of(requirement, line_of(item))
                    )
                pip_lines.append((line_of(requirement, 0) or 0, str(requirement)))
            continue
        if not isinstance(item, str):
            raise ctx.fail(f"{where} is not a package spec", line_of(item, line_of(dependencies)))
        package = _conda_spec(str(item), where, line_of(item), ctx)
        if package is not None:
            conda_packages.append(package)
    packages = list(unique(conda_packages, lambda p: p.name, ctx, "conda package"))
    python_version = next((p.version for p in packages if p.name == "python"), None)
    sections: dict[str, Any] = {
        "conda": m.CondaSection(packages=tuple(packages)),
        "cuda": torch_build_section(packages, ctx),
    }
    if pip_lines or python_version:
        pip_packages = parse_requirements(pip_lines, ctx)
        sections["python"] = checked(
            m.PythonSection,
            {"version": python_version, "environment_kind": "conda", "packages": pip_packages},
            "python",
            ctx,
        )
        ctx.warn(
            "python.packages lists only the pip-installed packages; conda-installed Python libraries are in conda.packages"
        )
    return sections


def _conda_spec(spec: str, where: str, line: int | None, ctx: ImportContext) -> m.CondaPackage | None:
    found = _SPEC.match(spec.strip())
    if not found:
        raise ctx.fail(f"{where}: {shown(spec)} is not a conda package spec (name=version=build)", line)
    if not found.group("version") or any(c in found.group("version") for c in "<>*|,!~"):
        ctx.warn(f"{where}: {shown(spec)} is not pinned to one version; not recorded", line)
        return None
    return checked(
        m.CondaPackage,
        {
            "name": found.group("name"),
            "version": found.group("version"),
            "build": found.group("build"),
            "channel": found.group("channel"),
        },
        f"{where} {shown(found.group('name'))}",
        ctx,
        line,
    )
