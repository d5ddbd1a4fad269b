#!/usr/bin/env bash
# Fetch, once, the real PyPI wheels that the loopback package index of the pin/replay
# tests serves (tests/loopback_index.py): a few small files, cached under .cache/test-wheels.
set -euo pipefail
bin=${1:-.venv/bin}
"$bin/python" -m tests.loopback_index
