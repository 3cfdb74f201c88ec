"""One parameter sweep (e.g. guidance scale): every metric of the task per value, as a long-form table."""
import json

import pandas as pd

from ipbench.io import atomic_write_text
from ipbench.jobs import start_job

log = start_job(snakemake)
spec = snakemake.params.spec
rows = []
for (value, image_set), path in zip(snakemake.params.members, snakemake.input):
    for metric, result in json.loads(open(path).read())["metrics"].items():
        rows.append({"sweep": snakemake.wildcards.sweep, "method": spec["method"], "task": spec["task"],
                     "param": spec["param"], "param_value": value, "image_set": image_set, "metric": metric,
                     "value": result["value"], "ci95_low": result["ci95"][0], "ci95_high": result["ci95"][1],
                     "n": result["n"], "backbone": result.get("backbone", "")})
long = pd.DataFrame(rows)
atomic_write_text(snakemake.output[0], long.to_csv(index=False))
log.info("sweep %s: %d values, %d rows", snakemake.wildcards.sweep, len(snakemake.params.members), len(long))
