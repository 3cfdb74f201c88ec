from ipbench import paper_data
from ipbench.jobs import start_job

log = start_job(snakemake)
path = paper_data.download(snakemake.wildcards.name, snakemake.output[0], url=snakemake.params.url)
log.info("downloaded and verified %s", path)
