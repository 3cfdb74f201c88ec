from pathlib import Path

from ipbench.jobs import start_job
from metrics.lpips_metric import lpips_weights_path

log = start_job(snakemake)
out = Path(snakemake.output[0])
path = lpips_weights_path(snakemake.wildcards.net, cache_dir=out.parent)
log.info("LPIPS weights at %s", path)
