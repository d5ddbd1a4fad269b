#!/usr/bin/env bash
# Provision what the test suite needs beyond Python packages. Each step is
# idempotent and cheap when already done.
set -euo pipefail
bin=${1:-.venv/bin}
for step in scripts/provision.d/*.sh; do
  [ -e "$step" ] || continue
  echo "== provision: $step"
  bash "$step" "$bin"
done
