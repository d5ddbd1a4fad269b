"""Paths written as ``pathlib`` writes them, without importing ``pathlib``.

Locks, warnings and error messages name paths as ``str(Path(p))`` spells them
(the code once built them with pathlib, and tests and users see that spelling);
importing pathlib (with ``urllib.parse``) costs about 7 ms of start-up, which
capture and the loader no longer pay.
"""

from __future__ import annotations


def pure_path_text(text: str) -> str:
    """``text`` spelled as ``str(pathlib.PurePosixPath(text))`` spells it, without importing pathlib.

    Repeated and trailing slashes and ``.`` parts go; ``..`` stays (it may
    cross a symbolic link).
    """
    if (
        text
        and "//" not in text
        and "/." not in text
        and not text.endswith("/")
        and not text.startswith("./")
        and text != "."
    ):
        return text  # already spelled so: the common case, without splitting
    if not text:
        return "."
    root = "//" if text.startswith("//") and not text.startswith("///") else "/" if text.startswith("/") else ""
    parts = [part for part in text.split("/") if part and part != "."]
    return root + "/".join(parts) if parts or root else "."
