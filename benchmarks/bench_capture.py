"""Capture speed, side by side with the tools a user would otherwise run (issue 2).

    .venv/bin/python benchmarks/bench_capture.py [--runs 7]

1. On the reference environment (benchmarks/setup_reference_env.sh: torch 2.13.0 CPU, numpy, scipy,
   pandas, scikit-learn, transformers), interleaved runs of
   `envlock capture --python REF`, `REF/bin/pip freeze` and `REF/bin/python -m torch.utils.collect_env`;
   medians and ratios (targets: ≤ 0.5× pip freeze, ≤ 0.1× collect_env).
2. Synthetic environments of 0 / 1,000 / 2,000 / 4,000 distributions (target: 2,000 in ≤ 0.5 s,
   linear growth).
3. `envlock --help` (target ≤ 0.15 s).

Every figure is wall time of a whole command (interpreter start included), as a user sees it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVLOCK = str(Path(sys.executable).with_name("envlock"))
CACHE = ROOT / ".cache" / "benchenvs"


def wall(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return elapsed


def interleaved(commands: dict[str, list[str]], runs: int, env: dict | None = None) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # one warm-up each: page cache, pyc files
        wall(argv, env)
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(wall(argv, env))
    return {name: statistics.median(values) for name, values in times.items()}


def make_synthetic_env(count: int) -> Path:
    """A venv whose site-packages holds ``count`` small, well-formed distributions."""
    dest = CACHE / f"synthetic-{count}"
    marker = dest / ".complete"
    if marker.exists():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    site = next((dest / "lib").glob("python3*/site-packages"))
    for i in range(count):
        name = f"synthpkg{i:05d}"
        version = f"{i % 7}.{i % 13}.{i % 5}"
        pkg = site / name
        pkg.mkdir()
        (pkg / "__init__.py").write_text(f"VALUE = {i}\n")
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: synthetic\n\nbody\n"
        )
        (info / "INSTALLER").write_text("pip\n")
        if i % 3 == 0:
            (info / "REQUESTED").write_text("")
        (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    marker.write_text("ok\n")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reference", default=str(CACHE / "reference"))
    args = parser.parse_args()
    out = Path("/tmp/envlock-bench.lock")
    # Measure what users run: byte-compiled modules (a shell may set PYTHONDONTWRITEBYTECODE).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "envlock")], check=True)
    lines = [
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; medians of {args.runs} interleaved runs after one warm-up",
        "",
    ]

    ref = Path(args.reference)
    if (ref / "bin" / "python").exists():
        ref_python = str(ref / "bin" / "python")
        count = subprocess.run(
            [ref_python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
        ).stdout.count("\n")
        medians = interleaved(
            {
                "envlock capture": [ENVLOCK, "capture", "-q", "--python", ref_python, "-o", str(out)],
                "pip freeze": [ref_python, "-m", "pip", "freeze"],
                "collect_env": [ref_python, "-m", "torch.utils.collect_env"],
            },
            args.runs,
        )
        ec, pf, ce = medians["envlock capture"], medians["pip freeze"], medians["collect_env"]
        lines += [
            f"reference environment: {count} distributions ({ref.name})",
            "",
            "| command | median wall (s) | envlock ratio |",
            "|---|---|---|",
            f"| envlock capture --python REF | {ec:.3f} | 1 |",
            f"| pip freeze | {pf:.3f} | {ec / pf:.2f}× (target ≤ 0.5×) |",
            f"| python -m torch.utils.collect_env | {ce:.3f} | {ec / ce:.3f}× (target ≤ 0.1×) |",
            "",
        ]
    else:
        lines += [f"reference environment missing at {ref}; run benchmarks/setup_reference_env.sh", ""]

    lines += ["| synthetic distributions | envlock capture median (s) | increment per 1,000 (s) |", "|---|---|---|"]
    previous = None
    for count in (0, 1000, 2000, 4000):
        env_dir = make_synthetic_env(count)
        median = interleaved(
            {"c": [ENVLOCK, "capture", "-q", "--python", str(env_dir / "bin" / "python"), "-o", str(out)]}, args.runs
        )["c"]
        increment = "" if previous is None else f"{(median - previous[1]) / ((count - previous[0]) / 1000):.3f}"
        lines.append(f"| {count:,} | {median:.3f} | {increment} |")
        previous = (count, median)
    lines.append("")
    help_median = interleaved({"h": [ENVLOCK, "--help"]}, args.runs)["h"]
    lines.append(f"`envlock --help`: {help_median:.3f} s median (target ≤ 0.15 s)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
