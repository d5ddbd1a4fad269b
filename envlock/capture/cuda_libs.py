"""Ask CUDA libraries for their own version, through ctypes, in one child process.

A wheel's or conda package's version says what was *installed*; the library's
version function says what will actually be *loaded* (a wheel can ship a
different build, a conda env can hold a library copied in by hand).  Each
library kind has its own call and its own integer encoding:

==========  ======================================  ===================================
kind        call                                    encoding
==========  ======================================  ===================================
cudart      ``cudaRuntimeGetVersion(int*)``         1000*major + 10*minor (12080)
cudnn       ``size_t cudnnGetVersion()``            9.x: 10000*M + 100*m + p (91002);
                                                    8.x: 1000*M + 100*m + p (8902)
nccl        ``ncclGetVersion(int*)``                from 2.9: 10000*M + 100*m + p;
                                                    before: 1000*M + 100*m + p
cublas,     ``<lib>GetProperty(libraryPropertyType,  major, minor, patch (0, 1, 2)
cufft,      int*)``
curand,
cusparse,
cusolver
nvrtc       ``nvrtcVersion(int*, int*)``             major, minor
nvjitlink   ``nvJitLinkVersion(unsigned*, unsigned*)`` major, minor
==========  ======================================  ===================================

In-process or in a child?  Measured on this machine (2026-11-29, 2 shared
cores): loading ``libcublas.so.12`` (it pulls in the 500 MB
``libcublasLt.so.12``) and calling ``cublasGetProperty`` costs 110-220 ms,
cuDNN 9 6-10 ms, ``libcudart`` 0.3 ms; starting the child (``python -I -S``
with ctypes and json) costs ~60 ms.  The calls run in one child anyway:

* crash isolation: these are arbitrary native libraries from the user's
  environment, and some abort instead of returning an error: cuDNN 9's
  ``libcudnn.so.9`` separated from its ``libcudnn_graph.so.9`` prints "Unable
  to load any of {libcudnn_graph.so.9...}" and calls ``abort()`` inside
  ``cudnnGetVersion`` (seen here with the 9.10.2.21 wheel).  In-process, that
  would kill the whole capture.  The child prints one JSON line per library and flushes, so
  a crash costs only the library it happened in (the rest are retried in a
  fresh child);
* no cross-binding: two copies of one SONAME (a conda ``libcublas.so.12``
  and a pip one) loaded into one process make the second resolve its
  dependencies (``libcublasLt.so.12``) to the first copy's; copies of the same
  file name go to separate children;
* nothing of the user's CUDA stack stays mapped in envlock's own process.

The cost is paid once per library file: answers are cached by file identity
(resolved path, size, mtime, inode) in envlock's cache directory
(:mod:`envlock.capture.cache`), so a repeated capture asks no library at all.
Measured for the whole CUDA probe over the cuDNN + cuBLAS + cudart test venv
plus the system toolkit: 143-178 ms with an empty cache (one child), 8-12 ms
with a warm one (most of it ``nvcc --version``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from envlock.capture import cache
from envlock.records import record

# The kinds whose library answers a version call, and the file name prefix of
# that library (``libcudnn.so.9`` is cuDNN's front library; the others hang off it).
LIBRARY_PREFIXES = {
    "cudart": "libcudart.so.",
    "cudnn": "libcudnn.so.",
    "nccl": "libnccl.so.",
    "cublas": "libcublas.so.",
    "cufft": "libcufft.so.",
    "curand": "libcurand.so.",
    "cusparse": "libcusparse.so.",
    "cusolver": "libcusolver.so.",
    "nvrtc": "libnvrtc.so.",
    "nvjitlink": "libnvJitLink.so.",
}

_PROPERTY_FUNCTIONS = {
    "cublas": "cublasGetProperty",
    "cufft": "cufftGetProperty",
    "curand": "curandGetProperty",
    "cusparse": "cusparseGetProperty",
    "cusolver": "cusolverGetProperty",
}

_CHILD_TIMEOUT_S = 60
_CACHE_FILE = "cuda-library-versions.json"
_CACHE_FORMAT = 2  # 2: the key has the change time and device

# Runs in the child: stdlib only.  Reads [[kind, path], ...] on stdin, prints
# one JSON object per library as soon as it has the answer.
_CHILD_SCRIPT = r"""
import ctypes, json, sys
PROPERTY = __PROPERTY_FUNCTIONS__
def ask(kind, path):
    lib = ctypes.CDLL(path)
    if kind == "cudnn":
        fn = lib.cudnnGetVersion
        fn.restype = ctypes.c_size_t
        return 0, [int(fn())]
    if kind in ("cudart", "nccl"):
        fn = lib.cudaRuntimeGetVersion if kind == "cudart" else lib.ncclGetVersion
        value = ctypes.c_int()
        return fn(ctypes.byref(value)), [value.value]
    if kind in ("nvrtc", "nvjitlink"):
        fn = lib.nvrtcVersion if kind == "nvrtc" else lib.nvJitLinkVersion
        major, minor = (ctypes.c_int(), ctypes.c_int()) if kind == "nvrtc" else (ctypes.c_uint(), ctypes.c_uint())
        return fn(ctypes.byref(major), ctypes.byref(minor)), [major.value, minor.value]
    fn = getattr(lib, PROPERTY[kind])
    parts = []
    for prop in (0, 1, 2):  # MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
        value = ctypes.c_int()
        status = fn(prop, ctypes.byref(value))
        if status:
            return status, parts
        parts.append(value.value)
    return 0, parts
for kind, path in json.load(sys.stdin):
    try:
        status, raw = ask(kind, path)
        answer = {"path": path, "status": status, "raw": raw}
    except (OSError, AttributeError) as exc:
        answer = {"path": path, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
""".replace("__PROPERTY_FUNCTIONS__", repr(_PROPERTY_FUNCTIONS))


@record
class LibraryVersion:
    """What one library said: a version, or why there is none."""

    path: str
    version: str | None
    error: str | None = None


# --- pure decoding --------------------------------------------------------------------


def decode_version(kind: str, raw: list[int]) -> str | None:
    """The dotted version for ``kind`` from the integers its call returned."""
    if not raw or any(not isinstance(part, int) or part < 0 for part in raw):
        return None
    if kind == "cudart":
        value = raw[0]
        return f"{value // 1000}.{(value % 1000) // 10}" if value > 0 else None
    if kind == "cudnn":
        value = raw[0]
        if value >= 90000:  # cuDNN 9 widened the minor field
            return f"{value // 10000}.{(value % 10000) // 100}.{value % 100}"
        return f"{value // 1000}.{(value % 1000) // 100}.{value % 100}" if value > 0 else None
    if kind == "nccl":
        value = raw[0]
        if value >= 20900:  # NCCL_VERSION_CODE widened the minor field in 2.9
            return f"{value // 10000}.{(value % 10000) // 100}.{value % 100}"
        return f"{value // 1000}.{(value % 1000) // 100}.{value % 100}" if value > 0 else None
    if kind in _PROPERTY_FUNCTIONS:
        return ".".join(str(part) for part in raw[:3]) if len(raw) >= 3 else None
    if kind in ("nvrtc", "nvjitlink"):
        return f"{raw[0]}.{raw[1]}" if len(raw) >= 2 else None
    return None


def split_into_batches(queries: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Batches in which no two libraries share a file name (see the module docstring)."""
    batches: list[list[tuple[str, str]]] = []
    for kind, path in queries:
        name = os.path.basename(path)
        for batch in batches:
            if all(os.path.basename(other) != name for _k, other in batch):
                batch.append((kind, path))
                break
        else:
            batches.append([(kind, path)])
    return batches


# --- the cache ----------------------------------------------------------------------------


def _identity(path: str) -> str | None:
    identity = cache.file_identity(path)
    if identity is None:
        return None
    return "|".join([os.path.realpath(path), *map(str, identity)])


def _load_cache() -> dict:
    data = cache.load_json(_CACHE_FILE)
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT or not isinstance(data.get("entries"), dict):
        return {}
    return data["entries"]


def _save_cache(entries: dict) -> None:
    cache.save_json(_CACHE_FILE, {"format": _CACHE_FORMAT, "entries": entries}, sort_keys=True)


# --- asking --------------------------------------------------------------------------------


def query_versions(queries: list[tuple[str, str]], *, use_cache: bool | None = None) -> dict[str, LibraryVersion]:
    """``{path: LibraryVersion}`` for each ``(kind, path)``, from the cache or one child process.

    The cache is used unless ``use_cache`` is false or, when it is not given, ``ENVLOCK_NO_CACHE`` is set.
    """
    if use_cache is None:
        use_cache = cache.enabled()
    results: dict[str, LibraryVersion] = {}
    entries = _load_cache() if use_cache else {}
    pending: list[tuple[str, str]] = []
    identities: dict[str, str | None] = {}
    for kind, path in queries:
        if kind not in LIBRARY_PREFIXES or path in results:
            continue
        identity = identities[path] = _identity(path)
        if identity is None:
            results[path] = LibraryVersion(path, None, "file not found or unreadable")
            continue
        cached = entries.get(identity)
        if isinstance(cached, dict) and cached.get("kind") == kind and isinstance(cached.get("raw"), list):
            results[path] = LibraryVersion(path, decode_version(kind, cached["raw"]))
        else:
            pending.append((kind, path))
    answers = _ask_children(pending)
    changed = False
    for kind, path in pending:
        answer = answers.get(path) or {"error": "no answer from the version probe"}
        if "error" in answer:
            results[path] = LibraryVersion(path, None, str(answer["error"]))
            continue
        status, raw = answer.get("status"), answer.get("raw")
        if status != 0 or not isinstance(raw, list):
            results[path] = LibraryVersion(path, None, f"the version call returned status {status}")
            continue
        version = decode_version(kind, raw)
        results[path] = LibraryVersion(path, version, None if version else f"unexpected answer {raw!r}")
        identity = identities.get(path)
        if identity and version:
            entries[identity] = {"kind": kind, "raw": raw}
            changed = True
    if use_cache and changed:
        _save_cache(entries)
    return results


def _ask_children(queries: list[tuple[str, str]]) -> dict[str, dict]:
    answers: dict[str, dict] = {}
    for batch in split_into_batches(queries):
        remaining = list(batch)
        while remaining:
            got, crashed, fatal = _ask_one_child(remaining)
            answers.update(got)
            remaining = [(k, p) for k, p in remaining if p not in got]
            if not remaining:
                break
            if crashed is None or fatal:  # nothing to blame on one library: give up on the rest
                for _kind, path in remaining:
                    answers[path] = {"error": crashed or "the version probe gave no answer"}
                break
            # The first unanswered library took the child down; record it and go on with the rest.
            _kind, path = remaining.pop(0)
            answers[path] = {"error": crashed}
    return answers


def _ask_one_child(queries: list[tuple[str, str]]) -> tuple[dict[str, dict], str | None, bool]:
    """(answers, why the child stopped early or None, whether retrying is pointless)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _CHILD_SCRIPT],
            input=json.dumps(queries),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_CHILD_TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return _parse_answers(stdout), f"the library did not answer within {_CHILD_TIMEOUT_S} s", False
    except OSError as exc:
        return {}, f"could not start the version probe: {exc}", True
    answers = _parse_answers(proc.stdout)
    if proc.returncode == 0:
        return answers, None, False
    how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
    return answers, f"loading the library crashed the version probe ({how})", False


def _parse_answers(stdout: str) -> dict[str, dict]:
    answers: dict[str, dict] = {}
    for line in stdout.splitlines():
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and isinstance(answer.get("path"), str):
            answers[answer["path"]] = answer
    return answers
