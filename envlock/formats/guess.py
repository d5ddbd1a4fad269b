"""Tell which format a file is in, from its content, for ``envlock import FILE`` without a FORMAT.

Each format has a sign that no other format shares (``@EXPLICIT``,
``NVSMI LOG``, ``PyTorch version:``, a uv.lock's ``[[package]]`` with
``source = {``); they are tried from the most specific to the least.  When
nothing matches, the user is asked to name the format: a wrong guess would
import the wrong fields with confidence.
"""

from __future__ import annotations

import re

# (format, why it was chosen, test on the cleaned text)
_SIGNS: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (fmt, why, re.compile(pattern, re.MULTILINE))
    for fmt, why, pattern in (
        ("collect-env", "a 'PyTorch version:' line", r"^\s*`?PyTorch version: "),
        ("nvidia-smi", "an 'NVSMI LOG' header", r"=+NVSMI LOG=+"),
        ("nvidia-smi", "an 'NVIDIA-SMI ... Driver Version:' header", r"NVIDIA-SMI\s+\S+\s+Driver Version:"),
        ("nvidia-smi", "nvidia-smi's no-driver message", r"NVIDIA-SMI has failed because it couldn't communicate"),
        (
            "nvidia-smi-csv",
            "a CSV header of nvidia-smi query fields",
            r"^(?:[a-z_.]+(?: \[[^\]]+\])?, )*name(?:, [a-z_.]+(?: \[[^\]]+\])?)*\s*$",
        ),
        ("rocm-smi", "rocm-smi's banner or GPU[N] lines", r"ROCm System Management Interface|^GPU\[[0-9]+\]\s*:"),
        ("rocm-smi", "rocm-smi's CSV header", r"\A\s*device,(?:Card [Ss]eries|Driver version|GPU)"),
        ("rocm-smi", "rocm-smi's JSON of cards", r"\A\s*\{\s*\"card[0-9]+\"\s*:\s*\{"),
        ("nvcc", "nvcc's 'Cuda compilation tools' line", r"Cuda compilation tools, release [0-9]"),
        ("conda-explicit", "an @EXPLICIT line", r"^@EXPLICIT\s*$"),
        (
            "conda-list",
            "conda list's '# Name Version Build Channel' header",
            r"^#\s*(?:packages in environment at |Name\s+Version\s+Build)",
        ),
        ("pylock", "a pylock `lock-version` with [[packages]]", r"^lock-version\s*=(?s:.*)^\[\[packages\]\]"),
        (
            "uv-lock",
            "uv.lock's `version`/`revision` and [[package]] with source tables",
            r"^version\s*=\s*1\s*$(?s:.*)^\[\[package\]\]\s*$(?s:.*)^source\s*=\s*\{",
        ),
        (
            "poetry-lock",
            "poetry.lock's [[package]] tables and [metadata] content-hash",
            r"^\[\[package\]\](?s:.*)^\[metadata\](?s:.*)content-hash",
        ),
        (
            "pixi-lock",
            "pixi.lock's `environments:` with conda/pypi references",
            r"^environments:\s*$(?s:.*)^\s+- (?:conda|pypi): ",
        ),
        ("conda-lock", "conda-lock.yml's `package:` list with `manager:` keys", r"^package:\s*$(?s:.*)^\s+manager: "),
        ("pipfile-lock", "Pipfile.lock's `_meta` and `default` tables", r"\A\s*\{(?s:.*)\"_meta\"(?s:.*)\"default\""),
        ("pip-inspect", "pip inspect's `installed` list", r"\A\s*\{(?s:.*)\"pip_version\"(?s:.*)\"installed\""),
        ("pip-list-json", "a JSON list of name/version objects", r"\A\s*\[\s*(?:\]|\{\s*\"name\")"),
        ("conda-env", "an environment.yml `dependencies:` list", r"^dependencies:\s*$"),
        (
            "conda-list",
            "rows of name, version and build in columns",
            r"(?:^[A-Za-z0-9_][\w.-]*\s{2,}[0-9][^\s=]*\s{2,}\S+(?:\s+\S+)?\s*$\n?){3}",
        ),
        (
            "pip-freeze",
            "requirement lines (name==version)",
            r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?\s*(?:===?|@)\s*\S",
        ),
    )
)


def guess_format(text: str) -> tuple[str, str] | None:
    """``(format, why)`` for the first sign ``text`` carries, or ``None``."""
    head = text[:2_000_000]
    for fmt, why, sign in _SIGNS:
        if sign.search(head):
            return fmt, why
    return None
