# envlock replay: generated from a lockfile by envlock; do not edit by hand
# Stage 1 installs the hash-pinned Python packages into a virtual environment.
# A CA certificate for a TLS-intercepting proxy is used only in stage 1, or is
# mounted as a BuildKit secret, so it is in no layer of the final image.
# Stage 2 is the replayed image: base, OS packages, the environment, variables.

FROM nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04 AS envlock-python
RUN ["/bin/sh", "-c", "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -- python3 python3-venv && rm -rf /var/lib/apt/lists/*"]
RUN ["python3", "-m", "venv", "/opt/envlock/venv"]
COPY envlock/python/requirements-1.txt /tmp/envlock/python/requirements-1.txt
RUN ["/opt/envlock/venv/bin/python", "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "--no-input", "--no-cache-dir", "--require-hashes", "--no-deps", "--only-binary", ":all:", "--index-url", "https://pypi.org/simple", "-r", "/tmp/envlock/python/requirements-1.txt"]

FROM nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04
RUN ["/bin/sh", "-c", "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -- python3 python3-venv && rm -rf /var/lib/apt/lists/*"]
COPY envlock/os_packages.py /opt/envlock/os_packages.py
RUN ["python3", "/opt/envlock/os_packages.py", "--report", "/opt/envlock/os-report.json", "--fallback", "deb [check-valid-until=no] https://snapshot.ubuntu.com/ubuntu/20260602T083000Z/ jammy main universe", "--fallback", "deb [check-valid-until=no] https://snapshot.ubuntu.com/ubuntu/20260602T083000Z/ jammy-updates main universe", "--fallback", "deb [check-valid-until=no] https://snapshot.ubuntu.com/ubuntu/20260602T083000Z/ jammy-security main universe", "--", "build-essential=12.9ubuntu3", "libopenmpi-dev=4.1.2-2ubuntu1"]
COPY --from=envlock-python /opt/envlock/venv /opt/envlock/venv
ENV VIRTUAL_ENV="/opt/envlock/venv" PATH="/opt/envlock/venv/bin:${PATH}"
ENV CUBLAS_WORKSPACE_CONFIG=":4096:8" CUDA_LAUNCH_BLOCKING="1" NCCL_ALGO="Ring"
COPY envlock/envlock.lock /opt/envlock/envlock.lock
LABEL org.envlock.fingerprint="sha256:df91dc346b6cedb19734a33cbf636ea4fe0c7c5e33e6e45556ade84e921a3f67" org.envlock.lock-version="1.0" org.envlock.dockerfile-format="1" org.envlock.base-source="registry" org.envlock.lock="/opt/envlock/envlock.lock" org.envlock.venv="/opt/envlock/venv" org.envlock.lock-created-by="envlock 0.1.0" org.envlock.lock-created-at="2026-06-02T08:30:00Z" org.envlock.os-report="/opt/envlock/os-report.json" org.opencontainers.image.base.name="nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04"
