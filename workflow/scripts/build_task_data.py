from ipbench import datasets
from ipbench.jobs import start_job

log = start_job(snakemake)
options = dict(snakemake.params.data)
source = options.pop("source")
options.update(dict(snakemake.input.items()))  # the downloaded files a paper source reads
log.info("building %s data for task %s: %s", source, snakemake.wildcards.task, options)
datasets.build(source, snakemake.wildcards.task, snakemake.output[0], **options)
