"""The one-page summary: one panel per task, methods ranked by its headline metric."""
from pathlib import Path

import pandas as pd

from ipbench import figures
from ipbench.jobs import start_job

log = start_job(snakemake)
headlines = snakemake.params.headlines
panels = [(task, headlines[task], pd.read_csv(path)) for task, path in zip(snakemake.params.tasks, snakemake.input.tables)]
figures.summary(panels, list(snakemake.params.methods), Path(snakemake.output.pdf).with_suffix(""))
log.info("summary: %s", snakemake.params.caption)
