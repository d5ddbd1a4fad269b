"""The CUDA stack, from every place it can come from, each component with where it was found.

Four sources, because the CUDA a program uses is rarely the one ``nvcc`` reports
(``torch.utils.collect_env`` reports the system ``nvcc`` and ``ldconfig``'s
cuDNN, while a pip-installed torch loads the cuDNN of the ``nvidia-cudnn-cu12``
wheel):

* ``system``: toolkits under ``$CUDA_HOME``/``$CUDA_PATH``, ``/usr/local/cuda*``
  and the ``nvcc`` on ``PATH`` (``version.json`` or ``version.txt``,
  ``nvcc --version``, and the toolkit's own libraries asked for their versions);
* ``pip``: NVIDIA's CUDA wheels (``nvidia-cudnn-cu12``, ``nvidia-cublas``, ...);
  the version is what the library itself reports through ctypes
  (:mod:`envlock.capture.cuda_libs`); where the library has no version
  function (cuPTI, NVTX, cuFile, ...) the wheel's version is recorded, and
  where a version function exists but could not answer, the wheel's version is
  recorded and a capture warning says so;
* ``conda``: ``cudatoolkit``, ``cuda-*``, ``cudnn``, ``nccl``, ``libcublas``, ...
  from the prefix's ``conda-meta/*.json`` file names (``name-version-build.json``;
  no JSON parsed), and the prefix's ``lib/`` libraries asked the same way;
* ``framework``: what torch, TensorFlow and JAX were *built* against, from
  their installed files, never by importing them (importing torch costs
  1.7 s and initialises CUDA).

Read functions return raw text or ``None``; ``parse_*`` are pure.
"""

from __future__ import annotations

import json
import os
import re

from envlock.capture import cuda_libs
from envlock.capture.privacy import scrub_text
from envlock.lockfile import fields as chk
from envlock.lockfile import model as m
from envlock.lockfile.fields import compiled_on_first_use
from envlock.paths import pure_path_text
from envlock.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Iterable

    from envlock.capture.collect import CaptureContext
    from envlock.capture.distributions import InstalledDist

_MAX_FILE_BYTES = 1024 * 1024


@record
class _Found:
    """A component before its library was asked: the wheel/metadata version and the file to ask."""

    name: str
    fallback_version: str | None
    source: str
    location: str
    library: str | None = None  # a file with a version function to call
    what: str = ""  # for warnings: which package or toolkit


def probe_cuda(ctx: CaptureContext, system_toolkits: list[_Found] | None = None) -> m.CudaSection:
    """The CUDA layer; ``system_toolkits`` is ``find_system_toolkits``'s answer when it was found earlier."""
    found: list[_Found] = []
    found.extend(find_system_toolkits(os.environ) if system_toolkits is None else system_toolkits)
    found.extend(find_pip_components(ctx.dists))
    if ctx.interpreter.is_conda:
        found.extend(find_conda_components(ctx.interpreter.prefix))
    frameworks, framework_libraries = find_frameworks(ctx.dists)
    found.extend(framework_libraries)
    components = _resolve_versions(found, ctx.warn)
    return m.CudaSection(
        components=tuple(sorted(components, key=lambda c: (c.name, c.source, c.location or ""))),
        frameworks=tuple(sorted(frameworks, key=lambda f: f.name)),
    )


def _resolve_versions(found: list[_Found], warn) -> list[m.CudaComponent]:
    # Every _Found with a library is named for its library kind (cudnn, cublas, ...).
    queries = [(item.name, item.library) for item in found if item.library]
    answers = cuda_libs.query_versions(queries) if queries else {}
    components = []
    seen: set[tuple[str, str, str]] = set()
    for item in found:
        version = None
        if item.library:
            answer = answers.get(item.library)
            version = answer.version if answer else None
            if version is None and answer is not None and item.fallback_version:
                warn(
                    f"cuda: {item.what}: {os.path.basename(item.library)} did not report its version "
                    f"({answer.error}); recorded {item.fallback_version} from the package metadata"
                )
        version = version or item.fallback_version
        if not version or chk.version(version) is not None or chk.token(item.name) is not None:
            continue
        location = scrub_text(item.location)
        key = (item.name, item.source, location)
        if key in seen:
            continue
        seen.add(key)
        components.append(m.CudaComponent(name=item.name, version=version, source=item.source, location=location))
    return components


# --- system toolkits ---------------------------------------------------------------------

# version.json keys (CUDA 11.1+) for the components recorded from a toolkit.
_VERSION_JSON_KEYS = {"cuda": "cuda-toolkit", "cuda_nvcc": "nvcc", "cuda_cudart": "cudart"}


def toolkit_roots(environ) -> list[str]:
    """Candidate toolkit directories, most specific first, each once (by resolved path)."""
    candidates: list[str] = []
    for var in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"):
        value = environ.get(var)
        if value:
            candidates.extend(part for part in value.split(os.pathsep) if part)
    candidates.append("/usr/local/cuda")
    candidates.extend(
        sorted(os.path.join("/usr/local", name) for name in _list_dir("/usr/local") if name.startswith("cuda-"))
    )
    for directory in environ.get("PATH", "").split(os.pathsep):
        if directory and os.path.isfile(os.path.join(directory, "nvcc")):
            nvcc = os.path.realpath(os.path.join(directory, "nvcc"))
            candidates.append(os.path.dirname(os.path.dirname(nvcc)))
    roots: list[str] = []
    seen: set[str] = set()
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if real in seen or not os.path.isdir(real):
            continue
        seen.add(real)
        if _looks_like_toolkit(real):
            roots.append(real)
    return roots


def _list_dir(directory: str) -> list[str]:
    """The names in ``directory`` (none when it cannot be listed).

    Listings and name tests stand in for ``glob``: each glob pattern is a
    regular expression compiled on first use, 0.2 ms apiece, and the toolkit
    search used a dozen of them.
    """
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _looks_like_toolkit(root: str) -> bool:
    # bin/nvcc alone is not enough: /usr/local/bin/nvcc can be a wrapper script
    # (it is on this machine), which would make /usr/local look like a toolkit.
    return (
        (
            os.path.isfile(os.path.join(root, "bin", "nvcc"))
            and os.path.isfile(os.path.join(root, "include", "cuda_runtime.h"))
        )
        or os.path.isfile(os.path.join(root, "version.json"))
        or os.path.isfile(os.path.join(root, "version.txt"))
        or bool(_toolkit_libraries(_toolkit_library_listing(root), "cudart"))
    )


def _toolkit_lib_dirs(root: str) -> list[str]:
    targets = os.path.join(root, "targets")
    # targets/*/lib, in the order of the target names (as pathlib sorted them)
    target_libs = [
        os.path.join(targets, name, "lib")
        for name in sorted(_list_dir(targets))
        if os.path.isdir(os.path.join(targets, name)) and os.path.exists(os.path.join(targets, name, "lib"))
    ]
    unique: list[str] = []
    for directory in [os.path.join(root, "lib64"), os.path.join(root, "lib")] + target_libs:
        if os.path.isdir(directory) and os.path.realpath(directory) not in {os.path.realpath(d) for d in unique}:
            unique.append(directory)
    return unique


def _toolkit_library_listing(root: str) -> list[tuple[str, list[str]]]:
    """(directory, sorted names) for each library directory of a toolkit, listed once for every kind."""
    return [(directory, sorted(_list_dir(directory))) for directory in _toolkit_lib_dirs(root)]


def _toolkit_libraries(listing: list[tuple[str, list[str]]], kind: str) -> list[str]:
    prefix = cuda_libs.LIBRARY_PREFIXES[kind]
    return [os.path.join(directory, name) for directory, names in listing for name in names if _is_soname(name, prefix)]


def _is_soname(file_name: str, prefix: str) -> bool:
    """``libcudnn.so.9`` for prefix ``libcudnn.so.``; not ``libcudnn.so.9.1.0`` nor ``libcudnn_ops.so.9``."""
    return file_name.startswith(prefix) and file_name[len(prefix) :].isdigit()


def read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(_MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None


def read_nvcc_version(nvcc: str) -> str | None:
    from envlock.proc import run

    result = run([nvcc, "--version"], timeout=20)
    if result is None or result.returncode != 0:
        return None
    return result.stdout if isinstance(result.stdout, str) else result.stdout.decode("utf-8", "replace")


def parse_version_json(text: str) -> dict[str, str]:
    """``{component name: version}`` from a toolkit's ``version.json`` (CUDA 11.1+)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    versions = {}
    for key, name in _VERSION_JSON_KEYS.items():
        entry = data.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("version"), str):
            versions[name] = entry["version"].strip()
    return versions


def parse_version_txt(text: str) -> str | None:
    """``CUDA Version 10.1.243`` (toolkits before 11.1)."""
    match = re.search(r"CUDA Version\s+([0-9]+(?:\.[0-9]+)+)", text)
    return match.group(1) if match else None


def parse_nvcc_version(text: str) -> tuple[str | None, str | None]:
    """(release, full version) from ``nvcc --version``: ``release 13.0, V13.0.88`` -> ("13.0", "13.0.88")."""
    match = re.search(r"release\s+([0-9]+\.[0-9]+)\s*,\s*V([0-9]+(?:\.[0-9]+)+)", text)
    if not match:
        return None, None
    return match.group(1), match.group(2)


def find_system_toolkits(environ) -> list[_Found]:
    found: list[_Found] = []
    for root in toolkit_roots(environ):
        location = root
        what = f"CUDA toolkit {location}"
        versions: dict[str, str] = {}
        text = read_text(os.path.join(root, "version.json"))
        if text:
            versions.update(parse_version_json(text))
        if "cuda-toolkit" not in versions:
            text = read_text(os.path.join(root, "version.txt"))
            toolkit = parse_version_txt(text) if text else None
            if toolkit:
                versions["cuda-toolkit"] = toolkit
        nvcc = os.path.join(root, "bin", "nvcc")
        if "nvcc" not in versions and os.path.isfile(nvcc):
            text = read_nvcc_version(nvcc)
            release, full = parse_nvcc_version(text) if text else (None, None)
            if full:
                versions["nvcc"] = full
                if release is not None:
                    versions.setdefault("cuda-toolkit", release)
        for name in ("cuda-toolkit", "nvcc"):
            if versions.get(name):
                found.append(_Found(name, versions[name], "system", location, what=what))
        listing = _toolkit_library_listing(root)
        for kind in cuda_libs.LIBRARY_PREFIXES:
            libraries = _toolkit_libraries(listing, kind)
            if libraries:
                fallback = versions.get("cudart") if kind == "cudart" else None
                found.append(_Found(kind, fallback, "system", location, library=libraries[0], what=what))
            elif kind == "cudart" and versions.get("cudart"):
                found.append(_Found("cudart", versions["cudart"], "system", location, what=what))
    return found


# --- pip wheels ------------------------------------------------------------------------------

# NVIDIA's wheel names (without ``nvidia-`` and the ``-cuXX`` suffix) -> component.
_PIP_COMPONENTS = {
    "cuda-runtime": "cudart",
    "cuda-nvrtc": "nvrtc",
    "cuda-cupti": "cupti",
    "cuda-nvcc": "nvcc",
    "cudnn": "cudnn",
    "cublas": "cublas",
    "nccl": "nccl",
    "cufft": "cufft",
    "curand": "curand",
    "cusolver": "cusolver",
    "cusparse": "cusparse",
    "nvjitlink": "nvjitlink",
}
# Compiled on first use: asked only for names that start with "nvidia-".
_pip_name = compiled_on_first_use(r"nvidia-(?P<base>cu[a-z0-9-]*?|nccl|nvjitlink|nvtx|nvshmem|nvvm)(?:-cu[0-9]+)?")


def parse_pip_component(normalized_name: str) -> str | None:
    """The component an NVIDIA CUDA wheel ships (``nvidia-cudnn-cu12`` -> ``cudnn``), or ``None``."""
    if not normalized_name.startswith("nvidia-"):  # every other distribution, without the pattern
        return None
    match = _pip_name().fullmatch(normalized_name)
    if not match:
        return None
    base = match.group("base")
    return _PIP_COMPONENTS.get(base, base)


def find_pip_components(dists: Iterable[InstalledDist]) -> list[_Found]:
    found = []
    for dist in dists:
        name = parse_pip_component(dist.normalized_name)
        if name is None:
            continue
        location = f"{dist.normalized_name}=={dist.version}"
        library = None
        prefix = cuda_libs.LIBRARY_PREFIXES.get(name)
        if prefix:
            candidates = sorted(p for p in dist.record_files() if _is_soname(os.path.basename(p), prefix))
            library = candidates[0] if candidates else None
        found.append(_Found(name, dist.version, "pip", location, library=library, what=dist.normalized_name))
    return found


# --- conda ------------------------------------------------------------------------------------

_CONDA_COMPONENTS = {
    "cuda-cudart": "cudart",
    "cuda-nvcc": "nvcc",
    "cuda-nvrtc": "nvrtc",
    "cuda-cupti": "cupti",
    "libcublas": "cublas",
    "libcufft": "cufft",
    "libcurand": "curand",
    "libcusolver": "cusolver",
    "libcusparse": "cusparse",
    "libnvjitlink": "nvjitlink",
    "cudnn": "cudnn",
    "nccl": "nccl",
    "cudatoolkit": "cudatoolkit",
}
# Headers, static archives and docs change nothing at run time.
_CONDA_SKIPPED_SUFFIXES = ("-dev", "-static", "-doc")


def parse_conda_meta_name(file_name: str) -> tuple[str, str, str] | None:
    """(name, version, build) from ``cudnn-8.9.2.26-cuda11_0.json`` (conda-meta's own naming)."""
    if not file_name.endswith(".json"):
        return None
    parts = file_name[: -len(".json")].rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def conda_component(package: str) -> str | None:
    if package in _CONDA_COMPONENTS:
        return _CONDA_COMPONENTS[package]
    if package.startswith("cuda-") and not package.endswith(_CONDA_SKIPPED_SUFFIXES):
        return package
    return None


def find_conda_components(prefix: str | os.PathLike) -> list[_Found]:
    prefix = pure_path_text(os.fspath(prefix))
    try:
        names = sorted(os.listdir(os.path.join(prefix, "conda-meta")))
    except OSError:
        return []
    found = []
    for file_name in names:
        parsed = parse_conda_meta_name(file_name)
        if parsed is None:
            continue
        package, version, build = parsed
        name = conda_component(package)
        if name is None:
            continue
        library = None
        if name in cuda_libs.LIBRARY_PREFIXES:
            lib_dir = os.path.join(prefix, "lib")
            candidates = sorted(
                os.path.join(lib_dir, file_name)
                for file_name in _list_dir(lib_dir)
                if _is_soname(file_name, cuda_libs.LIBRARY_PREFIXES[name])
            )
            library = candidates[0] if candidates else None
        location = f"{package}-{version}-{build}"
        found.append(_Found(name, version, "conda", location, library=library, what=f"conda package {location}"))
    return found


# --- framework builds ----------------------------------------------------------------------------

_TENSORFLOW_DISTS = (
    "tensorflow",
    "tensorflow-gpu",
    "tensorflow-cpu",
    "tensorflow-intel",
    "tf-nightly",
    "tensorflow-cpu-aws",
)


def parse_torch_version_py(text: str) -> dict[str, str | None]:
    """``cuda``, ``hip`` and ``__version__`` from torch/version.py (a generated file of simple assignments)."""
    values: dict[str, str | None] = {}
    # One pattern for the three names (one compile, not three): assignments are
    # whole lines, so the first line for each name is what a search per name found.
    for match in _torch_version_line().finditer(text):
        key = match.group(1)
        if key not in values:
            values[key] = match.group(2) if match.group(2) is not None else match.group(3)
    return values


_torch_version_line = compiled_on_first_use(
    r"^(__version__|cuda|hip)\s*(?::[^=\n]*)?=\s*(?:'([^'\n]*)'|\"([^\"\n]*)\"|None)\s*$", re.MULTILINE
)


def parse_cudnn_pin(metadata: str) -> str | None:
    """The exact cuDNN wheel a CUDA torch build requires (``Requires-Dist: nvidia-cudnn-cu12==9.10.2.21; ...``)."""
    match = re.search(
        r"^Requires-Dist:\s*nvidia[-_]cudnn[-_]cu[0-9]+\s*==\s*([0-9][0-9.]*)", metadata, re.MULTILINE | re.IGNORECASE
    )
    return match.group(1) if match else None


def parse_tensorflow_build_info(text: str) -> dict[str, object]:
    """The ``build_info`` mapping of tensorflow/python/platform/build_info.py, read with ``ast`` (never executed).

    Three generated shapes exist: a dict literal (TF 2.3), ``collections.OrderedDict([(k, v), ...])``
    (TF 2.4+), and item assignments ``build_info['k'] = v``.
    """
    try:
        import ast  # only for TensorFlow's build_info.py; 4 ms of import otherwise

        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    info: dict[str, object] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        if isinstance(target, ast.Name) and target.id == "build_info":
            literal = value
            if isinstance(value, ast.Call) and value.args:  # OrderedDict([...])
                literal = value.args[0]
            try:
                data = ast.literal_eval(literal)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(data, dict):
                info.update(data)
            elif isinstance(data, list):
                info.update(pair for pair in data if isinstance(pair, tuple) and len(pair) == 2)
        elif (
            isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == "build_info"
        ):
            try:
                key, item = ast.literal_eval(target.slice), ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            info[key] = item
    return {k: v for k, v in info.items() if isinstance(k, str)}


def normalize_tensorflow_cuda(value: object) -> str | None:
    """``'12.3'`` -> ``12.3``; Windows builds write ``'64_112'`` (cudart64_112.dll) -> ``11.2``, ``'64_8'`` -> ``8``."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("64_"):
        digits = value[3:]
        if not digits.isdigit():
            return None
        return digits if len(digits) <= 2 else f"{digits[:-1]}.{digits[-1]}"
    return value if re.fullmatch(r"[0-9]+(?:\.[0-9]+)*", value) else None


def parse_jaxlib_local_label(version: str) -> tuple[str | None, str | None]:
    """(cuda, cudnn) from old CUDA jaxlib versions: ``0.4.20+cuda12.cudnn89`` -> ("12", "8.9")."""
    match = re.search(r"\+cuda([0-9]+)(?:\.cudnn([0-9])([0-9]+))?", version)
    if not match:
        return None, None
    cudnn = f"{match.group(2)}.{match.group(3)}" if match.group(2) else None
    return match.group(1), cudnn


def find_frameworks(dists: Iterable[InstalledDist]) -> tuple[list[m.FrameworkBuild], list[_Found]]:
    by_name = {dist.normalized_name: dist for dist in dists}
    builds: list[m.FrameworkBuild] = []
    libraries: list[_Found] = []
    torch = by_name.get("torch")
    if torch is not None:
        build, bundled = _torch_build(torch)
        builds.append(build)
        libraries.extend(bundled)
    for name in _TENSORFLOW_DISTS:
        dist = by_name.get(name)
        if dist is not None:
            builds.append(_tensorflow_build(dist))
    jaxlib = by_name.get("jaxlib")
    if jaxlib is not None:
        builds.append(_jax_build(jaxlib, by_name))
    return [b for b in builds if b is not None], libraries


def _clean_version(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if chk.version(value) is None else None


def _torch_build(dist: InstalledDist) -> tuple[m.FrameworkBuild, list[_Found]]:
    text = read_text(os.path.join(dist.site_dir, "torch", "version.py")) or ""
    values = parse_torch_version_py(text)
    metadata = read_text(os.path.join(dist.path, "METADATA")) or ""
    cudnn = parse_cudnn_pin(metadata)
    hip = values.get("hip")
    rocm_found = re.match(r"[0-9]+(?:\.[0-9]+)*", hip) if hip else None
    rocm = rocm_found.group(0) if rocm_found else None
    build = m.FrameworkBuild(
        name="torch",
        version=dist.version,
        cuda=_clean_version(values.get("cuda")),
        cudnn=_clean_version(cudnn),
        rocm=_clean_version(rocm),
    )
    # Before the CUDA libraries moved to nvidia-* wheels (torch < 2.1), CUDA
    # builds carried them in torch/lib: ask those copies what they are.
    bundled = []
    lib_names = sorted(_list_dir(os.path.join(dist.site_dir, "torch", "lib")))
    for kind, prefix in cuda_libs.LIBRARY_PREFIXES.items():
        for file_name in lib_names:
            if _is_soname(file_name, prefix):
                location = f"torch=={dist.version}"
                library = os.path.join(dist.site_dir, "torch", "lib", file_name)
                bundled.append(_Found(kind, None, "framework", location, library=library, what=location))
                break
    return build, bundled


def _tensorflow_build(dist: InstalledDist) -> m.FrameworkBuild:
    text = read_text(os.path.join(dist.site_dir, "tensorflow", "python", "platform", "build_info.py")) or ""
    info = parse_tensorflow_build_info(text)
    is_cuda = info.get("is_cuda_build") is True
    is_rocm = info.get("is_rocm_build") is True
    return m.FrameworkBuild(
        name=dist.normalized_name,
        version=dist.version,
        cuda=_clean_version(normalize_tensorflow_cuda(info.get("cuda_version"))) if is_cuda else None,
        cudnn=_clean_version(normalize_tensorflow_cuda(info.get("cudnn_version"))) if is_cuda else None,
        rocm=_clean_version(normalize_tensorflow_cuda(info.get("rocm_version"))) if is_rocm else None,
    )


def _jax_build(jaxlib: InstalledDist, by_name: dict) -> m.FrameworkBuild:
    cuda, cudnn = parse_jaxlib_local_label(jaxlib.version)
    if cuda is None:
        # jax >= 0.4.26: CUDA comes as a plugin wheel named for the CUDA major.
        for name in sorted(by_name):
            match = re.fullmatch(r"jax-cuda([0-9]+)-(?:plugin|pjrt)", name)
            if match:
                cuda = match.group(1)
                break
    return m.FrameworkBuild(name="jaxlib", version=jaxlib.version, cuda=cuda, cudnn=cudnn)
