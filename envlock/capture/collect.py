"""Run every probe and assemble one ``Lock``.

Each probe owns one layer and is called through ``_guarded`` so that a probe
that fails unexpectedly costs only its own layer (recorded as a capture
warning), never the capture.

The probes run one after the other in the main thread; only what waits for a
child process runs on a thread of its own (:mod:`envlock.capture.background`).
The host's layers (OS, CPU, NVIDIA) are read while the target interpreter
describes itself; the layers that need its answer follow.
"""

from __future__ import annotations

import time

from envlock import __version__, records
from envlock.capture.distributions import InstalledDist, scan_distributions
from envlock.capture.interpreter import InterpreterInfo, inspect_interpreter_in_background
from envlock.lockfile import codec, identity
from envlock.lockfile import model as m
from envlock.lockfile.private import strip_private
from envlock.records import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable
    from typing import Any

    from envlock.capture.background import Background


@record(frozen=False)
class CaptureContext:
    """What the probes share: the interpreter, its distributions, and the warnings they collect."""

    interpreter: InterpreterInfo
    dists: list[InstalledDist]
    include_private: bool = False
    project_dir: str = "."
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def _guarded(ctx: CaptureContext, layer: str, probe: Callable[[CaptureContext], Any]) -> Any:
    try:
        return probe(ctx)
    except Exception as exc:  # a bug in one probe must not lose the other layers
        import os

        if os.environ.get("ENVLOCK_DEBUG"):
            raise  # debugging: stop here, and let the interpreter show where the probe failed
        ctx.warn(f"{layer}: probe failed ({type(exc).__name__}: {exc}); layer recorded as unknown")
        return None


def _probe_python(ctx: CaptureContext) -> m.PythonSection:
    from envlock.capture.python_env import probe_python

    return probe_python(ctx)


def _probe_conda(ctx: CaptureContext) -> m.CondaSection | None:
    from envlock.capture.conda import probe_conda

    return probe_conda(ctx)


def _probe_os(ctx: CaptureContext) -> m.OsSection:
    from envlock.capture.os_info import probe_os

    return probe_os(ctx)


def _probe_cuda(ctx: CaptureContext, system_toolkits: Background | None = None) -> m.CudaSection:
    from envlock.capture.cuda import probe_cuda

    return probe_cuda(ctx, None if system_toolkits is None else system_toolkits.result())


def _probe_nvidia(ctx: CaptureContext) -> m.NvidiaSection:
    from envlock.capture.nvml import probe_nvidia

    return probe_nvidia(ctx)


def _probe_cpu(ctx: CaptureContext) -> m.CpuSection | None:
    from envlock.capture.cpu import probe_cpu

    return probe_cpu(ctx)


def _probe_runtime(ctx: CaptureContext) -> m.RuntimeSection:
    from envlock.capture.runtime import probe_runtime

    return probe_runtime(ctx)


def _probe_project(ctx: CaptureContext) -> m.ProjectSection | None:
    from envlock.capture.git import probe_project

    return probe_project(ctx)


LAYERS: dict[str, Callable[[CaptureContext], Any]] = {
    "python": _probe_python,
    "conda": _probe_conda,
    "os": _probe_os,
    "cuda": _probe_cuda,
    "nvidia": _probe_nvidia,
    "cpu": _probe_cpu,
    "runtime": _probe_runtime,
    "project": _probe_project,
}


def _probe_kernels(ctx: CaptureContext) -> dict:
    """SASS/PTX architectures embedded in each package's CUDA libraries (issue 4)."""
    from envlock.capture.fatbin import probe_package_kernels

    return probe_package_kernels(ctx)


def _attach_kernels(python: m.PythonSection, kernels: dict) -> m.PythonSection:
    packages = []
    libraries: list[m.CudaLibrary] = []
    for pkg in python.packages:
        found = kernels.get(pkg.name)
        if found:
            pkg = records.replace(pkg, cuda_sass=found.sass, cuda_ptx=found.ptx)
            libraries.extend(m.CudaLibrary(pkg.name, file, sass, ptx) for file, sass, ptx in found.libraries)
        packages.append(pkg)
    return records.replace(python, packages=tuple(packages), cuda_libraries=tuple(libraries))


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# Read from the host alone: run while the target interpreter describes itself.
HOST_LAYERS = ("os", "cpu", "nvidia")


def capture_lock(
    python: str | None = None,
    *,
    include_private: bool = False,
    project_dir: str = ".",
    layers: tuple[str, ...] | None = None,
    interpreter: InterpreterInfo | Background | None = None,
) -> m.Lock:
    """Capture this machine and the given (or running) interpreter's environment."""
    lock = _capture(python, include_private, project_dir, layers, interpreter)
    return identity.with_fingerprint(lock)


def capture_lock_data(
    python: str | None = None,
    *,
    include_private: bool = False,
    project_dir: str = ".",
    interpreter: InterpreterInfo | Background | None = None,
) -> tuple[m.Lock, dict[str, Any]]:
    """``capture_lock`` and the lock as plain data (``codec.to_dict``), for writing it.

    The fingerprint is computed from that data, so the lock is turned into
    data once rather than twice (once for the fingerprint, once for the file).
    """
    lock = _capture(python, include_private, project_dir, None, interpreter)
    data = codec.to_dict(lock)
    fingerprint = identity.fingerprint_of_data(data)
    # The fingerprint's place among the keys is the Lock field's, right after created_at.
    ordered: dict[str, Any] = {}
    for key, value in data.items():
        ordered[key] = value
        if key == "created-at":
            ordered["fingerprint"] = fingerprint
    return records.replace(lock, fingerprint=fingerprint), ordered


def _capture(
    python: str | None,
    include_private: bool,
    project_dir: str,
    layers: tuple[str, ...] | None,
    interpreter: InterpreterInfo | Background | None,
) -> m.Lock:
    """The captured lock, private fields stripped unless asked for, without its fingerprint.

    ``interpreter`` may be an answer still on its way
    (:func:`~envlock.capture.interpreter.inspect_interpreter_in_background`).
    The git probe and the system CUDA toolkits (``nvcc --version``) run on
    threads, since they wait for other programs; everything else runs here,
    host layers first, so that they overlap the interpreter's answer.
    Output does not depend on the order probes finish in.
    """
    if interpreter is None:
        interpreter = inspect_interpreter_in_background(python)
    wanted = [layer for layer in LAYERS if layers is None or layer in layers]
    # The interpreter is filled in below, once its background inspection answers; the host layers run first.
    ctx = CaptureContext(None, [], include_private=include_private, project_dir=project_dir)  # type: ignore[arg-type]
    sections: dict[str, Any] = {}
    git = toolkits = None
    if "project" in wanted:
        import envlock.capture.git  # noqa: F401 - imported here: on the thread every file it opened would wait for the GIL
        from envlock.capture.background import Background

        git = Background(_guarded, ctx, "project", _probe_project, name="envlock-git")
    if "cuda" in wanted:
        import os

        from envlock.capture.background import Background
        from envlock.capture.cuda import find_system_toolkits

        toolkits = Background(find_system_toolkits, dict(os.environ), name="envlock-cuda-toolkits")
    for layer in HOST_LAYERS:
        if layer in wanted:
            sections[layer] = _guarded(ctx, layer, LAYERS[layer])
    ctx.interpreter = interpreter if isinstance(interpreter, InterpreterInfo) else interpreter.result()
    ctx.dists = dists = scan_distributions(ctx.interpreter.site_dirs)
    for dist in dists:
        ctx.warnings.extend(dist.warnings)
    for layer in wanted:
        if layer == "cuda":
            sections[layer] = _guarded(ctx, layer, lambda ctx: _probe_cuda(ctx, toolkits))
        elif layer != "project" and layer not in HOST_LAYERS:
            sections[layer] = _guarded(ctx, layer, LAYERS[layer])
    if "python" in wanted:
        kernel_archs = _guarded(ctx, "kernels", _probe_kernels)
        if sections["python"] is not None and kernel_archs:
            sections["python"] = _attach_kernels(sections["python"], kernel_archs)
    if git is not None:
        sections["project"] = git.result()
    lock = m.Lock(
        created_by=f"envlock {__version__}",
        created_at=utc_now(),
        origin="capture",
        capture_warnings=tuple(sorted(set(_scrub_warning(w) for w in ctx.warnings))),
        **sections,
    )
    if not include_private:
        lock = strip_private(lock)
    return lock


def _scrub_warning(message: str) -> str:
    """Warnings name files; write the home directory as ``~`` and keep them to one line."""
    from envlock.capture.privacy import scrub_text

    return scrub_text(" ".join(message.split()))[:2000]


def replace_sections(lock: m.Lock, **sections: Any) -> m.Lock:
    return identity.with_fingerprint(records.replace(lock, **sections))
