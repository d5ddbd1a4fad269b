"""Conda replay cold build: `envlock replay` against a hand-written Dockerfile with the same installer.

Issue 14's target: envlock's cold build of a conda lock is at most 1.0x a
hand-written Dockerfile that installs the same explicit list with the same
installer (py-rattler) on the same base, plus the same pip package on top.

The environment is the test suite's conda channel (tests/conda_channel.py:
a self-contained CPython 3.11.7, a compiled library, a noarch package) served
on 127.0.0.1, with six 1.16.0 from PyPI on top; the base is the minimal
Debian rootfs (no python3), so both Dockerfiles install Debian's python3 in
their build stage for the installer.  Both builds run with `--no-cache`, with
BuildKit (Debian's docker 20.10, DOCKER_BUILDKIT=1) and the CA bundle of this
machine's TLS-intercepting proxy as a build secret; interleaved, N rounds.

envlock's figure is the whole command (`envlock replay --no-verify --no-cache`:
load, plan, pin six on PyPI, render, build), the hand-written one the
`docker build` alone.

    ENVLOCK_TESTENV_DIR=... .venv/bin/python benchmarks/bench_conda_replay.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from envlock import records  # noqa: E402
from envlock.lockfile import identity, load_lock, write_lock  # noqa: E402
from envlock.replay.conda import RATTLER_SHA256, RATTLER_VERSION  # noqa: E402
from tests.conda_fixtures import ChannelServer, copy_channel, make_prefix  # noqa: E402

BASE = "envlock/debian-minbase:bookworm"
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DOCKER = "/usr/bin/docker"  # Debian's 20.10 client: BuildKit with DOCKER_BUILDKIT=1

HAND_DOCKERFILE = f"""\
# syntax-free, hand-written: the same explicit list, installed with py-rattler
FROM {BASE} AS build
RUN --mount=type=secret,id=ca,target=/run/secrets/ca apt-get -o Acquire::https::CAInfo=/run/secrets/ca update \\
 && DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::https::CAInfo=/run/secrets/ca install -y --no-install-recommends python3 python3-venv \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/installer
COPY rattler.txt /tmp/
RUN --mount=type=secret,id=ca,target=/run/secrets/ca /opt/installer/bin/pip install --no-cache-dir --cert /run/secrets/ca \\
    --require-hashes -r /tmp/rattler.txt
COPY explicit.txt install.py /tmp/
RUN /opt/installer/bin/python /tmp/install.py /tmp/explicit.txt /opt/conda
RUN --mount=type=secret,id=ca,target=/run/secrets/ca /opt/installer/bin/pip --python /opt/conda/bin/python \\
    install --no-cache-dir --cert /run/secrets/ca --no-deps six==1.16.0
FROM {BASE}
COPY --from=build /opt/conda /opt/conda
ENV PATH=/opt/conda/bin:$PATH
"""

HAND_INSTALL = """\
import asyncio, os, sys, urllib.request
from rattler import Platform, RepoDataRecord, install

async def main(explicit, prefix):
    urls = [line.split("#")[0] for line in open(explicit) if line.startswith("http")]
    os.makedirs("/tmp/pkgs", exist_ok=True)
    records = []
    for url in urls:
        path = os.path.join("/tmp/pkgs", url.rsplit("/", 1)[1])
        urllib.request.urlretrieve(url, path)
        records.append(await RepoDataRecord.from_package_archive(path))
    await install(records, target_prefix=prefix, platform=Platform("linux-64"), show_progress=False)

asyncio.run(main(sys.argv[1], sys.argv[2]))
sys.stdout.flush()
os._exit(0)  # as templates/conda_install.py: py-rattler can abort a finalizing interpreter
"""


def prepare(workdir: Path):
    server = ChannelServer(copy_channel(workdir / "channel"))
    prefix = make_prefix(
        server.url, workdir / "env", ["python ==3.11.7", "libenvlockdemo", "envlock-demo-noarch"], workdir / "cache"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(prefix / "bin/python"),
            "install",
            "-q",
            "--no-deps",
            "six==1.16.0",
        ],
        check=True,
        capture_output=True,
    )
    captured = workdir / "captured.lock"
    subprocess.run(
        [sys.executable, "-m", "envlock", "capture", "--python", str(prefix / "bin/python"), "-o", str(captured), "-q"],
        check=True,
    )
    lock = load_lock(captured).lock
    lock = records.replace(lock, os=records.replace(lock.os, packages=()))
    lock_path = workdir / "envlock.lock"
    write_lock(identity.with_fingerprint(lock), lock_path, "benchmarks/bench_conda_replay.py")
    context = workdir / "hand"
    context.mkdir()
    (context / "Dockerfile").write_text(HAND_DOCKERFILE)
    (context / "install.py").write_text(HAND_INSTALL)
    (context / "rattler.txt").write_text(f"py-rattler=={RATTLER_VERSION} --hash=sha256:{RATTLER_SHA256}\n")
    explicit = ["@EXPLICIT"] + [f"{p.url}#{p.md5}" for p in lock.conda.packages]
    (context / "explicit.txt").write_text("\n".join(explicit) + "\n")
    return server, lock_path, context


def run_envlock(lock_path: Path, workdir: Path) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "envlock",
            "replay",
            str(lock_path),
            "--no-verify",
            "--no-cache",
            "-q",
            "--json",
            "--base-image",
            BASE,
            "--ca-cert",
            BUNDLE,
            "-t",
            "envlock-bench/conda:envlock",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"envlock replay failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def run_hand(context: Path) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [
            DOCKER,
            "build",
            "--no-cache",
            "--network",
            "host",
            "--secret",
            f"id=ca,src={BUNDLE}",
            "-t",
            "envlock-bench/conda:hand",
            str(context),
        ],
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"hand-written build failed:\n{result.stderr[-3000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envlock-bench-conda-") as tmp:
        workdir = Path(tmp)
        server, lock_path, context = prepare(workdir)
        try:
            envlock_times, hand_times = [], []
            for round_number in range(args.runs):
                # Alternate which goes first, so neither always meets a warmer machine.
                order = (("envlock", lambda: run_envlock(lock_path, workdir)), ("hand", lambda: run_hand(context)))
                for name, call in order if round_number % 2 == 0 else tuple(reversed(order)):
                    seconds = call()
                    (envlock_times if name == "envlock" else hand_times).append(seconds)
                    print(f"round {round_number + 1}: {name} {seconds:.1f} s", flush=True)
        finally:
            server.close()
    result = {
        "envlock_median_s": round(statistics.median(envlock_times), 1),
        "hand_median_s": round(statistics.median(hand_times), 1),
        "ratio": round(statistics.median(envlock_times) / statistics.median(hand_times), 2),
        "envlock_s": [round(t, 1) for t in envlock_times],
        "hand_s": [round(t, 1) for t in hand_times],
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
