#!/usr/bin/env bash
# On a network-less GPU machine (Python 3.12 with torch, transformers, peft): install the wheels that
# scripts/gpu_wheelhouse.sh carried, then retrain artifacts through the DAG's training rule.
#   IPBENCH_GIT_COMMIT=<commit> bash scripts/gpu_retrain.sh cond_clip,vae,unet [more snakemake args]
# IPBENCH_JOBS_PER_GPU (default 6) artifacts train side by side per card. Manifests name IPBENCH_GIT_COMMIT.
# Name every artifact of a lease in ONE call: the config hash (the retrain list included) is in each
# training job's params, so a second call with another list retrains what the first one finished.
# With OUT set (the device tool's output folder), each artifact is packed into $OUT/<name>.tgz as soon
# as its manifest exists, so a call that runs out of time still returns what finished.
# IPBENCH_CALL_SECONDS (the seconds this script may run, e.g. the device call's limit less its margin)
# sets IPBENCH_TRAIN_DEADLINE: every training loop stops IPBENCH_AFTER_TRAINING_S (default 90: evaluation,
# manifest, packing) before it, whatever its time_limit_s, so the manifests are written inside the call.
# Two calls of 2026-12-02 without it ended with nothing: their time limits plus the data build and the
# evaluations came to more than the call (benchmarks/records/2026-12-02-h200-if-continued).
# A machine that is still warm keeps the previous call's results/: only manifests written after this
# script started are packed (call 7 of that record packed the previous call's artifacts and lost its own).
set -euo pipefail
started=$(date +%s)
cd "$(dirname "$0")/.."
artifacts=$1
shift
W=.device/wheels
python3 -m pip install -q --no-index --find-links "$W" diffusers importlib_metadata lpips clean-fid $(cat "$W/snakemake-deps.txt")
python3 -m pip install -q --no-index --no-deps "$W"/snakemake-*.whl
targets=()
for name in ${artifacts//,/ }; do targets+=("results/mini/trained/$name/manifest.json"); done

pack_finished() {
    for name in ${artifacts//,/ }; do
        manifest=results/mini/trained/$name/manifest.json
        if [[ -f $manifest && $(stat -c %Y "$manifest") -ge $started && ! -f $OUT/$name.tgz ]]; then
            tar czf "$OUT/$name.tgz.part" -C results/mini/trained "$name" && mv "$OUT/$name.tgz.part" "$OUT/$name.tgz"
        fi
    done
}
if [[ -n ${OUT:-} ]]; then
    (while true; do pack_finished; sleep 5; done) &
    packer=$!
    trap 'kill $packer 2>/dev/null; pack_finished' EXIT
fi
if [[ -n ${IPBENCH_CALL_SECONDS:-} ]]; then
    export IPBENCH_TRAIN_DEADLINE=$((started + IPBENCH_CALL_SECONDS - ${IPBENCH_AFTER_TRAINING_S:-90}))
fi
export IPBENCH_JOBS_PER_GPU=${IPBENCH_JOBS_PER_GPU:-6}
cards=$(nvidia-smi -L | wc -l)
python3 -m snakemake --scheduler greedy --cores all --resources gpu=$((cards * IPBENCH_JOBS_PER_GPU)) \
    --config retrain="$artifacts" device=cuda --rerun-incomplete "${targets[@]}" "$@"
