# envlock replay: generated from a lockfile by envlock; do not edit by hand
# Stage 1 installs the hash-pinned Python packages into a virtual environment.
# A CA certificate for a TLS-intercepting proxy is used only in stage 1, or is
# mounted as a BuildKit secret, so it is in no layer of the final image.
# Stage 2 is the replayed image: base, OS packages, the environment, variables.

FROM python:3.11-slim-bookworm AS envlock-python
COPY envlock/ca.crt /tmp/envlock/ca.crt
RUN ["python3", "-m", "venv", "--without-pip", "/opt/envlock/venv"]
COPY envlock/uv /tmp/envlock/bin/uv
COPY envlock/python/requirements-1-1.txt /tmp/envlock/python/requirements-1-1.txt
RUN ["/tmp/envlock/bin/uv", "pip", "install", "--no-config", "--python", "/opt/envlock/venv/bin/python", "--link-mode", "hardlink", "--no-cache", "--compile-bytecode", "--require-hashes", "--no-deps", "--only-binary", ":all:", "--cert", "/tmp/envlock/ca.crt", "--default-index", "https://pypi.org/simple", "-r", "/tmp/envlock/python/requirements-1-1.txt"]
COPY envlock/python/requirements-1-2.txt /tmp/envlock/python/requirements-1-2.txt
RUN ["/tmp/envlock/bin/uv", "pip", "install", "--no-config", "--python", "/opt/envlock/venv/bin/python", "--link-mode", "hardlink", "--no-cache", "--compile-bytecode", "--require-hashes", "--no-deps", "--only-binary", ":all:", "--cert", "/tmp/envlock/ca.crt", "--default-index", "https://pypi.org/simple", "-r", "/tmp/envlock/python/requirements-1-2.txt"]

FROM python:3.11-slim-bookworm
COPY envlock/os_packages.py /opt/envlock/os_packages.py
RUN ["python3", "/opt/envlock/os_packages.py", "--report", "/opt/envlock/os-report.json", "--fallback", "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/20260601T120000Z/ bookworm main", "--fallback", "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/20260601T120000Z/ bookworm-updates main", "--fallback", "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian-security/20260601T120000Z/ bookworm-security main", "--", "curl=7.88.1-10+deb12u5", "libopenblas0-pthread=0.3.21+ds-4"]
COPY --from=envlock-python /opt/envlock/venv /opt/envlock/venv
ENV VIRTUAL_ENV="/opt/envlock/venv" PATH="/opt/envlock/venv/bin:${PATH}"
ENV OMP_NUM_THREADS="8" PYTHONHASHSEED="0"
COPY envlock/envlock.lock /opt/envlock/envlock.lock
LABEL org.envlock.fingerprint="sha256:9645f9b239afb624e0840afac3a64bb05264c445b53081eb1eef8f195fc51594" org.envlock.lock-version="1.0" org.envlock.dockerfile-format="1" org.envlock.base-source="registry" org.envlock.lock="/opt/envlock/envlock.lock" org.envlock.venv="/opt/envlock/venv" org.envlock.lock-created-by="envlock 0.1.0" org.envlock.lock-created-at="2026-06-01T12:00:00Z" org.envlock.os-report="/opt/envlock/os-report.json" org.opencontainers.image.base.name="python:3.11-slim-bookworm"
