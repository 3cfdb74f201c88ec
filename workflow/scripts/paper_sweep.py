"""One configured sweep: each of its metrics against the swept value."""
from pathlib import Path

import pandas as pd

from ipbench import figures
from ipbench.jobs import start_job

log = start_job(snakemake)
spec = snakemake.params.spec
colour = figures.method_colours(list(snakemake.params.methods))[spec["method"]]
figures.sweep_plot(pd.read_csv(snakemake.input.table), spec["param"], spec["metrics"],
                   Path(snakemake.output.pdf).with_suffix(""), colour=colour)
log.info("sweep %s: %s", snakemake.wildcards.sweep, snakemake.params.caption)
