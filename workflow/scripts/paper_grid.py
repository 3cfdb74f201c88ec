"""The qualitative grid of one task: prompt and every image prompt | each method | the oracle."""
from pathlib import Path

import numpy as np

from ipbench import figures
from ipbench.io import read_jsonl
from ipbench.jobs import start_job
from ipbench.tasks import TASKS
from metrics.images import load_rgb

ROWS = 6

log = start_job(snakemake)
data_dir = Path(snakemake.input.data)
items = {row["id"]: row for row in read_jsonl(data_dir / "items.jsonl")}
ids = sorted(items)
# Rows spread evenly over the sorted ids, so a subject task shows several subjects, not one subject's prompts.
shown = [ids[k] for k in sorted(set(np.linspace(0, len(ids) - 1, min(ROWS, len(ids))).round().astype(int)))]
task = TASKS[snakemake.wildcards.task]
prompts = [items[i]["condition"].get("prompt", "") for i in shown]
conditions = [[load_rgb(data_dir / path).array for path in task.prompt_images(items[i]["condition"])] for i in shown]
columns = []
for method, manifest_path in zip(snakemake.params.methods, snakemake.input.manifests):
    first_samples = {row["item_id"]: row for row in read_jsonl(manifest_path) if row["sample_index"] == 0}
    columns.append((method, [load_rgb(Path(manifest_path).parent / first_samples[i]["path"]).array for i in shown]))
figures.condition_grid(prompts, conditions, columns, Path(snakemake.output.pdf).with_suffix(""))
log.info("grid of %d items x %d methods: %s", len(shown), len(columns), snakemake.params.caption)
