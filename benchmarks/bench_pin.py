"""`envlock pin` time for the reference environment, side by side with pip doing the same job (issue 11).

    .venv/bin/python benchmarks/bench_pin.py [--runs 3]

The reference environment is benchmarks/setup_reference_env.sh's.  Its lock
is captured once; then, interleaved, whole commands:

- `envlock pin LOCK -o OUT` (PyPI: every distribution's exact file, URL,
  sha256, size, upload time; one concurrent batch of index requests);
- `pip install --dry-run --ignore-installed --no-deps --report R ...` of the
  same `name==version` pins: pip's own resolution of each pin to one file with
  its URL and hash, without installing (PEP 658 metadata, no wheel downloads);
- `pip download --no-deps --only-binary :all: -d DIR ...` of the same pins:
  what a user runs to hold the exact files (downloads them).

pip runs with --isolated (this machine's pip configuration adds file://
indexes) and --index-url https://pypi.org/simple, as pin does.  Packages with
a local version label (torch 2.13.0+cpu, from download.pytorch.org, which this
machine cannot reach) are left out of pip's lists; pin reports them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVLOCK = str(Path(sys.executable).with_name("envlock"))
REFERENCE = ROOT / ".cache" / "benchenvs" / "reference"
CA = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"


def wall(argv: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode not in ok:
        raise SystemExit(f"{argv[:3]} failed ({result.returncode}): {result.stderr.decode()[-800:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    python = REFERENCE / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} missing: run benchmarks/setup_reference_env.sh first")
    work = Path(tempfile.mkdtemp(prefix="bench-pin-"))
    lock = work / "reference.lock"
    subprocess.run([ENVLOCK, "capture", "--python", str(python), "-o", str(lock), "-q"], check=True)
    from envlock.lockfile import load_lock

    packages = load_lock(lock).lock.python.packages
    pins = [f"{p.name}=={p.version}" for p in packages if "+" not in p.version and p.source == "index"]
    pip = [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check"]
    index = ["--index-url", "https://pypi.org/simple"] + (["--cert", CA] if os.path.isfile(CA) else [])
    commands = {
        "envlock pin": ([ENVLOCK, "pin", str(lock), "-o", str(work / "pinned.lock")], (0, 1)),
        "pip install --dry-run --report (same pins)": (
            pip
            + ["install", "--dry-run", "--ignore-installed", "--no-deps", "--only-binary", ":all:"]
            + ["--report", str(work / "report.json"), "--python-version", "3.11"]
            + ["--target", str(work / "never-written")]
            + index
            + pins,
            (0,),
        ),
        "pip download --no-deps (same pins)": (
            pip
            + ["download", "--no-deps", "--only-binary", ":all:", "-d", str(work / "download")]
            + ["--python-version", "3.11", "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64"]
            + index
            + pins,
            (0,),
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, (argv, ok) in commands.items():
            shutil.rmtree(work / "download", ignore_errors=True)  # pip download must fetch again
            times[name].append(wall(argv, ok))
    pinned = load_lock(work / "pinned.lock").lock.python.packages
    print(
        f"reference env: {len(packages)} distributions; {sum(1 for p in pinned if p.file)} pinned by envlock pin; "
        f"{len(pins)} pins given to pip"
    )
    base = statistics.median(times["envlock pin"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"| `{name}` | {median:.2f} s | {median / base:.2f}× envlock pin | runs: {', '.join(f'{v:.2f}' for v in values)} |"
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
