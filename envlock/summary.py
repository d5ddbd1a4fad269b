"""Readable summaries of a lock: one line, a layer-by-layer text, and a paper appendix."""

from __future__ import annotations

from envlock.lockfile import model as m

# envlock.report is imported where a table is drawn: capture prints only
# summary_line, and report's imports and patterns cost it 2-3 ms.

UNKNOWN = "unknown"


def _component(lock: m.Lock, name: str) -> str | None:
    if lock.cuda is None:
        return None
    found = [c for c in lock.cuda.components if c.name == name]
    if not found:
        return None
    return ", ".join(f"{c.version} ({c.source})" for c in found)


def _gpus(lock: m.Lock) -> str:
    if lock.nvidia is None:
        return UNKNOWN
    if not lock.nvidia.gpus:
        return "none"
    counts: dict[str, int] = {}
    for gpu in lock.nvidia.gpus:
        label = gpu.name + (f" (cc {gpu.compute_capability})" if gpu.compute_capability else "")
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{n}× {label}" for label, n in counts.items())


_STACK_NAMES = {"rocm": "ROCm", "cann": "CANN", "oneapi": "oneAPI", "mps": "MPS"}


def _accelerators(lock: m.Lock) -> str | None:
    """AMD/Intel GPUs and NPUs ([accelerators], issue 18) and their compute stack; None when not recorded."""
    acc = lock.accelerators
    if acc is None:
        return None
    counts: dict[str, int] = {}
    for device in acc.devices:
        label = device.name + (f" ({device.architecture})" if device.architecture else "")
        counts[label] = counts.get(label, 0) + 1
    text = ", ".join(f"{n}× {label}" for label, n in counts.items()) or "none listed"
    if acc.runtime or acc.runtime_version:
        stack = _STACK_NAMES.get(acc.runtime or "", acc.runtime or "runtime")
        text += f"; {stack} {acc.runtime_version}" if acc.runtime_version else f"; {stack} (version unknown)"
    return text


def _host(lock: m.Lock) -> str:
    """``driver ...; GPUs ...``, with other accelerators; an import that knows only those leaves NVIDIA out."""
    accelerators = _accelerators(lock)
    if accelerators is not None and lock.nvidia is None:
        return f"accelerators {accelerators}"
    text = f"driver {_driver(lock)}; GPUs {_gpus(lock)}"
    return text + (f"; accelerators {accelerators}" if accelerators is not None else "")


def _driver(lock: m.Lock) -> str:
    if lock.nvidia is None:
        return UNKNOWN
    if not lock.nvidia.driver_present:
        return "absent"
    text = lock.nvidia.driver_version or "present"
    if lock.nvidia.cuda_driver_version:
        text += f" (CUDA {lock.nvidia.cuda_driver_version})"
    return text


def layer_rows(lock: m.Lock) -> list[tuple[str, str]]:
    """(layer, summary) pairs, in the order a reader cares about."""
    rows: list[tuple[str, str]] = []
    py = lock.python
    if py is not None:
        kind = f", {py.environment_kind}" if py.environment_kind else ""
        rows.append(("Python", f"{py.implementation or ''} {py.version or UNKNOWN}{kind}".strip()))
        rows.append(("Python packages", str(len(py.packages))))
        frameworks = [p for p in py.packages if p.name in ("torch", "jax", "jaxlib", "tensorflow", "numpy", "scipy")]
        for pkg in frameworks:
            rows.append((f"  {pkg.name}", pkg.version))
    else:
        rows.append(("Python", UNKNOWN))
    if lock.conda is not None:
        rows.append(("conda packages", str(len(lock.conda.packages))))
    if lock.os is not None:
        o = lock.os
        name = o.name or " ".join(x for x in (o.id, o.version_id) if x) or UNKNOWN
        rows.append(("OS", f"{name}, kernel {o.kernel or UNKNOWN}, {o.architecture or ''}".rstrip(", ")))
        rows.append(("glibc / libstdc++", f"{o.glibc or UNKNOWN} / {o.libstdcxx or UNKNOWN}"))
        if o.package_manager:
            rows.append(("OS packages", f"{len(o.packages)} ({o.package_manager})"))
    else:
        rows.append(("OS", UNKNOWN))
    if lock.cuda is not None:
        for name in ("nvcc", "cudart", "cudnn", "cublas", "nccl"):
            value = _component(lock, name)
            if value:
                rows.append((f"CUDA {name}", value))
        for fw in lock.cuda.frameworks:
            built = ", ".join(
                x
                for x in (
                    f"CUDA {fw.cuda}" if fw.cuda else "",
                    f"cuDNN {fw.cudnn}" if fw.cudnn else "",
                    f"ROCm {fw.rocm}" if fw.rocm else "",
                )
                if x
            )
            rows.append((f"{fw.name} built with", built or "no CUDA"))
        if not lock.cuda.components and not lock.cuda.frameworks:
            rows.append(("CUDA", "none found"))
    else:
        rows.append(("CUDA", UNKNOWN))
    accelerators = _accelerators(lock)
    if lock.nvidia is not None or accelerators is None:
        rows.append(("NVIDIA driver", _driver(lock)))
        rows.append(("GPUs", _gpus(lock)))
    if accelerators is not None:
        rows.append(("accelerators", accelerators))
    if lock.cpu is not None:
        c = lock.cpu
        cores = f"{c.physical_cores or '?'} cores / {c.logical_cores or '?'} threads"
        arch = f", {c.microarchitecture}" if c.microarchitecture else ""
        rows.append(("CPU", f"{c.model_name or UNKNOWN}{arch}, {cores}"))
        if c.flags:
            rows.append(("CPU ISA", " ".join(c.flags)))
    else:
        rows.append(("CPU", UNKNOWN))
    if lock.runtime is not None:
        if lock.runtime.libraries:
            rows.append(
                ("BLAS/OpenMP", ", ".join(sorted({f"{lib.name} ({lib.package})" for lib in lock.runtime.libraries})))
            )
        if lock.runtime.env:
            rows.append(("numerics env", " ".join(f"{k}={v}" for k, v in lock.runtime.env.items())))
    if lock.project is not None and lock.project.commit:
        dirty = " (uncommitted changes)" if lock.project.dirty else ""
        rows.append(("git", f"{lock.project.commit[:12]}{dirty}"))
    return rows


def summary_line(lock: m.Lock) -> str:
    parts = []
    if lock.python is not None:
        parts.append(f"Python {lock.python.version} with {len(lock.python.packages)} packages")
    if lock.os is not None and lock.os.packages:
        parts.append(f"{len(lock.os.packages)} OS packages")
    if lock.cuda is not None and lock.cuda.components:
        parts.append(f"{len(lock.cuda.components)} CUDA components")
    parts.append(_host(lock))
    return "; ".join(parts)


def summary_text(lock: m.Lock) -> str:
    head = f"envlock lock {lock.lock_version}"
    if lock.created_at:
        head += f", captured {lock.created_at}"
    if lock.origin and lock.origin != "capture":
        head += f" ({lock.origin})"
    from envlock.report import safe, table

    out = [safe(head), "", table(("layer", "value"), layer_rows(lock), max_width=100)]
    if lock.capture_warnings:
        out.append("")
        out.append(f"{len(lock.capture_warnings)} capture warning(s):")
        out.extend(f"  - {safe(w)}" for w in lock.capture_warnings)
    return "\n".join(out)


def lock_lines(lock: m.Lock) -> list[str]:
    """One line per layer, in the shape every report's verdict has (``Python: 14 packages; interpreter 3.11.7``)."""
    lines = []
    py = lock.python
    if py is not None:
        lines.append(f"Python: {len(py.packages)} packages; interpreter {py.version or UNKNOWN}")
    if lock.conda is not None:
        lines.append(f"conda: {len(lock.conda.packages)} packages")
    if lock.os is not None:
        o = lock.os
        manual = sum(1 for p in o.packages if p.manual)
        release = " ".join(x for x in (o.id, o.version_id) if x) or UNKNOWN
        lines.append(f"OS: {len(o.packages)} packages ({manual} installed by hand); release {release}")
    if lock.cuda is not None:
        lines.append(f"CUDA: {len(lock.cuda.components)} components")
    if lock.runtime is not None:
        lines.append(f"runtime: {len(lock.runtime.env)} variables")
    absent = [
        name
        for name, section in (("Python", py), ("conda", lock.conda), ("OS", lock.os), ("CUDA", lock.cuda))
        if section is None
    ]
    if absent:
        lines.append(f"not in the lock: {', '.join(absent)}")
    lines.append(f"host: {_host(lock)}")
    return lines


def markdown_appendix(lock: m.Lock) -> str:
    """The 'Computational environment' appendix a paper can include: the verdict lines, then the table."""
    from envlock.report import markdown_table

    lines = ["## Computational environment", ""]
    lines += [f"**{md(summary_line(lock))}**", ""]
    lines += [f"- {md(line)}" for line in lock_lines(lock)] + [""]
    lines.append(markdown_table(("Component", "Version"), [(k.strip(), v) for k, v in layer_rows(lock)]))
    if lock.fingerprint:
        lines += ["", f"Captured with {md(lock.created_by or 'envlock')}; lock fingerprint `{lock.fingerprint}`."]
    return "\n".join(lines)


def md(text: str) -> str:
    from envlock.report import md_escape

    return md_escape(text)
