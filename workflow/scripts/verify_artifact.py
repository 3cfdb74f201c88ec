"""Check every file of a shipped artifact against its manifest before anything uses it."""
from pathlib import Path

from ipbench.jobs import start_job
from ipbench.training.manifest import write_verified

log = start_job(snakemake)
manifest = write_verified(Path(snakemake.output[0]), Path(snakemake.input[0]).parent, snakemake.wildcards.artifact)
for file, digest in sorted(manifest["files"].items()):
    log.info("ok %s %s", file, digest)
