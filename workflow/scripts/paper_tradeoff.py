"""CLIP-T against CLIP-I per method; the task's configured sweeps as curves."""
from pathlib import Path

import pandas as pd

from ipbench import figures
from ipbench.jobs import start_job

log = start_job(snakemake)
sweeps = pd.concat([pd.read_csv(path) for path in snakemake.input.sweeps]) if snakemake.input.sweeps else None
figures.tradeoff_scatter(pd.read_csv(snakemake.input.table), list(snakemake.params.methods),
                         Path(snakemake.output.pdf).with_suffix(""), sweeps=sweeps)
log.info("trade-off with %d sweeps: %s", len(snakemake.input.sweeps), snakemake.params.caption)
