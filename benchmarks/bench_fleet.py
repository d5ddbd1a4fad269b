"""Fleet speed (issue 15): `envlock fleet capture` on a real Slurm cluster, and `envlock diff` of 1,000 node locks.

    .venv/bin/python benchmarks/bench_fleet.py [--runs 5]

1. `envlock fleet capture --slurm -o DIR -- -N3` on the three-node test cluster of
   scripts/slurm_test_cluster.sh (started here when ENVLOCK_TEST_SLURM_DIR is not set;
   needs root and Debian's slurm-wlm + munge), side by side with Slurm's own floor,
   `srun -N3 --ntasks-per-node=1 true`, and with what a person would run by hand,
   `srun -N3 --ntasks-per-node=1 envlock capture -o -`.  Reported: the overhead per
   node over the floor.  All three nodes share this machine's 2 cores, so three
   captures run side by side on them.
2. `envlock diff DIR` of 1,000 node locks (target ≤ 5 s): each a real capture of this
   machine, as a cluster's nodes would be, 950 identical and 50 outliers in a
   few groups (another driver, OMP_NUM_THREADS, an older torch, another GPU).

Figures are medians of interleaved runs after one warm-up; CPU time (user + system
of the children) beside wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENVLOCK = str(Path(sys.executable).with_name("envlock"))
WORK = ROOT / ".cache" / "benchfleet"
CPU: dict[str, list[float]] = {}


def wall(argv: list[str], name: str, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0, 1)) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in ok:
        raise SystemExit(f"{argv[:4]} failed ({result.returncode}): {result.stderr.decode()[-800:]}")
    CPU.setdefault(name, []).append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return elapsed


def interleaved(commands: dict[str, list[str]], runs: int, env: dict[str, str] | None = None) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for name, argv in commands.items():
        wall(argv, name + " (warm-up)", env)
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(wall(argv, name, env))
    return {name: statistics.median(values) for name, values in times.items()}


def cpu(name: str) -> float:
    return statistics.median(CPU[name])


def fleet_capture(runs: int) -> None:
    given = os.environ.get("ENVLOCK_TEST_SLURM_DIR")
    script = ROOT / "scripts" / "slurm_test_cluster.sh"
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="envlock-bench-slurm-"))
    if not given:
        subprocess.run(["bash", str(script), "start", str(directory), "3"], check=True)
    env = dict(os.environ, SLURM_CONF=str(directory / "etc" / "slurm.conf"))
    try:
        out = WORK / "fleet"
        times = interleaved(
            {
                "srun -N3 true (Slurm's floor)": ["srun", "-N3", "--ntasks-per-node=1", "true"],
                "srun -N3 envlock capture -o -": [
                    "srun",
                    "-N3",
                    "--ntasks-per-node=1",
                    ENVLOCK,
                    "capture",
                    "-o",
                    "-",
                ],
                "envlock fleet capture -N3": [ENVLOCK, "fleet", "capture", "--slurm", "-o", str(out), "--", "-N3"],
            },
            runs,
            env,
        )
    finally:
        if not given:
            subprocess.run(["bash", str(script), "stop", str(directory)], check=False)
            shutil.rmtree(directory, ignore_errors=True)
    floor = times["srun -N3 true (Slurm's floor)"]
    fleet = times["envlock fleet capture -N3"]
    by_hand = times["srun -N3 envlock capture -o -"]
    print("fleet capture on the three-node test cluster (one machine, 2 cores):   wall     CPU")
    for name, value in times.items():
        print(f"  {name:34} {value:6.3f} s {cpu(name):6.3f} s")
    print(f"  overhead over Slurm's floor: {(fleet - floor) / 3:.3f} s per node ({fleet - floor:.3f} s for 3 nodes)")
    print(f"  fleet capture / srun + envlock capture by hand: {fleet / by_hand:.2f}x")


def thousand_locks() -> Path:
    from envlock import records
    from envlock.capture.collect import capture_lock
    from envlock.lockfile import model as m
    from envlock.lockfile import with_fingerprint
    from envlock.lockfile.write import write_lock

    real = capture_lock()
    directory = WORK / "nodes"
    directory.mkdir(parents=True)
    gpu = m.Gpu(index=0, name="NVIDIA H100 80GB HBM3", compute_capability="9.0", memory_total_mib=81559)
    nvidia = m.NvidiaSection(
        driver_present=True, driver_version="570.133.20", cuda_driver_version="12.8", gpus=(gpu,) * 1
    )
    nvidia = records.replace(nvidia, gpus=tuple(records.replace(gpu, index=i) for i in range(8)))
    env = dict(real.runtime.env) if real.runtime else {}
    for i in range(1000):
        node_nvidia, node_env, python = nvidia, dict(env), real.python
        if i % 100 == 17:  # 10 nodes on an older driver
            node_nvidia = records.replace(nvidia, driver_version="550.54.15", cuda_driver_version="12.4")
        if i % 50 == 23:  # 20 nodes with a stray thread setting
            node_env["OMP_NUM_THREADS"] = "4"
        if i % 200 == 91 and python is not None and python.packages:  # 5 nodes with one package at another version
            first = python.packages[0]
            python = records.replace(
                python, packages=(records.replace(first, version=first.version + ".post1"), *python.packages[1:])
            )
        if i in (500, 501, 502):  # a node type of its own
            node_nvidia = records.replace(
                nvidia,
                gpus=tuple(
                    records.replace(g, name="NVIDIA A100-SXM4-80GB", compute_capability="8.0") for g in nvidia.gpus
                ),
            )
        lock = records.replace(
            real,
            nvidia=node_nvidia,
            python=python,
            runtime=records.replace(real.runtime or m.RuntimeSection(), env=node_env),
        )
        write_lock(with_fingerprint(lock), directory / f"gpu{i:04d}.lock")
    return directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-slurm", action="store_true", help="only the 1,000-lock diff")
    args = parser.parse_args()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    if not args.skip_slurm:
        fleet_capture(args.runs)
    nodes = thousand_locks()
    size = next(nodes.iterdir()).stat().st_size // 1024
    times = interleaved({"envlock diff DIR (1,000 locks)": [ENVLOCK, "diff", str(nodes)]}, max(3, args.runs // 2))
    value = times["envlock diff DIR (1,000 locks)"]
    print(f"1,000 node locks ({size} KiB each, a real capture of this machine):     wall     CPU")
    print(f"  envlock diff DIR (1,000 locks)     {value:6.3f} s {cpu('envlock diff DIR (1,000 locks)'):6.3f} s")
    print(f"  target ≤ 5.000 s: {'met' if value <= 5.0 else 'NOT met'}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
