from pathlib import Path

from ipbench.imageset import merge_manifests
from ipbench.jobs import start_job

log = start_job(snakemake)
rows = merge_manifests([Path(p) for p in snakemake.input], Path(snakemake.output[0]))
log.info("merged %d images from %d shards", len(rows), len(snakemake.input))
