# envlock replay: generated from a lockfile by envlock; do not edit by hand
# One stage, built with BuildKit: base, OS packages, then a virtual environment
# into which uv installs the hash-pinned Python packages, then variables.
# uv, the requirements files and any wheels are bind-mounted from the build
# context, uv's download cache is a cache mount and a CA certificate is a
# secret, so none of them is in a layer of the image.  Stages named
# envlock-fetch-* only download a layer's files into that cache, all at once,
# while the layers before it install; they are not part of the image.

FROM python:3.11-slim-bookworm AS envlock-venv
COPY envlock/os_packages.py /opt/envlock/os_packages.py
RUN --mount=type=secret,id=envlock-ca,target=/run/secrets/envlock-ca ["python3", "/opt/envlock/os_packages.py", "--report", "/opt/envlock/os-report.json", "--ca-file", "/run/secrets/envlock-ca", "--fallback", "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/20260601T120000Z/ bookworm main", "--fallback", "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/20260601T120000Z/ bookworm-updates main", "--fallback", "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian-security/20260601T120000Z/ bookworm-security main", "--", "curl=7.88.1-10+deb12u5", "libopenblas0-pthread=0.3.21+ds-4"]
RUN ["python3", "-m", "venv", "--without-pip", "/opt/envlock/venv"]

FROM envlock-venv AS envlock-fetch-1-2
RUN --mount=type=bind,source=envlock/uv,target=/tmp/envlock/bin/uv --mount=type=bind,source=envlock/python/requirements-1-2.txt,target=/tmp/envlock/python/requirements-1-2.txt --mount=type=cache,id=envlock-uv,target=/tmp/envlock/uv-cache --mount=type=secret,id=envlock-ca,target=/run/secrets/envlock-ca ["/bin/sh", "-c", "set -e; target=$(mktemp -d \"/tmp/envlock/uv-cache/fetch.XXXXXXXX\"); trap 'rm -rf \"$target\"' EXIT; \"$@\" --target \"$target\"; mkdir -p /tmp/envlock/fetched", "envlock-fetch", "/tmp/envlock/bin/uv", "pip", "install", "--no-config", "--python", "/opt/envlock/venv/bin/python", "--link-mode", "hardlink", "--cache-dir", "/tmp/envlock/uv-cache", "--require-hashes", "--no-deps", "--only-binary", ":all:", "--cert", "/run/secrets/envlock-ca", "--default-index", "https://pypi.org/simple", "-r", "/tmp/envlock/python/requirements-1-2.txt"]

FROM envlock-venv
RUN --mount=type=bind,source=envlock/uv,target=/tmp/envlock/bin/uv --mount=type=bind,source=envlock/python/requirements-1-1.txt,target=/tmp/envlock/python/requirements-1-1.txt --mount=type=cache,id=envlock-uv,target=/tmp/envlock/uv-cache --mount=type=secret,id=envlock-ca,target=/run/secrets/envlock-ca ["/tmp/envlock/bin/uv", "pip", "install", "--no-config", "--python", "/opt/envlock/venv/bin/python", "--link-mode", "copy", "--cache-dir", "/tmp/envlock/uv-cache", "--compile-bytecode", "--require-hashes", "--no-deps", "--only-binary", ":all:", "--cert", "/run/secrets/envlock-ca", "--default-index", "https://pypi.org/simple", "-r", "/tmp/envlock/python/requirements-1-1.txt"]
RUN --mount=type=bind,source=envlock/uv,target=/tmp/envlock/bin/uv --mount=type=bind,source=envlock/python/requirements-1-2.txt,target=/tmp/envlock/python/requirements-1-2.txt --mount=type=bind,from=envlock-fetch-1-2,source=/tmp/envlock/fetched,target=/tmp/envlock/fetched --mount=type=cache,id=envlock-uv,target=/tmp/envlock/uv-cache --mount=type=secret,id=envlock-ca,target=/run/secrets/envlock-ca ["/tmp/envlock/bin/uv", "pip", "install", "--no-config", "--python", "/opt/envlock/venv/bin/python", "--link-mode", "copy", "--cache-dir", "/tmp/envlock/uv-cache", "--compile-bytecode", "--require-hashes", "--no-deps", "--only-binary", ":all:", "--cert", "/run/secrets/envlock-ca", "--default-index", "https://pypi.org/simple", "-r", "/tmp/envlock/python/requirements-1-2.txt"]
ENV VIRTUAL_ENV="/opt/envlock/venv" PATH="/opt/envlock/venv/bin:${PATH}"
ENV OMP_NUM_THREADS="8" PYTHONHASHSEED="0"
COPY envlock/envlock.lock /opt/envlock/envlock.lock
LABEL org.envlock.fingerprint="sha256:9645f9b239afb624e0840afac3a64bb05264c445b53081eb1eef8f195fc51594" org.envlock.lock-version="1.0" org.envlock.dockerfile-format="1" org.envlock.base-source="registry" org.envlock.lock="/opt/envlock/envlock.lock" org.envlock.venv="/opt/envlock/venv" org.envlock.lock-created-by="envlock 0.1.0" org.envlock.lock-created-at="2026-06-01T12:00:00Z" org.envlock.os-report="/opt/envlock/os-report.json" org.opencontainers.image.base.name="python:3.11-slim-bookworm"
