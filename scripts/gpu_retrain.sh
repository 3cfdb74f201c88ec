#!/usr/bin/env bash
# On a network-less GPU machine (Python 3.12 with torch, transformers, peft): install the wheels that
# scripts/gpu_wheelhouse.sh carried, then retrain artifacts through the DAG's training rule.
#   IPBENCH_GIT_COMMIT=<commit> bash scripts/gpu_retrain.sh cond_clip,vae,unet [more snakemake args]
# IPBENCH_JOBS_PER_GPU (default 6) artifacts train side by side per card: these models are launch-bound,
# so one large card runs several at nearly full speed each. Manifests name IPBENCH_GIT_COMMIT.
set -euo pipefail
cd "$(dirname "$0")/.."
artifacts=$1
shift
W=.device/wheels
python3 -m pip install -q --no-index --find-links "$W" diffusers importlib_metadata lpips clean-fid $(cat "$W/snakemake-deps.txt")
python3 -m pip install -q --no-index --no-deps "$W"/snakemake-*.whl
targets=()
for name in ${artifacts//,/ }; do targets+=("results/mini/trained/$name/manifest.json"); done
export IPBENCH_JOBS_PER_GPU=${IPBENCH_JOBS_PER_GPU:-6}
cards=$(nvidia-smi -L | wc -l)
python3 -m snakemake --scheduler greedy --cores all --resources gpu=$((cards * IPBENCH_JOBS_PER_GPU)) \
    --config retrain="$artifacts" device=cuda --rerun-incomplete "${targets[@]}" "$@"
