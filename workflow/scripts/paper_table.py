"""One task's table for the paper: LaTeX (booktabs), Markdown and HTML, captioned with the protocol."""
import pandas as pd

from ipbench import tables
from ipbench.io import atomic_write_text
from ipbench.jobs import start_job

log = start_job(snakemake)
task = snakemake.wildcards.task
wide, note_lines = tables.display(pd.read_csv(snakemake.input.table), list(snakemake.params.methods),
                                  snakemake.params.suite, task, snakemake.params.baseline, snakemake.params.protocol,
                                  snakemake.params.published_rows)
note_lines = [snakemake.params.caption, *note_lines]
atomic_write_text(snakemake.output.tex, tables.to_latex(wide, note_lines, task))
atomic_write_text(snakemake.output.md, tables.to_markdown(wide, note_lines))
atomic_write_text(snakemake.output.html, tables.to_html(wide, note_lines))
log.info("\n%s", wide.to_string())
