#!/usr/bin/env bash
# Build the cached test virtualenvs (tests/envs.py) before the suite runs, so
# no test pays the ~1.2 GB CUDA-wheel download inside its own timeout.
# Idempotent: a ready environment is a file check.
set -euo pipefail
bin=${1:-.venv/bin}
"$bin/python" -m tests.envs
