"""Check every file of a shipped artifact against its manifest before anything uses it."""
from pathlib import Path

from ipbench.io import atomic_write_json
from ipbench.jobs import start_job
from ipbench.training.manifest import verify

log = start_job(snakemake)
folder = Path(snakemake.input[0]).parent
name = snakemake.wildcards.artifact
hint = (f"retrain it with `snakemake --cores all --config retrain={name}` (on a GPU add device=cuda; models "
        "trained on it may need retraining too, e.g. retrain=vae,unet)")
manifest = verify(folder, hint)
for file, digest in sorted(manifest["files"].items()):
    log.info("ok %s %s", file, digest)
atomic_write_json(snakemake.output[0], {"folder": str(folder), "files": manifest["files"], "verified": True})
