#!/usr/bin/env bash
# Build the Docker base image the replay tests use, from Debian's package
# mirror alone (no image registry is needed or reachable): debootstrap
# --variant=minbase bookworm + `docker import`, then Debian's python3.11 in a
# derived image (envlock/python:3.11-debian-bookworm). Idempotent: an image
# that already exists is reused, so a second run takes about a second.
set -euo pipefail
bin=${1:-.venv/bin}

engine_up() { "$bin/python" -c 'import docker; docker.from_env(timeout=10).ping()' >/dev/null 2>&1; }

if ! engine_up; then
  if [ "${ENVLOCK_REQUIRE_DOCKER:-}" = 1 ]; then
    echo "docker-base: no Docker engine is reachable and ENVLOCK_REQUIRE_DOCKER=1" >&2
    exit 1
  fi
  echo "docker-base: no Docker engine reachable; skipping (the Docker tests will skip too)"
  exit 0
fi

if [ "$(id -u)" != 0 ] && ! docker image inspect envlock/python:3.11-debian-bookworm >/dev/null 2>&1; then
  # debootstrap needs root; try sudo without a password prompt.
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n -E "$bin/python" -m envlock.commands.base_image 3.11
  fi
  echo "docker-base: building the base image needs root (debootstrap); run: sudo $bin/python -m envlock.commands.base_image 3.11" >&2
  [ "${ENVLOCK_REQUIRE_DOCKER:-}" = 1 ] && exit 1
  exit 0
fi

"$bin/python" -m envlock.commands.base_image 3.11
