"""`envlock doctor` wall time on a reference lock (issue 4; target <= 0.3 s).

    .venv/bin/python benchmarks/bench_doctor.py [--runs 9]

Locks timed (each captured once by this script with `envlock capture --python`):

* reference: issue 2's reference environment (benchmarks/setup_reference_env.sh,
  about 60 distributions, torch 2.13.0 CPU), when it exists;
* cuda-wheels: the test env with the real cuBLAS/cuDNN/CUDA-runtime 12.x wheels
  (tests/envs.py), judged on a simulated H200 host (fake libnvidia-ml.so.1 from
  tests/fakes/nvml.py), so the driver, kernel and GPU rules all run.

Interleaved with `envlock show LOCK` (the same interpreter start and lockfile
load, no host capture) and `python -c pass`, medians of whole commands as a
user sees them.  Exit status 1 is doctor's "something blocks" and is accepted.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENVLOCK = str(Path(sys.executable).with_name("envlock"))
REFERENCE = ROOT / ".cache" / "benchenvs" / "reference"


CPU_TIMES: dict[str, list[float]] = {}


def wall(argv: list[str], env: dict) -> float:
    """Wall time of one command; its CPU time (user + sys) is kept in CPU_TIMES, which a loaded machine inflates less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        raise SystemExit(f"{argv} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    CPU_TIMES.setdefault(" ".join(argv[:2]), []).append(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    )
    return elapsed


def capture(python: Path, out: Path) -> Path:
    subprocess.run([ENVLOCK, "capture", "--python", str(python), "-o", str(out), "-q"], check=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    base_env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        cases: list[tuple[str, Path, dict]] = []
        if (REFERENCE / "bin" / "python").exists():
            cases.append(
                ("reference (this host)", capture(REFERENCE / "bin" / "python", tmpdir / "reference.lock"), base_env)
            )
        else:
            print(f"(no reference env at {REFERENCE}: run benchmarks/setup_reference_env.sh)")
        from tests.envs import cuda_wheels_venv
        from tests.fakes.nvml import H200, FakeHost, build_fake_nvml, fake_nvml_env

        venv = cuda_wheels_venv()
        lib_dir = build_fake_nvml(tmpdir / "fake-nvml")
        config = tmpdir / "h200.conf"
        config.write_text(FakeHost(driver_version="580.65.06", cuda_driver_version=13000, gpus=(H200,)).config_text())
        empty_root = tmpdir / "empty-root"
        empty_root.mkdir()
        fake_env = {**base_env, **fake_nvml_env(lib_dir, config, host_root=empty_root)}
        cases.append(("cuda-wheels (fake H200 host)", capture(venv.python, tmpdir / "cuda.lock"), fake_env))

        for name, lock, env in cases:
            commands = {
                "envlock doctor": [ENVLOCK, "doctor", str(lock)],
                "envlock show": [ENVLOCK, "show", str(lock)],
                "python -c pass": [sys.executable, "-c", "pass"],
            }
            times: dict[str, list[float]] = {k: [] for k in commands}
            for argv in commands.values():
                wall(argv, env)  # warm-up: page cache, pyc files
            CPU_TIMES.clear()
            for _ in range(args.runs):
                for key, argv in commands.items():
                    times[key].append(wall(argv, env))
            print(
                f"{name}: {lock.stat().st_size // 1024} KiB lock, median of {args.runs} (load average {os.getloadavg()[0]:.1f})"
            )
            for key, values in times.items():
                cpu = CPU_TIMES.pop(" ".join(commands[key][:2]), [])
                print(
                    f"  {key:<16} wall {statistics.median(values):.3f} s (min {min(values):.3f})"
                    f"   cpu {statistics.median(cpu):.3f} s"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
