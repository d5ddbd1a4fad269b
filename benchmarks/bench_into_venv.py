"""``envlock replay --into-venv`` against the venv a user makes by hand (issue 13).

    .venv/bin/python benchmarks/bench_into_venv.py [--envs small,scientific,reference] [--runs 3]
                                                   [--ca-cert FILE] [--no-pack]

The environments and their pinned locks are bench_replay.py's (the same venvs,
captured and pinned the same way).  Side by side, interleaved, per environment:

1. cold: ``envlock replay LOCK --into-venv DIR`` with an empty envlock cache
   (so uv's download cache is empty too) against ``python -m venv DIR`` +
   ``DIR/bin/pip install --no-cache-dir -r requirements.txt`` with the same
   ``name==version`` pins, the same index, CA bundle and local wheels;
2. warm: the same two again, each with the cache its first run filled
   (envlock's uv cache; pip's own cache directory);
3. from a pack (unless ``--no-pack``): ``envlock replay PACK --into-venv DIR``,
   cold, with the network the pack does not need left on.  The pack is made
   once, untimed.

Both sides compile ``.pyc`` files (pip does by default; envlock's uv runs
with ``--compile-bytecode``) and both use this host's Python, the
interpreter the locks were captured with.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_replay import CACHE, ENVIRONMENTS, ENVLOCK, LOCAL_WHEELS, env_lock, env_venv, load  # noqa: E402

INDEX = "https://pypi.org/simple"


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    # --into-venv exits 1 when the Python layer differs from the lock (here: nothing should).
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... exit {done.returncode}:\n{(done.stdout + done.stderr)[-1500:]}")
    return seconds


def envlock_into_venv(source: Path, target: Path, cache: Path, ca_cert: str, wheels: bool) -> float:
    argv = [ENVLOCK, "replay", str(source), "--into-venv", str(target), "-q", "--ca-cert", ca_cert]
    if wheels:
        argv += ["--find-links", LOCAL_WHEELS]
    return timed(argv, env={**os.environ, "ENVLOCK_CACHE_DIR": str(cache)})


def by_hand(requirements: Path, target: Path, pip_cache: Path | None, ca_cert: str, wheels: bool) -> float:
    """What a user runs: a venv, then pip on the pinned requirements (one timed figure for both)."""
    started = time.perf_counter()
    timed([sys.executable, "-m", "venv", str(target)])
    argv = [str(target / "bin/pip"), "install", "-q", "--isolated", "--disable-pip-version-check"]
    argv += ["--cert", ca_cert, "--index-url", INDEX, "-r", str(requirements)]
    argv += ["--no-cache-dir"] if pip_cache is None else ["--cache-dir", str(pip_cache)]
    if wheels:
        argv += ["--find-links", LOCAL_WHEELS]
    timed(argv)
    return time.perf_counter() - started


def make_pack(lock_path: Path, out: Path, ca_cert: str, wheels: bool) -> None:
    argv = [ENVLOCK, "pack", str(lock_path), "-o", str(out), "--ca-cert", ca_cert]
    if wheels:
        argv += ["--find-links", LOCAL_WHEELS]
    done = subprocess.run(argv, capture_output=True, text=True)
    if not out.is_file():
        raise SystemExit(f"envlock pack failed ({done.returncode}): {done.stderr[-1500:]}")


def bench_env(name: str, args, scratch: Path) -> dict:
    spec = ENVIRONMENTS[name]
    workdir = CACHE / f"replay-work-{name}"
    workdir.mkdir(parents=True, exist_ok=True)
    lock, lock_path = env_lock(env_venv(name), workdir)
    requirements = scratch / f"{name}-requirements.txt"
    requirements.write_text("".join(f"{p.name}=={p.version}\n" for p in lock.python.packages))
    pack = scratch / f"{name}.pack"
    if not args.no_pack:
        make_pack(lock_path, pack, args.ca_cert, spec["wheels"])
    print(f"[{name}] {len(lock.python.packages)} distributions; {load()}", flush=True)
    figures: dict[str, list[float]] = {
        k: [] for k in ("cold envlock", "cold hand", "warm envlock", "warm hand", "pack")
    }
    for run in range(args.runs):
        case = scratch / f"{name}-{run}"
        cache, pip_cache = case / "envlock-cache", case / "pip-cache"
        figures["cold envlock"].append(envlock_into_venv(lock_path, case / "a", cache, args.ca_cert, spec["wheels"]))
        figures["cold hand"].append(by_hand(requirements, case / "b", None, args.ca_cert, spec["wheels"]))
        by_hand(requirements, case / "c", pip_cache, args.ca_cert, spec["wheels"])  # fills pip's cache
        figures["warm envlock"].append(envlock_into_venv(lock_path, case / "d", cache, args.ca_cert, spec["wheels"]))
        figures["warm hand"].append(by_hand(requirements, case / "e", pip_cache, args.ca_cert, spec["wheels"]))
        if not args.no_pack:
            figures["pack"].append(envlock_into_venv(pack, case / "f", case / "pack-cache", args.ca_cert, False))
        print(
            "  " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in figures.items() if v) + f"; {load()}",
            flush=True,
        )
        shutil.rmtree(case)
    out: dict = {"env": name, "distributions": len(lock.python.packages)}
    for key, values in figures.items():
        if values:
            out[f"{key} s"] = [round(v, 2) for v in values]
    median = {k: statistics.median(v) for k, v in figures.items() if v}
    out["cold ratio"] = round(median["cold envlock"] / median["cold hand"], 2)
    out["warm ratio"] = round(median["warm envlock"] / median["warm hand"], 2)
    if "pack" in median:
        out["pack ratio (vs cold hand)"] = round(median["pack"] / median["cold hand"], 2)
    print(json.dumps(out), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="small,scientific,reference")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-pack", action="store_true", help="skip the replays from a pack (they need docker)")
    parser.add_argument("--ca-cert", default=os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envlock-bench-venv-") as scratch:
        results = [bench_env(name, args, Path(scratch)) for name in args.envs.split(",")]
    out = CACHE / "bench_into_venv.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"written {out}; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
