"""Evaluate one method's image set for one task: metrics.json plus per-item values."""
from pathlib import Path

import torch

from ipbench.evaluation import evaluate
from ipbench.io import atomic_write_json, atomic_write_text, read_jsonl
from ipbench.jobs import check_device, start_job
from metrics.fid import load_features

log = start_job(snakemake)
torch.set_num_threads(snakemake.threads)
wc = snakemake.wildcards
features = real = None
if "features" in snakemake.input.keys():
    features, real = load_features(snakemake.input.features), load_features(snakemake.input.real_features)
results, per_item = evaluate(wc.task, list(snakemake.params.metrics), read_jsonl(snakemake.input.manifest),
                             Path(snakemake.input.manifest).parent, Path(snakemake.input.data),
                             dict(snakemake.params.options), check_device(snakemake.params.device), features, real)
atomic_write_text(snakemake.output.per_item, per_item.reset_index().to_csv(index=False))
atomic_write_json(snakemake.output.metrics, {"task": wc.task, "method": wc.method, "metrics": results,
                                             "protocol": {"name": f"ipbench/{wc.task}", "version": 1}})
