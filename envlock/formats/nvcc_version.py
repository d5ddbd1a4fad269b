"""Import ``nvcc --version``: the CUDA toolkit's compiler, and so the toolkit's version.

The line that matters: ``Cuda compilation tools, release 12.1, V12.1.105``;
the full version (``12.1.105``) is recorded as the ``nvcc`` component.
"""

from __future__ import annotations

import re
from typing import Any

from envlock.formats.importers import ImportContext, checked, split_lines
from envlock.lockfile import model as m

_RELEASE = re.compile(r"Cuda compilation tools, release (?P<release>[0-9]+\.[0-9]+), V(?P<full>[0-9][0-9.]*)")


def parse(text: str, ctx: ImportContext) -> dict[str, Any]:
    for number, line in enumerate(split_lines(text, ctx), 1):
        found = _RELEASE.search(line)
        if found:
            component = checked(
                m.CudaComponent,
                {"name": "nvcc", "version": found.group("full").rstrip("."), "source": "system"},
                "nvcc",
                ctx,
                number,
            )
            return {"cuda": m.CudaSection(components=(component,) if component else ())}
    raise ctx.fail(
        "not `nvcc --version` output: no 'Cuda compilation tools, release X, VX.Y.Z' line",
        1,
        hint="import the output of `nvcc --version`",
    )
