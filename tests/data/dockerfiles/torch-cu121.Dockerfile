# envlock replay: generated from a lockfile by envlock; do not edit by hand
# Stage 1 installs the hash-pinned Python packages into a virtual environment.
# A CA certificate for a TLS-intercepting proxy is used only in stage 1, or is
# mounted as a BuildKit secret, so it is in no layer of the final image.
# Stage 2 is the replayed image: base, OS packages, the environment, variables.

FROM python:3.11-slim-bookworm AS envlock-python
RUN ["python3", "-m", "venv", "/opt/envlock/venv"]
COPY envlock/python/requirements-1.txt /tmp/envlock/python/requirements-1.txt
RUN ["/opt/envlock/venv/bin/python", "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "--no-input", "--no-cache-dir", "--require-hashes", "--no-deps", "--only-binary", ":all:", "--index-url", "https://pypi.org/simple", "-r", "/tmp/envlock/python/requirements-1.txt"]
RUN ["/opt/envlock/venv/bin/python", "-m", "pip", "uninstall", "--isolated", "--disable-pip-version-check", "--no-input", "--yes", "setuptools"]

FROM python:3.11-slim-bookworm
COPY --from=envlock-python /opt/envlock/venv /opt/envlock/venv
ENV VIRTUAL_ENV="/opt/envlock/venv" PATH="/opt/envlock/venv/bin:${PATH}"
ENV CUBLAS_WORKSPACE_CONFIG=":4096:8" NVIDIA_TF32_OVERRIDE="0"
COPY envlock/envlock.lock /opt/envlock/envlock.lock
LABEL org.envlock.fingerprint="sha256:782a32123cabf4788cf4112dc950bba7520eebc5daa32f65f6c79c70ed7b38bd" org.envlock.lock-version="1.0" org.envlock.dockerfile-format="1" org.envlock.base-source="registry" org.envlock.lock="/opt/envlock/envlock.lock" org.envlock.venv="/opt/envlock/venv" org.envlock.lock-created-by="envlock 0.1.0" org.envlock.lock-created-at="2026-06-04T09:15:00Z" org.opencontainers.image.base.name="python:3.11-slim-bookworm"
