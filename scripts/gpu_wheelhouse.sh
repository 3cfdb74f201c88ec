#!/usr/bin/env bash
# Wheels for retraining on a remote GPU machine that has Python 3.12, torch, transformers, pandas and
# scikit-image but no diffusers, lpips, clean-fid or snakemake, and no network.
# diffusers imports importlib_metadata, which the GPU image lacks: kept below 9 (8.9.0 ran there; 10.x needs
# lazy-importer, which is not carried).
# Writes .device/wheels (git-ignored). On the GPU machine, install with:
#   W=.device/wheels; python3 -m pip install --no-index --find-links $W diffusers lpips clean-fid $(cat $W/snakemake-deps.txt)
#   python3 -m pip install --no-index --no-deps $W/snakemake-*.whl
# then run with `snakemake --scheduler greedy ...`: pulp (16 MB, only for the default ILP scheduler)
# is left out to stay within a 64 MiB transfer limit next to the shipped checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.device/wheels
mkdir -p "$out"
platforms=(--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64)
python3 -m pip download -q --dest "$out" --python-version 3.12 --only-binary=:all: "${platforms[@]}" \
    diffusers==0.42.1 "importlib_metadata<9" zipp lpips==0.1.4 clean-fid==0.1.35 snakemake==9.27.1 --no-deps
# snakemake's own requirements, minus pulp and what the GPU image already has.
deps=$(python3 - <<'PY'
import email, pathlib, re, zipfile
wheel = next(pathlib.Path(".device/wheels").glob("snakemake-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    meta = next(n for n in archive.namelist() if n.endswith("METADATA"))
    message = email.message_from_bytes(archive.read(meta))
names = [re.split(r"[<>=!~; \[]", r)[0] for r in message.get_all("Requires-Dist") if "extra ==" not in r]
print(" ".join(n for n in names if n.lower() != "pulp"))
PY
)
echo "$deps" > "$out/snakemake-deps.txt"
# shellcheck disable=SC2086
python3 -m pip download -q --dest "$out" --python-version 3.12 --only-binary=:all: "${platforms[@]}" $deps
du -sh "$out"
