"""Read envlock's templates and fill them, strictly.

The templates live in ``templates/`` at the top of the repository and ship in
the wheel as ``envlock/templates`` (pyproject ``force-include``).  An installed
wheel reads them through :mod:`importlib.resources`; an editable install has no
``envlock/templates`` directory, so the loader falls back to the repository's
``templates/``.

Placeholders are ``{{ name }}``.  Filling is strict in both directions (unlike
a bare ``jinja2.Template``, where a missing variable renders as empty text): a
placeholder without a value, or a value without a placeholder, is an error.
Values are inserted verbatim, so everything that came from a lockfile must
already be validated and quoted (render.py does that).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{\{ ([a-z_]+) \}\}")
_REPO_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"


def template_source(name: str) -> str:
    """Where ``name`` is read from: ``package`` (installed wheel) or ``repository`` (editable install)."""
    _check_name(name)
    packaged = resources.files("envlock").joinpath("templates").joinpath(name)
    return "package" if packaged.is_file() else "repository"


def read_template_bytes(name: str) -> bytes:
    _check_name(name)
    packaged = resources.files("envlock").joinpath("templates").joinpath(name)
    if packaged.is_file():
        return packaged.read_bytes()
    fallback = _REPO_TEMPLATES / name
    if fallback.is_file():
        return fallback.read_bytes()
    raise FileNotFoundError(f"envlock template {name!r} is missing from the package and from {_REPO_TEMPLATES}")


def read_template(name: str) -> str:
    return read_template_bytes(name).decode("utf-8")


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``{{ name }}`` replaced; every name must be given and used."""
    wanted = set(_PLACEHOLDER.findall(template))
    missing = sorted(wanted - values.keys())
    unused = sorted(values.keys() - wanted)
    if missing or unused:
        raise KeyError(f"template placeholders missing values: {missing}; values without placeholders: {unused}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise ValueError(f"not a template name: {name!r}")
