"""Every metric of one task per method, with 95% CIs."""
from pathlib import Path

import pandas as pd

from ipbench import figures
from ipbench.jobs import start_job

log = start_job(snakemake)
figures.metric_bars(pd.read_csv(snakemake.input.table), list(snakemake.params.methods),
                    Path(snakemake.output.pdf).with_suffix(""))
log.info("bars: %s", snakemake.params.caption)
