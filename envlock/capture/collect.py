"""Run every probe and assemble one ``Lock``.

Each probe owns one layer and is called through ``_guarded`` so that a probe
that fails unexpectedly costs only its own layer (recorded as a capture
warning), never the capture.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

from envlock import __version__, records
from envlock.capture.distributions import InstalledDist, scan_distributions
from envlock.capture.interpreter import InterpreterInfo, inspect_interpreter
from envlock.lockfile import codec
from envlock.lockfile import model as m
from envlock.records import field, record


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
            traceback.print_exc()
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


def _probe_cuda(ctx: CaptureContext) -> m.CudaSection:
    from envlock.capture.cuda import probe_cuda

    return probe_cuda(ctx)


def _probe_nvidia(ctx: CaptureContext) -> m.NvidiaSection:
    from envlock.capture.nvml import probe_nvidia

    return probe_nvidia(ctx)


def _probe_cpu(ctx: CaptureContext) -> m.CpuSection:
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


def run_in_threads(ctx: CaptureContext, tasks: dict[str, Callable[[CaptureContext], Any]]) -> dict[str, Any]:
    """Run each guarded probe in its own thread and collect the results by name.

    Plain threads rather than concurrent.futures, whose import (with logging)
    costs 10 ms of every capture's start-up.
    """
    results: dict[str, Any] = {}

    def work(name: str, probe: Callable[[CaptureContext], Any]) -> None:
        results[name] = _guarded(ctx, name, probe)

    threads = [threading.Thread(target=work, args=item, name=f"envlock-{item[0]}") for item in tasks.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {name: results.get(name) for name in tasks}


def _probe_kernels(ctx: CaptureContext) -> dict:
    """SASS/PTX architectures embedded in each package's CUDA libraries (issue 4)."""
    from envlock.capture.fatbin import probe_package_kernels

    return probe_package_kernels(ctx)


def _attach_kernels(python: m.PythonSection, kernels: dict) -> m.PythonSection:
    packages = []
    for pkg in python.packages:
        found = kernels.get(pkg.name)
        if found:
            sass, ptx = found
            pkg = records.replace(pkg, cuda_sass=tuple(sass), cuda_ptx=tuple(ptx))
        packages.append(pkg)
    return records.replace(python, packages=tuple(packages))


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def capture_lock(
    python: str | None = None,
    *,
    include_private: bool = False,
    project_dir: str = ".",
    layers: tuple[str, ...] | None = None,
    interpreter: InterpreterInfo | None = None,
) -> m.Lock:
    """Capture this machine and the given (or running) interpreter's environment.

    The probes run on a small thread pool: several wait on other programs
    (``nvcc --version``, git, the target interpreter, the CUDA version child)
    and those waits overlap; the pure-Python parts still take turns on the GIL.
    Output does not depend on the order probes finish in.
    """
    if interpreter is None:
        interpreter = inspect_interpreter(python)
    dists = scan_distributions(interpreter.site_dirs)
    ctx = CaptureContext(interpreter, dists, include_private=include_private, project_dir=project_dir)
    for dist in dists:
        ctx.warnings.extend(dist.warnings)
    wanted = [layer for layer in LAYERS if layers is None or layer in layers]
    want_kernels = "python" in wanted
    tasks = {layer: LAYERS[layer] for layer in wanted}
    if want_kernels:
        tasks["kernels"] = _probe_kernels
    results = run_in_threads(ctx, tasks)
    kernel_archs = results.pop("kernels", None)
    sections = results
    if sections.get("python") is not None and kernel_archs:
        sections["python"] = _attach_kernels(sections["python"], kernel_archs)
    lock = m.Lock(
        created_by=f"envlock {__version__}",
        created_at=utc_now(),
        origin="capture",
        capture_warnings=tuple(sorted(set(_scrub_warning(w) for w in ctx.warnings))),
        **sections,
    )
    if not include_private:
        lock = codec.strip_private(lock)
    return codec.with_fingerprint(lock)


def _scrub_warning(message: str) -> str:
    """Warnings name files; write the home directory as ``~`` and keep them to one line."""
    from envlock.capture.privacy import scrub_text

    return scrub_text(" ".join(message.split()))[:2000]


def replace_sections(lock: m.Lock, **sections: Any) -> m.Lock:
    return codec.with_fingerprint(records.replace(lock, **sections))
