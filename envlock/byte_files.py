"""Which files differ, for a distribution whose content digest is not the lock's.

The lock holds one digest per distribution, not its file list (torch's RECORD
alone is 15,000 rows).  The file list comes from the pinned wheel itself: its
``RECORD`` is the installed one minus what the digest leaves out anyway.  The
wheel is taken from envlock's file cache (replay put it there) or fetched
once by its pinned URL and checked against the pinned sha256.  The other side's
RECORD is read by a small script run with the environment's own interpreter
(on this host for ``check``, inside the image for ``verify``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from envlock.capture.artifact import digest_lines, row_hashes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from envlock.lockfile import model as m

# Prints {name: RECORD text or null} for the names given, read by the
# interpreter whose environment it is; the standard library only.
RECORD_SCRIPT = (
    "import json,sys\n"
    "from importlib import metadata\n"
    "out={}\n"
    "for n in sys.argv[1:]:\n"
    "    try: out[n]=metadata.distribution(n).read_text('RECORD')\n"
    "    except Exception: out[n]=None\n"
    "print(json.dumps(out))\n"
)
MAX_RECORD_BYTES = 32 * 1024 * 1024


def _cached_wheel(pkg: m.PythonPackage) -> Path | None:
    """The pinned file, from envlock's file cache, fetched there by its URL when missing (sha256 checked)."""
    from envlock.capture.cache import cache_dir

    if not (pkg.file and pkg.file_sha256 and pkg.file.endswith(".whl")):
        return None
    sha = pkg.file_sha256.split(":", 1)[-1]
    folder = Path(cache_dir()) / "files" / sha
    target = folder / pkg.file
    if target.is_file():
        return target
    if not pkg.file_url:
        return None
    from envlock.index_client import download_checked

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return target if download_checked(pkg.file_url, target, sha, timeout=60) is None else None


def locked_rows(pkg: m.PythonPackage) -> dict[str, str] | None:
    """``{path: hash}`` the pinned wheel installs (as its RECORD says), or None when it cannot be had."""
    import zipfile

    wheel = _cached_wheel(pkg)
    if wheel is None:
        return None
    try:
        with zipfile.ZipFile(wheel) as archive:
            name = next((n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/RECORD")), None)
            if name is None or archive.getinfo(name).file_size > MAX_RECORD_BYTES:
                return None
            return row_hashes(digest_lines(archive.read(name)))
    except (OSError, zipfile.BadZipFile):
        return None


def differing_paths(locked: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Paths whose hash differs, or that only one side has (pure).

    The wheel's own ``<name>.data/<scheme>/...`` rows are installed elsewhere
    (``../../../share/...``); a path that exists on one side only in that form
    is not a difference of content.
    """
    out = []
    for path in sorted(set(locked) | set(actual)):
        if locked.get(path) != actual.get(path):
            if ".data/" in path.split("/", 1)[0] + "/" or path.startswith("../"):
                continue
            out.append(path)
    return out


def parse_record_answer(stdout: bytes | str) -> dict[str, dict[str, str]]:
    """The script's answer as ``{name: {path: hash}}`` (names whose RECORD was missing left out)."""
    try:
        data = json.loads(stdout)
    except (ValueError, TypeError):
        return {}
    out = {}
    if isinstance(data, dict):
        for name, text in data.items():
            if isinstance(name, str) and isinstance(text, str) and len(text) <= MAX_RECORD_BYTES:
                out[name] = row_hashes(digest_lines(text.encode("utf-8", "surrogateescape")))
    return out


def files_that_differ(
    packages: Sequence[m.PythonPackage], read_records: Callable[[list[str]], dict[str, dict[str, str]]]
) -> dict[str, tuple[str, ...]]:
    """``{name: differing paths}`` for the locked ``packages`` whose pinned wheel can be had."""
    wanted = {pkg.name: rows for pkg in packages if (rows := locked_rows(pkg)) is not None}
    if not wanted:
        return {}
    actual = read_records(sorted(wanted))
    return {name: tuple(differing_paths(rows, actual[name])) for name, rows in wanted.items() if name in actual}


def files_that_differ_here(packages: Sequence[m.PythonPackage], python: str | None) -> dict[str, tuple[str, ...]]:
    """:func:`files_that_differ` for the environment of ``python`` on this host (``envlock check``)."""
    return files_that_differ(packages, read_records_with(python))


def read_records_with(python: str | None) -> Callable[[list[str]], dict[str, dict[str, str]]]:
    """A reader that asks ``python`` (this host's interpreter of the checked environment)."""
    import subprocess
    import sys

    def read(names: list[str]) -> dict[str, dict[str, str]]:
        try:
            result = subprocess.run(
                [python or sys.executable, "-I", "-c", RECORD_SCRIPT, *names],
                capture_output=True,
                timeout=120,
                env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
            )
        except (OSError, subprocess.TimeoutExpired):
            return {}
        return parse_record_answer(result.stdout) if result.returncode == 0 else {}

    return read


def read_records_in_image(engine, image: str, python: str) -> Callable[[list[str]], dict[str, dict[str, str]]]:
    """A reader that asks the image's interpreter, in a container without network."""

    def read(names: list[str]) -> dict[str, dict[str, str]]:
        from envlock.errors import EnvlockError

        try:
            result = engine.run(image, [python, "-I", "-c", RECORD_SCRIPT, *names], network=False, timeout=120)
        except EnvlockError:
            return {}
        return parse_record_answer(result.stdout) if result.exit_code == 0 else {}

    return read
