import pandas as pd

from ipbench import figures
from ipbench.jobs import start_job

log = start_job(snakemake)
figures.tradeoff_scatter(pd.read_csv(snakemake.input[0]), snakemake.output[0])
log.info("trade-off figure for task %s", snakemake.wildcards.task)
