"""Import the table ``conda list`` prints (not ``--explicit``, not ``env export``).

::

    # packages in environment at /home/ann/miniconda3/envs/x:
    #
    # Name                    Version                   Build  Channel
    numpy                     1.26.4          py311h64a7726_0    conda-forge
    torch                     2.1.0                    pypi_0    pypi

Rows whose channel is ``pypi`` (or, before conda 4.6, whose build is
``<pip>``) were installed by pip: they become Python packages.  The others
are conda packages; a row with no channel came from the default channels.
The ``python`` row gives the interpreter's version.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.conda_explicit import torch_build_section
from envlock.formats.importers import ImportContext, checked, shown, split_lines, unique
from envlock.lockfile import model as m
from envlock.names import canonical_name

# name, version, build, [feature,] channel: conda 4.4 and older print a "[vc14]" feature column.
_ROW = re.compile(
    r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9._-]*)\s+(?P<version>\S+)(?:\s+(?P<build>\S+))?"
    r"(?:\s+\[[A-Za-z0-9_ ]*\])?(?:\s+(?P<channel>\S+))?\s*$"
)
# The command itself, echoed above its output without a prompt.
_COMMAND = re.compile(r"^(?:conda|mamba|micromamba)(?:\.exe)? list\b")


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    conda: list[m.CondaPackage] = []
    pip: list[m.PythonPackage] = []
    rows = 0
    for number, raw in enumerate(split_lines(text, ctx), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _COMMAND.match(line):
            continue
        row = _ROW.match(line)
        if not row:
            raise ctx.fail(
                f"{shown(line)} is not a `conda list` row (name, version, build, channel)",
                number,
                hint="import the output of `conda list`, as printed",
            )
        rows += 1
        name, version, build, channel = row.group("name", "version", "build", "channel")
        if channel == "pypi" or build == "<pip>" or (build or "").startswith("pypi_"):
            package = checked(
                m.PythonPackage,
                {"name": canonical_name(name), "version": version, "source": "unknown"},
                f"pip row {shown(name)}",
                ctx,
                number,
            )
            if package is not None:
                pip.append(package)
            continue
        if build == "<develop>" or channel == "<develop>":
            ctx.warn(f"{shown(name)} is a `conda develop` directory; not recorded", number)
            continue
        conda_package = checked(
            m.CondaPackage,
            {"name": name, "version": version, "build": build, "channel": channel or "defaults"},
            f"conda row {shown(name)}",
            ctx,
            number,
        )
        if conda_package is not None:
            conda.append(conda_package)
    if not rows:
        raise ctx.fail("no package rows; this is not `conda list` output", 1, hint="import the output of `conda list`")
    conda_packages = unique(conda, lambda p: p.name, ctx, "conda package")
    python_version = next((p.version for p in conda_packages if p.name == "python"), None)
    sections: dict[str, Any] = {
        "conda": m.CondaSection(packages=conda_packages),
        "cuda": torch_build_section(list(conda_packages), ctx),
    }
    if python_version or pip:
        sections["python"] = checked(
            m.PythonSection,
            {
                "version": python_version,
                "environment_kind": "conda",
                "packages": unique(pip, lambda p: p.name, ctx, "Python package"),
            },
            "python",
            ctx,
        )
    return sections
