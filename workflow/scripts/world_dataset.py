from ipbench.jobs import start_job
from ipbench.world.datasets import write_dataset

log = start_job(snakemake)
params = snakemake.params
write_dataset(snakemake.output[0], snakemake.wildcards.split, params.n, params.seed, params.p_drop)
log.info("%d %s renders in %s", params.n, snakemake.wildcards.split, snakemake.output[0])
