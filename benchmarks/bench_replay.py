"""Replay build speed and image size, side by side with the Dockerfile a user writes by hand (issues 3, 13).

    .venv/bin/python benchmarks/bench_replay.py [--envs small,scientific,reference] [--runs 1]
                                                [--ca-cert FILE] [--pip]

Three environments, each a virtualenv captured with ``envlock capture
--python`` (the host's OS packages are dropped from the lock, so that both
images hold the same thing: the same pins on the same base):

* ``small``: requests, PyYAML, six and their dependencies (pure Python but one);
* ``scientific``: numpy, scipy, pandas, scikit-learn, matplotlib and their
  dependencies (about 20 distributions, ~150 MB of wheels);
* ``reference``: benchmarks/setup_reference_env.sh's environment without
  what PyPI cannot serve (torch 2.13.0's CPU wheel is machine-local on this
  host: it is given to both builds as a local directory of wheels, the way a
  pack replays) — torch CPU, transformers, numpy, scipy, pandas, scikit-learn.

Both builds use the same base image (this host has no registry: envlock's
own Debian-mirror base, ``envlock/python:3.11-debian-bookworm``), the same
builder (BuildKit through the docker CLI), host networking and the same CA
bundle as a build secret.  The hand-written Dockerfile is what a careful user
writes: a venv, ``COPY requirements.txt`` with the same ``name==version``
pins, ``pip install --no-cache-dir -r`` (with ``--find-links`` to the same
wheels, bind-mounted, where the environment has local ones).

Measured, per environment:

1. cold build of each (``--no-cache``; replay's uv download cache is a fresh,
   empty cache mount: ``--no-cache`` does not empty cache mounts), interleaved;
   ratio replay/hand-written (goal ≤ 0.5×, never > 1.0×);
2. the whole ``envlock replay`` command again with no change (goal ≤ 3 s);
3. one small package changed: rebuild time and which steps came from the cache;
4. image sizes (goal ≤ 1.0×), and how long ``python -c 'import ...'`` takes in a
   fresh container of each (the .pyc decision);
5. where replay's cold time goes (BuildKit's per-step times).

The images are removed at the end (``--keep-images`` keeps them).  Each cold
build leaves a uv cache mount of its own (up to 1 GB for the reference
environment) that only ``docker builder prune --filter type=exec.cachemount``
frees: run it after a benchmark, on a machine whose other cache mounts may go.

``--pip`` adds a cold build of the replay Dockerfile with pip as installer
(the pre-issue-13 renderer) for the before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envlock import records  # noqa: E402

CACHE = ROOT / ".cache" / "benchenvs"
ENVLOCK = str(Path(sys.executable).with_name("envlock"))
LOCAL_WHEELS = "/opt/wheels"  # this host's machine-local torch CPU wheel
ENVIRONMENTS = {
    "small": {
        "packages": ("requests==2.32.3", "PyYAML==6.0.2", "six==1.16.0"),
        "imports": "import requests, yaml, six",
        "change": ("six", "1.17.0"),
        "wheels": False,
    },
    "scientific": {
        "packages": (
            "numpy==2.2.6",
            "scipy==1.15.3",
            "pandas==2.2.3",
            "scikit-learn==1.6.1",
            "matplotlib==3.10.3",
            "six==1.16.0",
        ),
        "imports": "import numpy, scipy.linalg, pandas, sklearn.linear_model, matplotlib.pyplot",
        "change": ("six", "1.17.0"),
        "wheels": False,
    },
    "reference": {
        "packages": (
            "torch==2.13.0",
            "numpy==2.2.6",
            "scipy==1.15.3",
            "pandas==2.2.3",
            "scikit-learn==1.6.1",
            "transformers==4.57.1",
            "six==1.16.0",
        ),
        "imports": "import torch, transformers, pandas, sklearn.linear_model",
        "change": ("six", "1.17.0"),
        "wheels": True,
    },
}

HANDWRITTEN = """\
FROM {base}
RUN ["python3", "-m", "venv", "/opt/venv"]
COPY requirements.txt /tmp/requirements.txt
RUN {wheels}--mount=type=secret,id=ca ["/opt/venv/bin/pip", "install", "--no-cache-dir", "--cert", "/run/secrets/ca", "--index-url", "https://pypi.org/simple", {find_links}"-r", "/tmp/requirements.txt"]
ENV PATH="/opt/venv/bin:${{PATH}}"
"""


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def env_venv(name: str) -> Path:
    spec = ENVIRONMENTS[name]
    path = CACHE / f"replay-{name}"
    marker = path / ".envlock-bench.json"
    if marker.is_file() and json.loads(marker.read_text()) == list(spec["packages"]):
        return path
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
    subprocess.run([str(path / "bin/python"), "-m", "pip", "install", "-q", *spec["packages"]], check=True)
    marker.write_text(json.dumps(list(spec["packages"])))
    return path


def env_lock(venv: Path, workdir: Path):
    from envlock.lockfile import identity, load_lock, write_lock

    captured = workdir / "captured.lock"
    subprocess.run(
        [ENVLOCK, "capture", "--python", str(venv / "bin/python"), "-o", str(captured), "-q"], check=True, cwd=workdir
    )
    lock = load_lock(captured).lock
    if lock.os is not None:  # the same OS in both images: the base's
        lock = records.replace(lock, os=records.replace(lock.os, packages=()))
    lock = records.replace(lock, cuda=None, nvidia=None)
    path = workdir / "envlock.lock"
    write_lock(identity.with_fingerprint(lock), path, "benchmarks/bench_replay.py")
    # Pinned, as `capture --pin` leaves a lock for months later: replay then installs the recorded files
    # without asking the index again.  A machine-local wheel (torch's CPU build) has no index file to pin
    # (exit 1, named) and is found again through --find-links.
    pinned = subprocess.run([ENVLOCK, "pin", str(path)], cwd=workdir, capture_output=True, text=True)
    if pinned.returncode not in (0, 1):
        raise SystemExit(f"envlock pin failed: {pinned.stderr[-500:]}")
    return load_lock(path).lock, path


def replay_request(ca_cert: str, wheels: bool, installer: str = "auto"):
    from envlock.replay.orchestrate import ReplayRequest

    return ReplayRequest(ca_cert=ca_cert, find_links=(LOCAL_WHEELS,) if wheels else (), installer=installer)


def replay_context(lock, request, engine, progress):
    from envlock.replay.orchestrate import plan_with_base, render, resolve_pins

    choice = engine.choose_builder("auto")
    started = time.perf_counter()
    pins = resolve_pins(lock, request, progress)
    plan, notes, _ = plan_with_base(lock, request, pins, choice.builder, engine, progress)
    dockerfile, files, secret_ids = render(plan)
    return plan, files, choice, time.perf_counter() - started


def fresh_uv_cache(files, tag: str):
    """The same context with its uv cache mount renamed: BuildKit's --no-cache keeps cache mounts."""
    from envlock.replay.context import ContextFile
    from envlock.replay.render import UV_CACHE_ID

    out = []
    for item in files:
        if item.path == "Dockerfile":
            text = item.data.decode().replace(f"id={UV_CACHE_ID},", f"id={UV_CACHE_ID}-bench-{tag},")
            item = ContextFile("Dockerfile", text.encode())
        out.append(item)
    return tuple(out)


def handwritten_context(lock, base: str, wheels: bool, workdir: Path):
    """The same pins (pip's own included), the way a user writes them."""
    from envlock.replay.context import ContextFile

    pins = "".join(f"{p.name}=={p.version}\n" for p in lock.python.packages)
    files = [ContextFile("requirements.txt", pins.encode())]
    copy, links = "", ""
    if wheels:
        copy = "--mount=type=bind,source=wheels,target=/tmp/wheels "  # kept out of the image, as replay does
        links = '"--find-links", "/tmp/wheels", '
        for path in sorted(Path(LOCAL_WHEELS).glob("*.whl")):
            files.append(ContextFile(f"wheels/{path.name}", source=str(path)))
    dockerfile = HANDWRITTEN.format(base=base, wheels=copy, find_links=links)
    return (ContextFile("Dockerfile", dockerfile.encode()), *files)


def build(engine, choice, files, tag, ca_cert, no_cache, secret_id):
    from envlock.replay.engine import BuildRequest
    from envlock.replay.progress import Progress

    progress = Progress()
    secrets = {secret_id: ca_cert} if choice.builder == "buildkit" else {}
    return engine.build(
        BuildRequest(files=files, tag=tag, network="host", secrets=secrets, no_cache=no_cache), choice, progress
    )


def step_times(log) -> list[tuple[str, float]]:
    """(step title, seconds) from BuildKit's plain output, for steps over 0.3 s."""
    titles: dict[str, str] = {}
    out = []
    for line in log:
        found = re.match(r"(#\d+) (\[.*|exporting.*|transferring.*|load.*)", line)
        if found:
            titles[found.group(1)] = found.group(2)
            continue
        done = re.fullmatch(r"(#\d+) DONE ([0-9.]+)s", line.strip())
        if done and float(done.group(2)) >= 0.3:
            title = titles.get(done.group(1), "?")
            title = re.sub(r"--mount=\S+ ", "", title)
            out.append((title[:60], float(done.group(2))))
    return out


def steps_cached(log) -> list[str]:
    titles: dict[str, str] = {}
    out = []
    for line in log:
        found = re.match(r"(#\d+) (\[.*)", line)
        if found:
            titles[found.group(1)] = found.group(2)
        elif re.fullmatch(r"#\d+ CACHED", line.strip()):
            out.append(titles.get(line.split()[0], ""))
    return out


def import_seconds(images: tuple[str, str], statement: str, runs: int = 4) -> list[float]:
    """Median seconds of ``statement`` inside a fresh container of each image, runs alternating.

    Timed inside Python (container start excluded), so the page cache and the
    machine's load fall on both images alike.
    """
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times: list[list[float]] = [[], []]
    for _ in range(runs):
        for index, image in enumerate(images):
            done = subprocess.run(
                ["docker", "run", "--rm", "--network=none", image, "python", "-c", code],
                check=True,
                capture_output=True,
                text=True,
            )
            times[index].append(float(done.stdout.strip().splitlines()[-1]))
    return [statistics.median(t) for t in times]


def whole_command(lock_path: Path, tag: str, ca_cert: str, wheels: bool) -> tuple[float, dict]:
    argv = [ENVLOCK, "replay", str(lock_path), "-q", "--json", "-t", tag, "--ca-cert", ca_cert]
    if wheels:
        argv += ["--find-links", LOCAL_WHEELS]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    report = json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr[-500:]}
    report["returncode"] = done.returncode
    return seconds, report


def bench_env(name: str, args, engine) -> dict:
    from envlock.replay import plan as plan_module
    from envlock.replay.progress import Progress

    spec = ENVIRONMENTS[name]
    workdir = CACHE / f"replay-work-{name}"
    workdir.mkdir(parents=True, exist_ok=True)
    lock, lock_path = env_lock(env_venv(name), workdir)
    progress = Progress()
    request = replay_request(args.ca_cert, spec["wheels"])
    plan, files, choice, plan_seconds = replay_context(lock, request, engine, progress)
    if plan.uv is None:
        raise SystemExit(f"{name}: replay did not choose uv")
    hand = handwritten_context(lock, plan.from_ref, spec["wheels"], workdir)
    wheel_mb = sum(p.stat().st_size for p in Path(LOCAL_WHEELS).glob("*.whl")) / 1e6 if spec["wheels"] else 0.0
    out: dict = {
        "env": name,
        "distributions": len(lock.python.packages),
        "base": plan.from_ref,
        "builder": choice.builder,
        "resolve+plan s": round(plan_seconds, 2),
        "local wheels MB": round(wheel_mb, 1),
    }
    print(
        f"[{name}] {out['distributions']} distributions, base {plan.from_ref}, {choice.builder}; {load()}", flush=True
    )
    tag = f"envlock-speed-bench/{name}"
    cold: dict[str, list[float]] = {"replay": [], "hand": [], "replay-pip": []}
    logs = {}
    for run in range(args.runs):
        fresh = fresh_uv_cache(files, uuid.uuid4().hex[:12])
        result = build(engine, choice, fresh, f"{tag}-replay:cold", args.ca_cert, True, plan_module.CA_SECRET_ID)
        cold["replay"].append(round(result.seconds, 1))
        logs["replay"] = result.log
        print(f"  cold replay {result.seconds:.1f} s; {load()}", flush=True)
        result = build(engine, choice, hand, f"{tag}-hand:cold", args.ca_cert, True, "ca")
        cold["hand"].append(round(result.seconds, 1))
        logs["hand"] = result.log
        print(f"  cold hand-written {result.seconds:.1f} s; {load()}", flush=True)
        if args.pip and run == 0:
            pip_request = replay_request(args.ca_cert, spec["wheels"], installer="pip")
            _, pip_files, _, _ = replay_context(lock, pip_request, engine, progress)
            result = build(
                engine, choice, pip_files, f"{tag}-replay-pip:cold", args.ca_cert, True, plan_module.CA_SECRET_ID
            )
            cold["replay-pip"].append(round(result.seconds, 1))
            print(f"  cold replay with pip (before issue 13) {result.seconds:.1f} s; {load()}", flush=True)
    out["cold replay s"] = cold["replay"]
    out["cold hand-written s"] = cold["hand"]
    if cold["replay-pip"]:
        out["cold replay with pip s"] = cold["replay-pip"]
    out["cold ratio"] = round(sum(cold["replay"]) / sum(cold["hand"]), 2)
    out["replay steps"] = step_times(logs["replay"])
    out["hand-written steps"] = step_times(logs["hand"])

    # 2. the whole command, warm (first a warm build with the real cache id, so the uv cache is filled)
    seconds, report = whole_command(lock_path, f"{tag}-replay:warm", args.ca_cert, spec["wheels"])
    out["first replay command (cache mount empty) s"] = round(seconds, 1)
    seconds, report = whole_command(lock_path, f"{tag}-replay:warm", args.ca_cert, spec["wheels"])
    out["no-change replay command s"] = round(seconds, 2)
    out["no-change build step s"] = report.get("build_seconds")
    out["no-change exit"] = report.get("returncode")
    out["no-change build reused"] = report.get("build_reused")

    # 3. one small package changed
    package, version = spec["change"]
    changed = records.replace(
        lock,
        python=records.replace(
            lock.python,
            packages=tuple(
                records.replace(p, version=version) if p.name.lower() == package else p for p in lock.python.packages
            ),
        ),
    )
    _, files2, _, _ = replay_context(changed, request, engine, progress)
    result = build(engine, choice, files2, f"{tag}-replay:changed", args.ca_cert, False, plan_module.CA_SECRET_ID)
    cached = steps_cached(result.log)
    out["one-package change s"] = round(result.seconds, 1)
    out["one-package change: steps cached"] = len(cached)
    out["one-package change: steps"] = step_times(result.log)

    # 4. sizes and start-up
    size_replay = engine.image(f"{tag}-replay:cold").size
    size_hand = engine.image(f"{tag}-hand:cold").size
    out["image MB replay"] = round(size_replay / 1e6, 1)
    out["image MB hand-written"] = round(size_hand / 1e6, 1)
    out["size ratio"] = round(size_replay / size_hand, 3)
    replay_s, hand_s = import_seconds((f"{tag}-replay:cold", f"{tag}-hand:cold"), spec["imports"])
    out["import s replay"] = round(replay_s, 2)
    out["import s hand-written"] = round(hand_s, 2)
    print(json.dumps(out, indent=1), flush=True)
    if not args.keep_images:  # 0.2-1.6 GB each; the figures are taken
        kinds = ("replay:cold", "hand:cold", "replay:warm", "replay:changed", "replay-pip:cold")
        subprocess.run(["docker", "rmi", "-f", *(f"{tag}-{kind}" for kind in kinds)], capture_output=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="small,scientific,reference")
    parser.add_argument("--runs", type=int, default=1, help="cold builds of each kind (interleaved)")
    parser.add_argument("--pip", action="store_true", help="also a cold build with pip as the installer")
    parser.add_argument("--keep-images", action="store_true", help="keep the images built (removed by default)")
    parser.add_argument("--ca-cert", default=os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    args = parser.parse_args()

    from envlock.replay.engine import DockerEngine

    if shutil.which("docker") is None:
        raise SystemExit("needs a docker CLI")
    engine = DockerEngine()
    engine.ping()
    results = [bench_env(name, args, engine) for name in args.envs.split(",")]
    out = CACHE / "bench_replay.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"written {out}; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
