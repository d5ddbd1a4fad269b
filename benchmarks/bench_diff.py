"""Diff speed (issue 5): whole `envlock diff` commands, interpreter start included.

    .venv/bin/python benchmarks/bench_diff.py [--runs 7]

1. Two locks of 5,000 Python packages each (50 versions changed, 10 packages added, one
   same-version hash change), `envlock diff A B` (target ≤ 0.3 s), side by side with
   `diff` of the two equivalent `pip freeze` files, the comparison people make today.
2. 100 locks, each a real capture of this machine (its OS packages, CPU, runtime) with
   300 Python packages and a few outliers, `envlock diff` N-way (target ≤ 2 s).

Locks are written by envlock's own writer into .cache/benchdiff/ (rebuilt each run).
Figures are medians of interleaved runs after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from envlock import records

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENVLOCK = str(Path(sys.executable).with_name("envlock"))
WORK = ROOT / ".cache" / "benchdiff"


# CPU seconds (user + system) of each command, beside its wall time: on a shared,
# loaded machine wall time includes waiting for a core; for these single-threaded
# commands CPU time is what the wall time would be on an idle machine.
CPU: dict[str, list[float]] = {}


def wall(argv: list[str], ok: tuple[int, ...] = (0, 1), name: str | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in ok:
        raise SystemExit(f"{argv[:3]} failed ({result.returncode}): {result.stderr.decode()[-800:]}")
    if name is not None:
        CPU.setdefault(name, []).append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return elapsed


def interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():
        wall(argv)
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(wall(argv, name=name))
    return {name: statistics.median(values) for name, values in times.items()}


def cpu(name: str) -> float:
    return statistics.median(CPU[name])


def python_packages(count: int, changed: int = 0, added: int = 0, seed: int = 0):
    from envlock.lockfile import model as m

    pkgs = []
    for i in range(count):
        version = f"{1 + i % 7}.{i % 31}.{i % 5}"
        if i < changed:
            version += ".post1"
        pkgs.append(
            m.PythonPackage(
                name=f"package-{i:05d}", version=version, installer="pip", requested=i % 9 == 0, source="index"
            )
        )
    for j in range(added):
        pkgs.append(
            m.PythonPackage(name=f"extra-{seed}-{j}", version="0.1.0", installer="pip", requested=False, source="index")
        )
    return tuple(pkgs)


def two_big_locks() -> tuple[Path, Path, Path, Path, Path]:
    from envlock.lockfile import model as m
    from envlock.lockfile import with_fingerprint
    from envlock.lockfile.write import write_lock

    base = m.Lock(
        python=m.PythonSection(
            implementation="cpython", version="3.11.7", abi_tag="cp311", platform_tag="manylinux_2_36_x86_64"
        )
    )
    hashed = m.PythonPackage(
        name="rebuilt",
        version="1.0",
        source="url",
        url="https://example.org/rebuilt-1.0-py3-none-any.whl",
        archive_hash="sha256:" + "a" * 64,
    )
    a = records.replace(base, python=records.replace(base.python, packages=python_packages(5000) + (hashed,)))
    b = records.replace(
        base,
        python=records.replace(
            base.python,
            packages=python_packages(5000, changed=50, added=10)
            + (records.replace(hashed, archive_hash="sha256:" + "b" * 64),),
        ),
    )
    # The worst case for two locks: every one of A's packages at another version.
    every = records.replace(
        base, python=records.replace(base.python, packages=python_packages(5000, changed=5000) + (hashed,))
    )
    paths = []
    for name, lock in (("a", a), ("b", b)):
        path = WORK / f"big-{name}.lock"
        write_lock(with_fingerprint(lock), path)
        freeze = WORK / f"big-{name}.freeze.txt"
        freeze.write_text("".join(f"{p.name}=={p.version}\n" for p in lock.python.packages))
        paths.append(path)
        paths.append(freeze)
    every_path = WORK / "big-every-version-changed.lock"
    write_lock(with_fingerprint(every), every_path)
    return paths[0], paths[2], paths[1], paths[3], every_path


def hundred_locks() -> list[Path]:
    from envlock.capture.collect import capture_lock
    from envlock.lockfile import model as m
    from envlock.lockfile import with_fingerprint
    from envlock.lockfile.write import write_lock

    real = capture_lock()
    python = real.python or m.PythonSection()
    directory = WORK / "nodes"
    directory.mkdir()
    paths = []
    for i in range(100):
        packages = python_packages(300, changed=3 if i % 33 == 5 else 0)
        env = dict(real.runtime.env) if real.runtime else {}
        if i % 25 == 7:
            env["OMP_NUM_THREADS"] = "4"
        lock = records.replace(
            real,
            python=records.replace(python, packages=packages),
            runtime=records.replace(real.runtime or m.RuntimeSection(), env=env),
        )
        path = directory / f"node{i:03d}.lock"
        write_lock(with_fingerprint(lock), path)
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)

    lock_a, lock_b, freeze_a, freeze_b, lock_every = two_big_locks()
    size = lock_a.stat().st_size // 1024
    two = interleaved(
        {
            "envlock diff (5,000 pkgs)": [ENVLOCK, "diff", str(lock_a), str(lock_b)],
            "diff of pip freeze files": ["diff", str(freeze_a), str(freeze_b)],
            "every version changed": [ENVLOCK, "diff", str(lock_a), str(lock_every)],
        },
        args.runs,
    )
    nodes = hundred_locks()
    nway = interleaved({"envlock diff (100 locks)": [ENVLOCK, "diff", *map(str, nodes)]}, max(3, args.runs // 2))
    startup = interleaved({"envlock --version": [ENVLOCK, "--version"]}, args.runs)

    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"two locks of 5,000 Python packages ({size} KiB each):       wall    CPU")
    for name, value in two.items():
        print(f"  {name:28} {value:6.3f} s {cpu(name):6.3f} s")
    worst = max(two["envlock diff (5,000 pkgs)"], two["every version changed"])
    print(f"  target ≤ 0.300 s: {'met' if worst <= 0.3 else 'NOT met'} (both pairs)")
    per_lock = nodes[0].stat().st_size // 1024
    print(f"100 locks ({per_lock} KiB each: a real capture of this machine + 300 Python packages):")
    for name, value in nway.items():
        print(f"  {name:28} {value:6.3f} s {cpu(name):6.3f} s")
    print(f"  target ≤ 2.000 s: {'met' if nway['envlock diff (100 locks)'] <= 2.0 else 'NOT met'}")
    print(
        f"interpreter start + CLI import: {startup['envlock --version']:.3f} s wall, {cpu('envlock --version'):.3f} s CPU"
    )
    breakdown(lock_a, lock_b, nodes)
    return 0


def best(func, runs: int = 5, setup=None) -> float:
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def breakdown(lock_a: Path, lock_b: Path, nodes: list[Path]) -> None:
    """Where the time goes, in-process (best of 5): the shared loader versus the diff itself.

    The loader remembers the tables it has read and validated, so each load is
    timed as a command makes it: the first lock with nothing remembered, the
    second after the first.
    """
    from envlock.diff import diff
    from envlock.diff_nway import group_locks
    from envlock.lockfile.io import clear_memos, load_lock

    a, b = load_lock(lock_a).lock, load_lock(lock_b).lock
    print("in-process breakdown (best of 5):")
    print(f"  load_lock, one 5,000-package lock   {best(lambda: load_lock(lock_a), setup=clear_memos):6.3f} s")

    def first_lock() -> None:
        clear_memos()
        load_lock(lock_a)

    print(f"  load_lock, the second one after it  {best(lambda: load_lock(lock_b), setup=first_lock):6.3f} s")
    print(f"  diff(a, b), 5,000 packages          {best(lambda: diff(a, b)):6.3f} s")
    locks = [(str(p), load_lock(p).lock) for p in nodes]
    print(
        f"  load_lock x 100 node locks          {best(lambda: [load_lock(p) for p in nodes], 2, setup=clear_memos):6.3f} s"
    )
    print(f"  group_locks, 100 locks              {best(lambda: group_locks(locks)):6.3f} s")


if __name__ == "__main__":
    sys.exit(main())
