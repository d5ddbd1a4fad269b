#!/usr/bin/env bash
# make demo: capture this machine into envlock.lock and show it; then, when a
# Docker engine is reachable, replay the lock into an image and verify it.
set -euo pipefail
bin=${1:-.venv/bin}
echo "== envlock capture"
"$bin/envlock" capture -o envlock.lock
"$bin/envlock" show envlock.lock
if [ -x scripts/demo-replay.sh ]; then
  bash scripts/demo-replay.sh "$bin"
fi
