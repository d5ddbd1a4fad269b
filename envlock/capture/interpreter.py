"""Describe the Python interpreter whose environment is captured.

For the running interpreter this is read in-process.  For another one
(``envlock capture --python PATH``) a small stdlib-only script runs under that
interpreter and prints what it finds, so envlock never has to be installed there.
"""

from __future__ import annotations

import os
import sys

from envlock.errors import UsageError
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from envlock.capture.background import Background

# Runs under the target interpreter: stdlib only, and valid on Python 3.6+.
# It imports neither json nor platform: both pull in re, enum and functools,
# which cost the child interpreter ~25 ms of CPU (measured with -X importtime
# on this machine), a tenth of a whole capture.  Values go out as
# ``key<TAB>kind<TAB>hex(utf-8)`` lines, so any path (quotes, newlines,
# undecodable bytes) survives unchanged.
_PROBE_SCRIPT = r"""
import os, struct, sys, sysconfig
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION")
except (AttributeError, ValueError, OSError):
    libc = None
paths = sysconfig.get_paths()
site_dirs = []
for key in ("purelib", "platlib"):
    p = paths.get(key)
    if p and p not in site_dirs:
        site_dirs.append(p)
for p in sys.path:
    if p and p.endswith(("site-packages", "dist-packages")) and p not in site_dirs and os.path.isdir(p):
        site_dirs.append(p)
# The user site (~/.local/lib/pythonX.Y/site-packages) is importable for a
# normal run outside a venv, but -I (used to run this script) leaves it off
# sys.path: add it back under the rule site.py applies.
in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
if not in_venv and not os.environ.get("PYTHONNOUSERSITE"):
    try:
        import site
        user_site = site.getusersitepackages()
    except Exception:
        user_site = None
    if user_site and user_site not in site_dirs and os.path.isdir(user_site):
        site_dirs.append(user_site)
try:
    machine = os.uname().machine
except AttributeError:  # Windows
    machine = os.environ.get("PROCESSOR_ARCHITECTURE", "")
info = {
    "executable": sys.executable,
    "implementation": sys.implementation.name,
    # platform.python_version() is this first word of sys.version ("3.13.0rc1").
    "version": sys.version.split()[0],
    "version_info": list(sys.version_info[:3]),
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "site_dirs": site_dirs,
    "soabi": sysconfig.get_config_var("SOABI"),
    "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
    "libc": libc,
    "pointer_bits": struct.calcsize("P") * 8,
    "platform": sysconfig.get_platform(),
    "machine": machine,
    "py_debug": bool(sysconfig.get_config_var("Py_DEBUG")),
    "gil_disabled": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
}
if __name__ == "__main__":
    def _hex(text):
        return str(text).encode("utf-8", "surrogateescape").hex()
    out = []
    for key, value in sorted(info.items()):
        if value is None:
            continue
        if isinstance(value, list):
            for item in value:
                out.append(key + "\tl\t" + _hex(item))
        elif isinstance(value, bool):
            out.append(key + "\tb\t" + _hex(int(value)))
        elif isinstance(value, int):
            out.append(key + "\ti\t" + _hex(value))
        else:
            out.append(key + "\ts\t" + _hex(value))
    sys.stdout.write("\n".join(out) + "\n")
"""


def parse_probe_output(text: str) -> dict:
    """The dict the probe script printed, from its ``key<TAB>kind<TAB>hex`` lines (pure).

    Raises ``ValueError`` on anything else.
    """
    data: dict = {}
    for line in text.splitlines():
        if not line:
            continue
        key, kind, value_hex = line.split("\t")
        value = bytes.fromhex(value_hex).decode("utf-8", "surrogateescape")
        if kind == "l":
            data.setdefault(key, []).append(value)
        elif kind == "b":
            data[key] = value == "1"
        elif kind == "i":
            data[key] = int(value)
        elif kind == "s":
            data[key] = value
        else:
            raise ValueError(f"unknown kind {kind!r}")
    data.setdefault("site_dirs", [])
    return data


@record
class InterpreterInfo:
    executable: str
    implementation: str
    version: str
    version_info: tuple[int, int, int]
    prefix: str
    base_prefix: str
    site_dirs: tuple[str, ...]
    soabi: str | None
    platform: str
    machine: str
    py_debug: bool = False
    gil_disabled: bool = False
    # The target interpreter's own view, so that tags are computed for it and
    # not for the interpreter envlock runs in (``--python``).
    ext_suffix: str | None = None
    libc: str | None = None  # "glibc 2.36", from os.confstr
    pointer_bits: int = 64

    @property
    def is_venv(self) -> bool:
        return self.prefix != self.base_prefix or os.path.exists(os.path.join(self.prefix, "pyvenv.cfg"))

    @property
    def is_conda(self) -> bool:
        return os.path.isdir(os.path.join(self.prefix, "conda-meta"))

    @property
    def environment_kind(self) -> str:
        if self.is_conda:
            return "conda"
        if self.is_venv:
            return "venv"
        return "system"


def parse_interpreter_json(text: str) -> InterpreterInfo:
    """An InterpreterInfo from the probe's fields written as a JSON object (tests, recorded interpreters)."""
    import json  # not on capture's path: the probe answers in its own line format

    return interpreter_from_dict(json.loads(text))


def interpreter_from_dict(data: dict) -> InterpreterInfo:
    return InterpreterInfo(
        executable=data["executable"],
        implementation=data["implementation"],
        version=data["version"],
        version_info=(int(data["version_info"][0]), int(data["version_info"][1]), int(data["version_info"][2])),
        prefix=data["prefix"],
        base_prefix=data["base_prefix"],
        site_dirs=tuple(data["site_dirs"]),
        soabi=data.get("soabi"),
        platform=data["platform"],
        machine=data["machine"],
        py_debug=bool(data.get("py_debug")),
        gil_disabled=bool(data.get("gil_disabled")),
        ext_suffix=data.get("ext_suffix"),
        libc=data.get("libc"),
        pointer_bits=int(data.get("pointer_bits") or 64),
    )


def current_interpreter() -> InterpreterInfo:
    """The running interpreter, read in-process (no subprocess: capture must be fast)."""
    namespace: dict = {"__name__": "envlock_interpreter_probe"}
    exec(compile(_PROBE_SCRIPT, "<envlock-interpreter-probe>", "exec"), namespace)
    return interpreter_from_dict(namespace["info"])


def inspect_interpreter(executable: str | None = None) -> InterpreterInfo:
    """The interpreter at ``executable`` (a file, or a venv/conda prefix), or the running one."""
    return inspect_interpreter_in_background(executable).result()


def inspect_interpreter_in_background(executable: str | None = None) -> Background:
    """Start describing the interpreter at ``executable``; ``.result()`` waits for the answer.

    A path that is missing or not executable raises ``UsageError`` here, at
    once; an interpreter that will not run raises it from ``.result()``.
    Another interpreter is a child process (20-30 ms, on the other core):
    capture imports its modules and reads the host while it runs.
    """
    from envlock.capture.background import Background

    if executable is None:
        return Background.done(current_interpreter())
    path = _interpreter_path(executable)
    if os.path.realpath(sys.executable) == os.path.realpath(path) and sys.prefix == os.path.dirname(
        os.path.dirname(path)
    ):
        return Background.done(current_interpreter())
    # Imported here, not on the thread: a thread that imports waits for the GIL
    # at every file it opens while this thread imports too (measured: the
    # answer came 60-100 ms late).
    import envlock.proc  # noqa: F401

    return Background(_ask_interpreter, executable, path, name="envlock-interpreter")


def _interpreter_path(executable: str) -> str:
    """The interpreter file that ``--python executable`` names, checked; ``UsageError`` when there is none."""
    from envlock.paths import pure_path_text  # the spelling pathlib gave, which this code used

    path = pure_path_text(os.path.expanduser(executable))
    if os.path.isdir(path):
        for candidate in ("bin/python", "bin/python3", "python.exe"):
            candidate_path = os.path.join(path, candidate)
            if os.path.exists(candidate_path):
                path = candidate_path
                break
        else:
            raise UsageError(
                f"--python {executable}: a directory with no bin/python in it",
                hint="pass the interpreter itself, e.g. --python ~/venvs/paper/bin/python",
            )
    if not os.path.exists(path):
        raise UsageError(f"--python {executable}: no such file", hint="pass the path of a python executable")
    if not os.access(path, os.X_OK):
        raise UsageError(f"--python {executable}: not executable")
    return path


def _ask_interpreter(executable: str, path: str) -> InterpreterInfo:
    from envlock.proc import run

    result = run([path, "-I", "-c", _PROBE_SCRIPT], timeout=30)
    if result is None or result.returncode != 0:
        detail = "" if result is None else (result.stderr.strip().splitlines() or [""])[-1]
        raise UsageError(
            f"--python {executable}: could not run it as a Python interpreter {detail}".rstrip(),
            hint="pass the path of a working python executable (Python 3.6 or newer)",
        )
    try:
        return interpreter_from_dict(parse_probe_output(result.stdout))
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"--python {executable}: it did not answer like a Python interpreter") from None
