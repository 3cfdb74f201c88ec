"""Collect every method's metrics for one task, test each against the baseline, write CSV/MD/TeX."""
import json
from pathlib import Path

import pandas as pd

from ipbench import tables
from ipbench.published import PUBLISHED
from ipbench.evaluation import groups_by_item, set_value
from ipbench.tasks import metric_registry
from ipbench.io import atomic_write_text, read_jsonl
from ipbench.jobs import start_job
from metrics import stats
from metrics.fid import load_features

log = start_job(snakemake)
task, baseline = snakemake.wildcards.task, snakemake.params.baseline
methods = list(snakemake.params.methods)
options = snakemake.params.options
boot = options.get("bootstrap", {})
records = [json.loads(Path(p).read_text()) for p in snakemake.input.metrics]
per_item = {m: pd.read_csv(p).set_index("item_id") for m, p in zip(methods, snakemake.input.per_item)}
tests = {}
set_metrics = {name for name, m in metric_registry().items() if m.kind == 'set'}

if baseline in methods:
    features = {}
    if snakemake.input.features:
        real = load_features(snakemake.input.features[-1])["features"]
        for method, path, manifest_path in zip(methods, snakemake.input.features[:-1], snakemake.input.manifests):
            loaded = load_features(path)
            manifest = read_jsonl(manifest_path)
            items, groups = groups_by_item(list(loaded["ids"]), manifest)
            features[method] = dict(zip(items, (loaded["features"][g] for g in groups)))
    for record in records:
        method = record["method"]
        if method == baseline:
            continue
        for metric in record["metrics"]:
            if metric not in set_metrics:
                # Items where either method has no value (e.g. no object found) cannot be paired.
                joined = pd.merge(per_item[method][[metric]], per_item[baseline][[metric]], left_index=True,
                                  right_index=True, suffixes=("", "_base")).dropna()
                if len(joined) >= 2:
                    tests[(method, metric)] = stats.paired_test(joined[metric].to_numpy(),
                                                                joined[f"{metric}_base"].to_numpy())
            elif features:
                shared = sorted(features[method].keys() & features[baseline].keys())
                tests[(method, metric)] = stats.paired_bootstrap_set(
                    set_value(metric, options, fast=True),
                    [features[method][i] for i in shared], [features[baseline][i] for i in shared], real,
                    n_boot=boot.get("set_resamples", 200), seed=boot.get("seed", 0))
            log.info("%s vs %s on %s: %s", method, baseline, metric, tests.get((method, metric)))
else:
    log.warning("baseline %s does not run task %s: no paired tests", baseline, task)

protocol = snakemake.params.protocol
published = PUBLISHED.get(protocol, {})
rows_of = {method: row for method, row in snakemake.params.published_rows.items() if row in published}
paper = {(method, metric): value for method, row in rows_of.items() for metric, value in published[row].items()}
long = tables.long_table(records, tests, paper)
wide, note_lines = tables.display(long, methods, snakemake.params.suite, task, baseline, protocol,
                                  snakemake.params.published_rows)
atomic_write_text(snakemake.output.csv, long.to_csv(index=False))
atomic_write_text(snakemake.output.md, tables.to_markdown(wide, note_lines))
atomic_write_text(snakemake.output.tex, tables.to_latex(wide, note_lines, task))
log.info("\n%s", wide.to_string())
