#!/usr/bin/env bash
# Build the reference environment of issue 2's benchmarks (about 60 distributions):
# torch 2.13.0 (CPU wheel), numpy, scipy, pandas, scikit-learn, transformers.
# Idempotent: reuses the venv when it already has torch.
set -euo pipefail
dest=${1:-.cache/benchenvs/reference}
python=${PYTHON:-python3}
if [ -x "$dest/bin/python" ] && "$dest/bin/python" -c "import importlib.metadata as m; m.version('transformers'); m.version('torch')" 2>/dev/null; then
  echo "reference env ready: $dest"; exit 0
fi
"$python" -m venv "$dest"
"$dest/bin/python" -m pip install -q --upgrade pip
"$dest/bin/python" -m pip install -q torch==2.13.0 numpy scipy pandas scikit-learn transformers
echo "reference env ready: $dest ($("$dest/bin/python" -m pip list --format=freeze | wc -l) distributions)"
