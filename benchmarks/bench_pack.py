"""`envlock pack` and replay from a pack, side by side with the same work done by hand (issue 12).

    .venv/bin/python benchmarks/bench_pack.py [--runs 3] [--ca-cert /etc/ssl/certs/ca-certificates.crt]

The environment: numpy, PyYAML (compiled wheels), six, packaging (pure), and
the venv's own pip and setuptools (as a capture of a venv records them), on
envlock's Debian base (a private copy, so it can be removed and loaded again),
with one hand-installed OS package (tree).  Measured, interleaved run by run:

1. ``envlock pack LOCK -o FILE`` against the same downloads by hand: ``pip
   download`` of the pinned files, ``apt-get download`` of the same .debs,
   ``docker save`` of the base (goal ≤ 1.0×);
2. the pack's size against the sum of its members (goal within 2 %);
3. ``envlock replay PACK --no-cache --no-verify`` (network off, base loaded
   from the pack) against the hand-written online Dockerfile of the same
   pins on the same base, built cold (``--no-cache``) with BuildKit (goal ≤ 0.5×);
   and the replay again with its verification, for what a user runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE = "envlock/python:3.11-debian-bookworm"
PRIVATE_BASE = "envlock-bench/pack-base:1"
# What `envlock capture` records for a venv made by the base's `python3 -m venv` with these installed:
# the venv's own pip and setuptools (Debian bookworm's ensurepip wheels) are in every such lock.
PACKAGES = {
    "numpy": "1.26.4",
    "pyyaml": "6.0.1",
    "six": "1.16.0",
    "packaging": "24.0",
    "pip": "23.0.1",
    "setuptools": "66.1.1",
}
OS_PACKAGES = {"tree": "2.1.0-1"}


def envlock(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "envlock", *args], capture_output=True, text=True)
    if check and done.returncode not in (0, 1):
        raise SystemExit(f"envlock {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def timed(argv: list[str], ok: tuple[int, ...] = (0, 1), **kwargs) -> float:
    """Wall time of a whole command; ``ok`` are the exit codes that mean it did its work (replay: 1 = findings)."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode not in ok:
        raise SystemExit(f"{argv[:4]} failed ({done.returncode}):\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}")
    return time.perf_counter() - start


def write_lock(path: Path) -> None:
    from envlock.lockfile import Lock, OsPackage, OsSection, PythonPackage, PythonSection
    from envlock.lockfile.write import write_lock as write

    write(
        Lock(
            python=PythonSection(
                implementation="cpython",
                version="3.11.2",
                abi_tag="cp311",
                platform_tag="manylinux_2_36_x86_64",
                environment_kind="venv",
                packages=tuple(
                    PythonPackage(name=n, version=v, installer="pip", requested=n not in ("pip", "setuptools"))
                    for n, v in PACKAGES.items()
                ),
            ),
            os=OsSection(
                id="debian",
                version_id="12",
                codename="bookworm",
                package_manager="dpkg",
                packages=tuple(OsPackage(n, v, "amd64", manual=True) for n, v in OS_PACKAGES.items()),
            ),
        ),
        str(path),
        "benchmarks/bench_pack.py",
    )


def by_hand_downloads(pinned_lock: Path, work: Path, ca_cert: str) -> float:
    """pip download of the pinned files + apt-get download of the .debs + docker save: the hand-made bundle."""
    from envlock.lockfile.io import load_lock

    lock = load_lock(str(pinned_lock)).lock
    target = work / "by-hand"
    shutil.rmtree(target, ignore_errors=True)
    (target / "wheels").mkdir(parents=True)
    (target / "debs").mkdir()
    requirements = target / "requirements.txt"
    requirements.write_text(
        "".join(f"{p.name}=={p.version} --hash={p.file_sha256}\n" for p in lock.python.packages), encoding="utf-8"
    )
    start = time.perf_counter()
    timed(
        [sys.executable, "-m", "pip", "download", "--isolated", "--no-cache-dir", "--no-deps", "--only-binary", ":all:",
         "--require-hashes", "--cert", ca_cert, "--index-url", "https://pypi.org/simple",
         "--python-version", "3.11", "--platform", "manylinux_2_17_x86_64", "-r", str(requirements),
         "-d", str(target / "wheels")],
        ok=(0,),
    )  # fmt: skip
    timed(["apt-get", "download", *(f"{n}={v}" for n, v in OS_PACKAGES.items())], ok=(0,), cwd=target / "debs")
    timed(["docker", "save", "-o", str(target / "base.tar"), PRIVATE_BASE], ok=(0,))
    return time.perf_counter() - start


HAND_DOCKERFILE = """\
FROM {base}
RUN apt-get update && apt-get install -y --no-install-recommends {debs} && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv
RUN --mount=type=secret,id=ca /opt/venv/bin/pip install --no-cache-dir --cert /run/secrets/ca -r /tmp/requirements.txt
"""


def hand_build(work: Path, ca_cert: str, tag: str) -> float:
    context = work / "hand-context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir()
    (context / "Dockerfile").write_text(
        HAND_DOCKERFILE.format(base=PRIVATE_BASE, debs=" ".join(f"{n}={v}" for n, v in OS_PACKAGES.items())),
        encoding="utf-8",
    )
    (context / "requirements.txt").write_text("".join(f"{n}=={v}\n" for n, v in PACKAGES.items()), encoding="utf-8")
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    return timed(
        ["/usr/bin/docker", "build", "--no-cache", "--network", "host", "--secret", f"id=ca,src={ca_cert}",
         "-t", tag, str(context)],
        ok=(0,),
        env=env,
    )  # fmt: skip


def remove_images(*refs: str) -> None:
    for ref in refs:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ca-cert", default="/etc/ssl/certs/ca-certificates.crt")
    args = parser.parse_args()
    import docker

    client = docker.from_env()
    client.images.build(
        fileobj=io.BytesIO(f"FROM {BASE}\nLABEL org.envlock.bench=pack\n".encode()), tag=PRIVATE_BASE, rm=True
    )
    work = Path(tempfile.mkdtemp(prefix="envlock-bench-pack-"))
    lock = work / "envlock.lock"
    write_lock(lock)
    pinned = work / "pinned.lock"
    envlock("pin", str(lock), "-o", str(pinned), "--snapshot-url", "http://127.0.0.1:9")
    pack = work / "env.pack"
    pack_times, hand_times = [], []
    for _ in range(args.runs):
        pack.unlink(missing_ok=True)
        pack_times.append(
            timed([sys.executable, "-m", "envlock", "pack", str(pinned), "-o", str(pack),
                   "--base-image", PRIVATE_BASE, "--ca-cert", args.ca_cert, "--json"])
        )  # fmt: skip
        hand_times.append(by_hand_downloads(pinned, work, args.ca_cert))
    checked = json.loads(envlock("pack", "--check", str(pack), "--json").stdout)
    members = sum(m["size"] for m in checked["members"])
    size = pack.stat().st_size
    replay_times, replay_verify_times, build_times = [], [], []
    for run in range(args.runs):
        tag = f"envlock-bench/pack-replay:{run}"
        remove_images(tag, f"envlock-bench/hand:{run}")
        replay_times.append(
            timed([sys.executable, "-m", "envlock", "replay", str(pack), "--no-cache", "--no-verify", "-q", "-t", tag])
        )
        build_times.append(hand_build(work, args.ca_cert, f"envlock-bench/hand:{run}"))
        replay_verify_times.append(
            timed([sys.executable, "-m", "envlock", "replay", str(pack), "--no-cache", "-q", "-t", tag + "v"])
        )
        remove_images(tag, tag + "v", f"envlock-bench/hand:{run}")
    for image in client.images.list(name="envlock-pack-base"):
        for ref in image.tags:
            remove_images(ref)
    remove_images(PRIVATE_BASE)
    shutil.rmtree(work, ignore_errors=True)

    def med(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    print(f"pack: {size} bytes, members {members} bytes, overhead {100 * (size - members) / members:.3f} %")
    print(f"envlock pack        median {med(pack_times):.2f} s  runs {[round(t, 2) for t in pack_times]}")
    print(f"by hand (pip download + apt-get download + docker save) median {med(hand_times):.2f} s "
          f"runs {[round(t, 2) for t in hand_times]}  ratio {med(pack_times) / med(hand_times):.2f}x")  # fmt: skip
    print(
        f"replay from pack (cold, --no-verify) median {med(replay_times):.2f} s runs {[round(t, 2) for t in replay_times]}"
    )
    print(f"hand-written online Dockerfile (cold) median {med(build_times):.2f} s runs {[round(t, 2) for t in build_times]}"
          f"  ratio {med(replay_times) / med(build_times):.2f}x")  # fmt: skip
    print(f"replay from pack (cold, with verify) median {med(replay_verify_times):.2f} s "
          f"ratio {med(replay_verify_times) / med(build_times):.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
