"""Check every file of a shipped checkpoint against its manifest before anything uses it."""
import json
from pathlib import Path

from ipbench.io import atomic_write_json
from ipbench.jobs import start_job
from metrics.weights import WeightsError, sha256_file

log = start_job(snakemake)
manifest_path = Path(snakemake.input[0])
folder = manifest_path.parent
manifest = json.loads(manifest_path.read_text())
model = snakemake.wildcards.model
how_to_fix = ("restore it with `git checkout -- {path}`, or retrain it with "
              f"`snakemake --cores all --config retrain={model} device=cuda` (needs a GPU; models trained on it "
              "may need retraining too, e.g. retrain=vae,unet)")
for name, expected in sorted(manifest["files"].items()):
    path = folder / name
    if not path.is_file():
        raise WeightsError(f"{path}: missing checkpoint file listed in {manifest_path}; " + how_to_fix.format(path=path))
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(f"{path}: sha256 {actual} does not match {expected} in {manifest_path}; "
                           + how_to_fix.format(path=path))
    log.info("ok %s %s", name, actual)
atomic_write_json(snakemake.output[0], {"folder": str(folder), "files": manifest["files"], "verified": True})
