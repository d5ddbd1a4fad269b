"""Fat-binary scan throughput (issue 4), side by side with cuobjdump.

    .venv/bin/python benchmarks/bench_fatbin.py [--runs 5] [--site DIR]

Scans every shared library of a site-packages directory (default: the test
env with the real nvidia-cublas-cu12 and nvidia-cudnn-cu12 wheels,
tests/envs.py ``cuda_wheels_venv``) and reports GB/s of library bytes:

* cold: the libraries evicted from the page cache first (``posix_fadvise
  DONTNEED`` on those files only; nothing else on the machine is touched),
  no envlock cache;
* warm: page cache warm, no envlock cache (the reader's own cost);
* cached: served from envlock's cache by file identity (what a second
  capture of an unchanged environment pays);
* cuobjdump --list-elf --list-ptx over the same files (warm), when the wheel's
  binary is in .cache/envlock-tools (the fatbin tests download it);
* libcufft.so.12 of the CUDA 13 wheel (tests/envs.py ``cuda13_kernels_venv``;
  1 fat binary in .nv_fatbin, 23,984 in .ldata): envlock's section-guided read
  against a whole-file scan for the fat-binary magic in plain Python (``mmap.find``
  from hit to hit: the least a reader that ignores the sections must do), warm,
  interleaved (issue 16);
* whole `envlock capture --python` of that env (the default case only): with an
  empty envlock cache, then served from the cache, then with the kernel
  probe's cache disabled (ENVLOCK_NO_CACHE=1), as wall time of the command.

Figures are medians of in-process timings of the scan itself (no interpreter start).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envlock.capture import fatbin  # noqa: E402

CUOBJDUMP = ROOT / ".cache" / "envlock-tools" / "cuobjdump" / "nvidia" / "cu13" / "bin" / "cuobjdump"


def libraries_under(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*") if p.is_file() and fatbin.shared_library().search(p.name))


def evict(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--site", type=Path, help="site-packages to scan (default: the cuda-wheels test env)")
    args = parser.parse_args()
    site = args.site
    if site is None:
        from tests.envs import cuda_wheels_venv

        site = cuda_wheels_venv().site_packages
    libs = libraries_under(site)
    total = sum(p.stat().st_size for p in libs)
    with_kernels = [p for p in libs if fatbin.read_library_kernels(p).has_fatbin]
    print(f"{len(libs)} shared libraries, {total / 1e9:.2f} GB, {len(with_kernels)} with fat binaries ({site})")

    cold, warm, cached, cuobj = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        cache_path = Path(tmp) / "kernels.json"
        cache = fatbin.KernelCache(cache_path)
        fatbin.scan_libraries(libs, cache)
        cache.save()
        for _ in range(args.runs):
            evict(libs)
            cold.append(timed(lambda: fatbin.scan_libraries(libs)))
            warm.append(timed(lambda: fatbin.scan_libraries(libs)))
            cached.append(timed(lambda: fatbin.scan_libraries(libs, fatbin.KernelCache(cache_path))))
            if CUOBJDUMP.is_file():
                cuobj.append(
                    timed(
                        lambda: [
                            subprocess.run([str(CUOBJDUMP), "--list-elf", "--list-ptx", str(p)], capture_output=True)
                            for p in with_kernels
                        ]
                    )
                )

    def line(name: str, values: list[float]) -> str:
        median = statistics.median(values)
        return f"{name:<34} {median * 1000:9.1f} ms  {total / median / 1e9:8.1f} GB/s"

    print(f"median of {args.runs} runs")
    print(line("envlock, cold page cache", cold))
    print(line("envlock, warm page cache", warm))
    print(line("envlock, from its cache", cached))
    if cuobj:
        print(line("cuobjdump --list-elf --list-ptx", cuobj))
        print(f"cuobjdump / envlock (warm): {statistics.median(cuobj) / statistics.median(warm):.0f}x")
    if args.site is None:
        cufft_comparison(args.runs)
        capture_times(site, libs, args.runs)
    return 0


def whole_file_magic_scan(path: Path) -> int:
    """Every offset of the fat-binary magic in the file: what a reader blind to sections must at least do."""
    import mmap

    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        count, at = 0, data.find(fatbin._MAGIC_BYTES)
        while at >= 0:
            count += 1
            at = data.find(fatbin._MAGIC_BYTES, at + 4)
    return count


def cufft_comparison(runs: int) -> None:
    from tests.envs import cuda13_kernels_venv

    library = cuda13_kernels_venv().site_packages / "nvidia" / "cu13" / "lib" / "libcufft.so.12"
    size = library.stat().st_size
    found = fatbin.read_library_kernels(library)
    print(
        f"{library.name}: {size / 1e6:.0f} MB, {whole_file_magic_scan(library)} magics; envlock reads SASS "
        f"{' '.join(found.sass)}, PTX {' '.join(found.ptx)}"
    )
    guided, whole = [], []
    for _ in range(runs):  # interleaved, warm page cache
        guided.append(timed(lambda: fatbin.read_library_kernels(library)))
        whole.append(timed(lambda: whole_file_magic_scan(library)))
    g, w = statistics.median(guided), statistics.median(whole)
    print(f"  envlock, section-guided read       {g * 1000:7.1f} ms  {size / g / 1e9:5.2f} GB/s")
    print(
        f"  whole-file magic scan (mmap.find)  {w * 1000:7.1f} ms  {size / w / 1e9:5.2f} GB/s   ({w / g:.1f}x envlock)"
    )


def capture_times(site: Path, libs: list[Path], runs: int) -> None:
    python = site.parents[2] / "bin" / "python"
    envlock = str(Path(sys.executable).with_name("envlock"))
    first, cached, uncached, freeze = [], [], [], []
    quiet = {"stdout": subprocess.DEVNULL, "check": True}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "XDG_CACHE_HOME": tmp}
            argv = [envlock, "capture", "--python", str(python), "-o", os.path.join(tmp, "x.lock"), "-q"]
            run_capture = functools.partial(subprocess.run, argv, env=env, **quiet)
            first.append(timed(run_capture))
            cached.append(timed(run_capture))
            freeze.append(
                timed(functools.partial(subprocess.run, [str(python), "-m", "pip", "freeze"], env=env, **quiet))
            )
            uncached_env = {**env, "ENVLOCK_NO_CACHE": "1"}
            uncached.append(timed(functools.partial(subprocess.run, argv, env=uncached_env, **quiet)))
    print(f"envlock capture --python <that env>, median of {runs} (warm page cache), interleaved with pip freeze:")
    print(f"  first run (empty envlock cache)   {statistics.median(first):.3f} s")
    print(f"  second run (kernels from cache)   {statistics.median(cached):.3f} s")
    print(f"  ENVLOCK_NO_CACHE=1                {statistics.median(uncached):.3f} s")
    print(
        f"  pip freeze                        {statistics.median(freeze):.3f} s"
        f"   (second capture / pip freeze: {statistics.median(cached) / statistics.median(freeze):.2f})"
    )


if __name__ == "__main__":
    sys.exit(main())
