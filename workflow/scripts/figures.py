from pathlib import Path

import pandas as pd

from ipbench import figures
from ipbench.io import read_jsonl
from ipbench.jobs import start_job
from ipbench.tasks import TASKS
from metrics.images import load_rgb

log = start_job(snakemake)
methods = list(snakemake.params.methods)
data_dir = Path(snakemake.input.data)
items = {row["id"]: row for row in read_jsonl(data_dir / "items.jsonl")}
shown_items = sorted(items)[:6]
task = TASKS[snakemake.wildcards.task]
# Image-prompted tasks show the (first) image prompt first; text-only tasks start with the methods.
columns = [("condition", [load_rgb(data_dir / task.prompt_images(items[i]["condition"])[0]).array
                          for i in shown_items])] if task.image_key else []
for method, manifest_path in zip(methods, snakemake.input.manifests):
    first_samples = {row["item_id"]: row for row in read_jsonl(manifest_path) if row["sample_index"] == 0}
    columns.append((method, [load_rgb(Path(manifest_path).parent / first_samples[i]["path"]).array
                             for i in shown_items]))
# Text-only tasks label each row with its caption (image-prompted tasks show the prompt image instead).
captions = None if task.image_key else [items[i]["condition"]["prompt"] for i in shown_items]
figures.image_grid(columns, snakemake.output.grid, row_labels=captions)
figures.metric_bars(pd.read_csv(snakemake.input.table), methods, snakemake.output.bars)
log.info("figures for %d methods, %d items", len(methods), len(shown_items))
