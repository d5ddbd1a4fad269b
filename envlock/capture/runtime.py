"""The numerics runtime: allow-listed environment variables and bundled BLAS/OpenMP libraries.

Which BLAS and which OpenMP runtime a process loads changes results (summation
order, kernel choice, thread scheduling).  Wheels bundle their own: numpy and
scipy vendor OpenBLAS in ``numpy.libs``/``scipy.libs``, scikit-learn vendors
libgomp, torch ships ``torch/lib/libgomp.so.1``, the ``mkl`` and
``intel-openmp`` wheels put MKL and libiomp5 into the prefix.  All of that is
found from files: directory listings, a few RECORDs, and numpy/scipy's
generated ``__config__.py`` (read as text) for the BLAS version.  Nothing is
imported: importing numpy alone costs ~80 ms and loads the very libraries we
are describing.

Budget: ~20 ms on a 60-package env (measured in tests/unit/test_capture_runtime.py).
"""

from __future__ import annotations

import os
import re

from envlock.capture.distributions import canonical_name
from envlock.capture.env_vars import select_numerics_env
from envlock.capture.privacy import scrub_text
from envlock.lockfile import fields as chk
from envlock.lockfile import model as m
from envlock.paths import pure_path_text
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Iterable
    from typing import Any

# (substring of the lower-case file name, kind, library name, preference).
# The first pattern that matches wins, so scipy_openblas is tried before
# openblas; lower preference is the better representative when one package
# ships several files of one library (MKL ships ~20: libmkl_rt first).
_LIBRARY_PATTERNS: tuple[tuple[str, str, str, int], ...] = (
    ("scipy_openblas", "blas", "scipy_openblas", 0),
    ("openblas", "blas", "openblas", 0),
    ("libmkl_rt", "blas", "mkl", 0),
    ("libmkl_core", "blas", "mkl", 1),
    ("libmkl_", "blas", "mkl", 2),
    ("libblis", "blas", "blis", 0),
    ("libflexiblas", "blas", "flexiblas", 0),
    ("libarmpl", "blas", "armpl", 0),
    ("libcblas", "blas", "cblas", 0),
    ("libblas", "blas", "blas", 0),
    ("liblapack", "lapack", "lapack", 0),
    ("libgomp", "openmp", "gomp", 0),
    ("libiomp5", "openmp", "iomp5", 0),
    ("libomp", "openmp", "omp", 0),
    ("libfftw3", "fft", "fftw", 0),
    ("libdnnl", "dnn", "onednn", 0),
    ("libmkldnn", "dnn", "onednn", 1),
)

_SHARED_LIBRARY = re.compile(r"\.(?:so(?:\.[0-9.]+)?|dylib|dll)$")
# OpenBLAS names its library libopenblasp-r0.3.21.so (release 0.3.21);
# auditwheel, vendoring it into numpy < 1.26, put a hash after "r0":
# libopenblas64_p-r0-742d56dc.3.20.so is OpenBLAS 0.3.20.
_VERSION_IN_NAME = re.compile(r"-r([0-9]+)(?:-[0-9a-f]{8})?\.([0-9]+\.[0-9]+)(?:\.dev)?\.(?:so|dylib|dll)\b")

# Wheels that exist to ship a native library into the environment; their
# RECORD says where the files went (often ../../lib, outside site-packages),
# and the distribution's version is the library's.
_LIBRARY_DISTS = frozenset(
    {"mkl", "intel-openmp", "scipy-openblas32", "scipy-openblas64", "blis", "openblas", "llvm-openmp", "tbb"}
)
# Packages that keep their native libraries in <package>/lib rather than a
# *.libs directory.
_PACKAGE_LIB_DIRS = {"torch": "torch/lib", "mxnet": "mxnet", "paddle": "paddle/libs", "tensorflow": "tensorflow"}
# Import names that differ from the distribution name, for <package>/.libs.
_IMPORT_NAMES = {"sklearn": "scikit-learn", "cv2": "opencv-python", "skimage": "scikit-image"}
# Packages whose generated __config__.py names the BLAS they were built with.
_CONFIG_FILES = {"numpy": "numpy/__config__.py", "scipy": "scipy/__config__.py"}


def classify_shared_object(file_name: str) -> tuple[str, str, int] | None:
    """(kind, library name, preference) for a shared-library file name, or ``None`` (pure)."""
    lower = file_name.lower()
    if not _SHARED_LIBRARY.search(lower):
        return None
    for needle, kind, name, preference in _LIBRARY_PATTERNS:
        if needle in lower:
            return kind, name, preference
    return None


def version_from_file_name(file_name: str) -> str | None:
    """The OpenBLAS release a library's file name carries (``...-r0-742d56dc.3.20.so`` → ``0.3.20``) (pure)."""
    match = _VERSION_IN_NAME.search(file_name)
    return f"{match.group(1)}.{match.group(2)}" if match else None


_BLOCK = re.compile(r'"(blas|lapack)"\s*:\s*\{(.*?)\}', re.S)
_ENTRY = re.compile(r'"(name|version|openblas configuration)"\s*:\s*r?"([^"\n]*)"')


def parse_build_config(text: str) -> dict[str, tuple[str | None, str | None]]:
    """``{"blas": (name, version), "lapack": (...)}`` from numpy/scipy's generated ``__config__.py`` (pure).

    The file is Python that calls numpy internals, so it is read as text: the
    "Build Dependencies" table written by meson (numpy >= 1.26, scipy >= 1.11).
    """
    start = text.find('"Build Dependencies"')
    if start < 0:
        return {}
    found: dict[str, tuple[str | None, str | None]] = {}
    for match in _BLOCK.finditer(text, start):
        entries = dict(_ENTRY.findall(match.group(2)))
        version = entries.get("version")
        if not version:
            config = entries.get("openblas configuration", "")
            words = config.split()
            version = words[1] if len(words) > 1 and words[0] == "OpenBLAS" else None
        found.setdefault(match.group(1), (entries.get("name"), version))
    return found


def _same_library(config_name: str | None, library: str) -> bool:
    if not config_name:
        return False
    normalized = config_name.lower().replace("-", "_")
    return normalized == library or normalized.startswith(library) or library.startswith(normalized)


# --- reading --------------------------------------------------------------------


@record
class FoundLibrary:
    package: str
    kind: str
    name: str
    path: str  # spelled as pathlib spelled it
    version: str | None
    preference: int


def _list_dir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _libraries_in(directory: str, package: str, version: str | None = None) -> Iterable[FoundLibrary]:
    for entry in _list_dir(directory):
        found = classify_shared_object(entry)
        if found:
            kind, name, preference = found
            yield FoundLibrary(
                package,
                kind,
                name,
                os.path.join(directory, entry),
                version or version_from_file_name(entry),
                preference,
            )


def find_bundled_libraries(site_dirs: Iterable[str], dists: list[Any]) -> list[FoundLibrary]:
    """Every BLAS/LAPACK/OpenMP library that an installed package bundles, found from files."""
    by_name = {d.normalized_name: d for d in dists}
    found: list[FoundLibrary] = []
    for site in site_dirs:
        site_dir = pure_path_text(site)
        for entry in _list_dir(site_dir):
            if entry.endswith(".libs"):  # auditwheel / delvewheel: <dist>.libs
                stem = entry[: -len(".libs")]
                found.extend(
                    _libraries_in(os.path.join(site_dir, entry), canonical_name(_IMPORT_NAMES.get(stem, stem)))
                )
            elif "." not in entry and entry != "__pycache__":
                owner = canonical_name(_IMPORT_NAMES.get(entry, entry))
                for hidden in (".libs", ".dylibs"):  # old auditwheel; delocate on macOS
                    hidden_dir = os.path.join(site_dir, entry, hidden)
                    if os.path.isdir(hidden_dir):
                        found.extend(_libraries_in(hidden_dir, owner))
    for package, rel in _PACKAGE_LIB_DIRS.items():
        dist = by_name.get(package)
        if dist is not None:
            found.extend(_libraries_in(os.path.join(dist.site_dir, rel), package))
    for name in sorted(_LIBRARY_DISTS & by_name.keys()):
        dist = by_name[name]
        for path in dist.record_shared_libraries():
            classified = classify_shared_object(os.path.basename(path))
            if classified:
                kind, lib, preference = classified
                found.append(FoundLibrary(name, kind, lib, path, dist.version, preference))
    return _with_config_versions(found, by_name)


def _with_config_versions(found: list[FoundLibrary], by_name: dict[str, Any]) -> list[FoundLibrary]:
    """Fill in BLAS versions from numpy/scipy's build configuration (read as text, never imported)."""
    configs: dict[str, dict] = {}
    for package, rel in _CONFIG_FILES.items():
        dist = by_name.get(package)
        if dist is None or not any(f.package == package for f in found):
            continue
        try:
            with open(os.path.join(dist.site_dir, rel), encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue
        configs[package] = parse_build_config(text)
    out = []
    for lib in found:
        if lib.version is None and lib.package in configs and lib.kind in ("blas", "lapack"):
            name, version = configs[lib.package].get(lib.kind, (None, None))
            if version and _same_library(name, lib.name):
                lib = FoundLibrary(lib.package, lib.kind, lib.name, lib.path, version, lib.preference)
        out.append(lib)
    return out


def find_conda_libraries(prefix: str) -> list[FoundLibrary]:
    """BLAS/OpenMP libraries that conda packages put into a conda prefix (libopenblas, mkl, llvm-openmp, libgomp).

    In a conda env numpy links against these rather than a vendored copy;
    the conda-meta file lists (already parsed for the conda layer, and
    cached) name them, and the package version is the library's.
    """
    from envlock.capture.conda import conda_meta_dir, read_conda_records

    if not os.path.isdir(conda_meta_dir(prefix)):
        return []
    found: list[FoundLibrary] = []
    base = pure_path_text(os.fspath(prefix))
    for conda_record in read_conda_records(prefix).records:
        name, version, files = conda_record.get("name"), conda_record.get("version"), conda_record.get("files")
        if not isinstance(name, str) or not isinstance(files, list):
            continue
        for rel in files:
            if not isinstance(rel, str) or not (".so" in rel or ".dylib" in rel or ".dll" in rel):
                continue
            slash = rel.rfind("/")
            classified = classify_shared_object(rel[slash + 1 :])
            if classified:
                kind, lib, preference = classified
                found.append(
                    FoundLibrary(
                        name,
                        kind,
                        lib,
                        pure_path_text(os.path.join(base, rel)),
                        version if isinstance(version, str) else None,
                        preference,
                    )
                )
    return found


def _representatives(found: list[FoundLibrary]) -> list[FoundLibrary]:
    """One file per (package, library): MKL's twenty files are one library."""
    best: dict[tuple[str, str], FoundLibrary] = {}
    for lib in found:
        key = (lib.package, lib.name)
        current = best.get(key)
        if current is None or (lib.preference, os.path.basename(lib.path)) < (
            current.preference,
            os.path.basename(current.path),
        ):
            best[key] = lib
    return list(best.values())


def _display_path(path: str, site_dirs: Iterable[str], prefix: str) -> str:
    """A site-packages-relative path (``numpy.libs/libscipy_openblas64_-....so``), else prefix-relative."""
    text = os.path.normpath(str(path))
    for site in site_dirs:
        site = os.path.normpath(site)
        if text.startswith(site + os.sep):
            return text[len(site) + 1 :]
    prefix = os.path.normpath(prefix)
    if text.startswith(prefix + os.sep):
        return text[len(prefix) + 1 :]  # mkl's ../../lib/libmkl_rt.so.2 -> lib/libmkl_rt.so.2
    return scrub_text(text)


# --- probe ------------------------------------------------------------------------


def numerics_env(environ: dict[str, str], warn: Any) -> dict[str, str]:
    """The allow-listed variables, values scrubbed of home paths; a value the lock cannot hold is dropped."""
    out = {}
    for name, value in select_numerics_env(environ).items():
        value = scrub_text(value)
        problem = chk.env_name(name) or chk.long_text(value)
        if problem:
            warn(f"runtime.env.{name}: value {problem}; not recorded")
            continue
        out[name] = value
    return out


def probe_runtime(ctx: Any) -> m.RuntimeSection:
    info = ctx.interpreter
    site_dirs = list(info.site_dirs)
    libraries = []
    found = find_bundled_libraries(site_dirs, ctx.dists) + find_conda_libraries(info.prefix)
    for lib in _representatives(found):
        fields: dict[str, Any] = {
            "package": lib.package,
            "kind": lib.kind,
            "name": lib.name,
            "file": _display_path(lib.path, site_dirs, info.prefix),
            "version": lib.version,
        }
        if chk.python_name(fields["package"]) or chk.path_text(fields["file"]):
            ctx.warn(f"{scrub_text(str(lib.path))}: bundled library path cannot be recorded; skipped")
            continue
        if fields["version"] and chk.version(fields["version"]):
            fields["version"] = None
        libraries.append(m.NativeLibrary(**fields))
    return m.RuntimeSection(env=numerics_env(dict(os.environ), ctx.warn), libraries=tuple(libraries))
