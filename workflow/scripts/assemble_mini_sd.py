"""Assemble the mini SD pipeline folder from the verified VAE, UNet and conditioning CLIP."""
from pathlib import Path

from ipbench.io import atomic_directory
from ipbench.jobs import start_job
from ipbench.world.pipeline import assemble_pipeline

log = start_job(snakemake)
dirs = snakemake.params.model_dirs
with atomic_directory(Path(snakemake.output[0])) as tmp:
    assemble_pipeline(tmp, dirs["vae"], dirs["unet"], dirs["cond_clip"])
log.info("assembled %s from %s", snakemake.output[0], dirs)
