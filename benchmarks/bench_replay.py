"""Replay build speed and image size, side by side with a hand-written Dockerfile (issue 3).

    .venv/bin/python benchmarks/bench_replay.py [--runs 2] [--ca-cert FILE]

Reference environment: a virtualenv with numpy, scipy, pandas and
scikit-learn (and their dependencies: 11 distributions, ~110 MB of wheels),
the part of issue 2's reference environment that builds here in about a
minute (torch 2.13.0's CPU wheel is machine-local on this host, so PyPI cannot
serve it, and transformers adds little but download time).  It is captured
with ``envlock capture --python``; the hand-installed OS packages are dropped
from the lock, so that both images contain the same thing: the same pins on
the same base.

Both builds use the same base image (this host has no registry: envlock's
own Debian-mirror base, ``envlock/python:3.11-debian-bookworm``), the same
builder (BuildKit through the docker CLI when there is one), host networking,
and the same CA bundle as a build secret.  The hand-written Dockerfile is what
a careful user writes: ``apt-get install jq`` (the one OS package the lock
keeps, when this host has it installed by hand), a venv, ``COPY
requirements.txt`` with the same ``name==version`` pins (pip's own included),
``pip install --no-cache-dir -r``.

Measured:

1. cold build (``--no-cache``), interleaved runs, medians, ratio replay/hand-written (target ≤ 1.0×);
2. rebuild with no change (target ≤ 3 s), and the whole ``envlock replay`` command warm
   (resolve + build + verify);
3. rebuild after changing one small package: time, and how many of the image's layers are
   shared with the previous image (base and OS layers must be);
4. final image size ratio replay/hand-written (target ≤ 1.05×).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from envlock import records

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / ".cache" / "benchenvs"
ENVLOCK = str(Path(sys.executable).with_name("envlock"))
REFERENCE = ("numpy==2.2.6", "scipy==1.15.3", "pandas==2.2.3", "scikit-learn==1.6.1")
# The package changed for (3): small, pure Python, a dependency of pandas.
# Each run moves it to a version no earlier run used (recorded in the work
# folder), so that its pip step is really rebuilt, not found in the build cache.
CHANGED = ("six", "1.16.0")
CHANGED_TO = ("1.17.0", "1.15.0", "1.14.0", "1.13.0", "1.12.0", "1.11.0", "1.10.0")
OS_PACKAGE = "jq"

HANDWRITTEN = """\
FROM {base}
{os_step}RUN ["python3", "-m", "venv", "/opt/venv"]
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca ["/opt/venv/bin/pip", "install", "--no-cache-dir", "--cert", "/run/secrets/ca", "--index-url", "https://pypi.org/simple", "-r", "/tmp/requirements.txt"]
ENV PATH="/opt/venv/bin:${{PATH}}"
"""


def reference_venv() -> Path:
    path = CACHE / "replay-reference"
    marker = path / ".envlock-bench.json"
    if marker.is_file() and json.loads(marker.read_text()) == list(REFERENCE):
        return path
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
    subprocess.run([str(path / "bin/python"), "-m", "pip", "install", "-q", *REFERENCE, "six==1.16.0"], check=True)
    marker.write_text(json.dumps(list(REFERENCE)))
    return path


def reference_lock(venv: Path, workdir: Path):
    from envlock.lockfile import identity, load_lock, write_lock

    captured = workdir / "captured.lock"
    subprocess.run(
        [ENVLOCK, "capture", "--python", str(venv / "bin/python"), "-o", str(captured), "-q"], check=True, cwd=workdir
    )
    lock = load_lock(captured).lock
    if lock.os is not None:
        # One small hand-installed OS package (when this host has it), so that
        # the images have an OS layer whose reuse can be checked in (3).
        keep = tuple(p for p in lock.os.packages if not p.manual or p.name == OS_PACKAGE)
        lock = records.replace(lock, os=records.replace(lock.os, packages=keep))
    path = workdir / "envlock.lock"
    write_lock(identity.with_fingerprint(lock), path, "benchmarks/bench_replay.py")
    return lock, path


def replay_context(lock, ca_cert: str, engine, progress):
    from envlock.replay.orchestrate import ReplayRequest, plan_with_base, render, resolve_pins

    request = ReplayRequest(ca_cert=ca_cert)
    choice = engine.choose_builder("auto")
    pins = resolve_pins(lock, request, progress)
    plan, notes, _ = plan_with_base(lock, request, pins, choice.builder, engine, progress)
    dockerfile, files, secret_ids = render(plan)
    return plan, files, choice, notes


def handwritten_context(lock, base: str):
    """The same pins (pip's own included), and the same OS package, the way a user writes it."""
    from envlock.replay.context import ContextFile

    pins = "".join(f"{p.name}=={p.version}\n" for p in lock.python.packages)
    os_step = ""
    if lock.os is not None and any(p.manual and p.name == OS_PACKAGE for p in lock.os.packages):
        os_step = (
            f'RUN ["/bin/sh", "-c", "apt-get update && apt-get install -y --no-install-recommends {OS_PACKAGE}'
            ' && rm -rf /var/lib/apt/lists/*"]\n'
        )
    dockerfile = HANDWRITTEN.format(base=base, os_step=os_step)
    return (ContextFile("Dockerfile", dockerfile.encode()), ContextFile("requirements.txt", pins.encode()))


def build(engine, choice, files, tag, ca_cert, no_cache, secret_id):
    from envlock.replay.engine import BuildRequest
    from envlock.replay.progress import Progress

    progress = Progress()
    secrets = {secret_id: ca_cert} if choice.builder == "buildkit" else {}
    result = engine.build(
        BuildRequest(files=files, tag=tag, network="host", secrets=secrets, no_cache=no_cache), choice, progress
    )
    return result


def _step_times(log) -> list[tuple[str, float]]:
    """(step title, seconds) from BuildKit's plain output, for steps over a second."""
    import re

    titles: dict[str, str] = {}
    out = []
    for line in log:
        found = re.match(r"(#\d+) (\[.*)", line)
        if found:
            titles[found.group(1)] = found.group(2)
            continue
        done = re.fullmatch(r"(#\d+) DONE ([0-9.]+)s", line.strip())
        if done and float(done.group(2)) >= 1.0:
            out.append((titles.get(done.group(1), "exporting")[:70], float(done.group(2))))
    return out


def _steps_cached(log) -> list[str]:
    """The BuildKit step titles that were answered from the cache."""
    import re

    titles: dict[str, str] = {}
    out = []
    for line in log:
        found = re.match(r"(#\d+) (\[.*)", line)
        if found:
            titles[found.group(1)] = found.group(2)
        elif re.fullmatch(r"#\d+ CACHED", line.strip()):
            out.append(titles.get(line.split()[0], ""))
    return out


def layers(engine, image: str) -> list[str]:
    return list(engine.api.inspect_image(image)["RootFS"]["Layers"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold builds of each kind (interleaved)")
    parser.add_argument("--ca-cert", default=os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    args = parser.parse_args()

    from envlock.replay import plan as plan_module
    from envlock.replay.engine import DockerEngine
    from envlock.replay.progress import Progress

    engine = DockerEngine()
    engine.ping()
    workdir = CACHE / "replay-work"
    workdir.mkdir(parents=True, exist_ok=True)
    venv = reference_venv()
    lock, lock_path = reference_lock(venv, workdir)
    progress = Progress()
    plan, files, choice, notes = replay_context(lock, args.ca_cert, engine, progress)
    base = plan.from_ref
    hand = handwritten_context(lock, base)
    has_os = bool(plan.os_packages)
    print(
        f"reference: {len(lock.python.packages)} distributions, OS packages {[o.arg() for o in plan.os_packages]}; base {base}; builder {choice.builder}"
    )
    for note in notes:
        print(f"  note: {note}")

    # 1. cold builds, interleaved
    cold: dict[str, list[float]] = {"replay": [], "hand-written": []}
    last = {}
    for _ in range(args.runs):
        last["replay"] = build(
            engine, choice, files, "envlock-bench/replay:cold", args.ca_cert, True, plan_module.CA_SECRET_ID
        )
        last["hand-written"] = build(engine, choice, hand, "envlock-bench/hand:cold", args.ca_cert, True, "ca")
        for name, result in last.items():
            cold[name].append(round(result.seconds, 1))
    med = {k: statistics.median(v) for k, v in cold.items()}
    print(
        f"cold build: replay {med['replay']:.1f} s, hand-written {med['hand-written']:.1f} s, ratio {med['replay'] / med['hand-written']:.2f}x  (runs: {cold})"
    )
    for name, result in last.items():
        print(
            f"  last {name} build, steps over 1 s: "
            + "; ".join(f"{title} {sec:.1f}s" for title, sec in _step_times(result.log))
        )

    # 2. no-change rebuild: the build, and the whole command
    warm = [
        build(engine, choice, files, "envlock-bench/replay:cold", args.ca_cert, False, plan_module.CA_SECRET_ID).seconds
        for _ in range(3)
    ]
    print(
        f"no-change rebuild (build step): median {statistics.median(warm):.2f} s  (runs: {[round(w, 2) for w in warm]})"
    )
    start = time.perf_counter()
    command = subprocess.run(
        [
            ENVLOCK,
            "replay",
            str(lock_path),
            "-q",
            "--json",
            "-t",
            "envlock-bench/replay:cold",
            "--ca-cert",
            args.ca_cert,
        ],
        capture_output=True,
        text=True,
    )
    whole = time.perf_counter() - start
    report = json.loads(command.stdout) if command.stdout.strip() else {}
    print(
        f"no-change `envlock replay` (resolve + build + verify): {whole:.1f} s, exit {command.returncode}, build {report.get('build_seconds')} s"
    )

    # 3. one small package changed, against a warm build of the unchanged lock
    build(engine, choice, files, "envlock-bench/replay:warm", args.ca_cert, False, plan_module.CA_SECRET_ID)
    before = layers(engine, "envlock-bench/replay:warm")
    used_file = workdir / "changed-versions.json"
    used = json.loads(used_file.read_text()) if used_file.is_file() else []
    new_version = next((v for v in CHANGED_TO if v not in used), CHANGED_TO[0])
    used_file.write_text(json.dumps(sorted(set(used) | {new_version})))
    changed_lock = records.replace(
        lock,
        python=records.replace(
            lock.python,
            packages=tuple(
                records.replace(p, version=new_version) if p.name.lower() == CHANGED[0] else p
                for p in lock.python.packages
            ),
        ),
    )
    plan2, files2, _, _ = replay_context(changed_lock, args.ca_cert, engine, progress)
    result = build(
        engine, choice, files2, "envlock-bench/replay:changed", args.ca_cert, False, plan_module.CA_SECRET_ID
    )
    after = layers(engine, "envlock-bench/replay:changed")
    base_layers = layers(engine, base)
    shared = 0
    for a, b in zip(before, after, strict=False):
        if a != b:
            break
        shared += 1
    cached_steps = _steps_cached(result.log)
    os_cached = any("os_packages.py" in title for title in cached_steps)
    print(
        f"rebuild after {CHANGED[0]} {CHANGED[1]} -> {new_version}: {result.seconds:.1f} s; {shared} of {len(after)} layers shared with the "
        f"unchanged image (base image has {len(base_layers)}; base reused: {after[: len(base_layers)] == base_layers}"
        + (
            f"; OS step CACHED: {os_cached}, OS layer reused: {os_cached and shared > len(base_layers)}"
            if has_os
            else "; no OS layer in this lock"
        )
        + f"); steps CACHED: {len(cached_steps)}"
    )
    if any("pip" in title and "install" in title for title in _steps_cached(result.log)):
        print("  note: this change was built before on this machine, so its pip step came from the build cache too")

    # 4. image size
    size_replay = engine.image("envlock-bench/replay:cold").size
    size_hand = engine.image("envlock-bench/hand:cold").size
    print(
        f"image size: replay {size_replay / 1e6:.1f} MB, hand-written {size_hand / 1e6:.1f} MB, ratio {size_replay / size_hand:.3f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
