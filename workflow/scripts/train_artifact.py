"""Train one artifact (a world model or a method's weights, optionally for one subject) and write its manifest."""
import time
from pathlib import Path

import torch

from ipbench.io import atomic_directory
from ipbench.jobs import check_device, start_job
from ipbench.training.manifest import write_manifest
from ipbench.training.registry import available_artifacts


def main(snakemake):
    log = start_job(snakemake)
    name = snakemake.wildcards.artifact
    subject = snakemake.wildcards.get("subject")
    artifact = available_artifacts()[name]
    device = check_device(snakemake.params.device)
    torch.set_num_threads(snakemake.threads)
    settings = dict(snakemake.params.settings)
    inputs = dict(snakemake.params.inputs)
    out_dir = Path(snakemake.output[0]).parent
    log.info("training %s%s on %s with %s", name, f" for {subject}" if subject else "", device, settings)
    started = time.time()
    # Trained into a temporary sibling, renamed when the manifest is written: a killed job leaves no model.
    with atomic_directory(out_dir) as tmp:
        record = artifact.train_function()(tmp, inputs, dict(settings), device, subject=subject,
                                           threads=snakemake.threads)
        seconds = time.time() - started
        write_manifest(tmp, name, record, inputs=inputs, settings=settings, subject=subject, seconds=seconds,
                       config_sha256=snakemake.params.config_sha256, repo=Path(snakemake.scriptdir).parents[1])
    log.info("%s trained in %.1f s: %s", name, seconds, record.get("validation"))


# Spawned worker processes re-import this file: only the parent runs the job.
if __name__ == "__main__":
    main(snakemake)
