import json
from pathlib import Path

from ipbench import provenance
from ipbench.io import atomic_write_json
from ipbench.jobs import start_job
from metrics.inception import inception_path
from metrics.weights import sha1_file, sha256_file

log = start_job(snakemake)
repo = Path(snakemake.scriptdir).parents[1]
weights = {"inception": {"file": str(inception_path()), "sha1": sha1_file(inception_path()),
                         "sha256": sha256_file(inception_path())}}
for record in sorted(Path("data/weights").glob("lpips_*.pt")):
    weights[record.stem] = {"file": str(record), "sha256": sha256_file(record)}
record = {
    "suite": snakemake.params.config["suite"],
    "config": snakemake.params.config,
    "config_sha256": provenance.config_hash(snakemake.params.config),
    "git": provenance.git_state(repo),
    # sha256 of the project code each job kind behind a table ran (ipbench/code_digest.py), per task.
    "code_digests": snakemake.params.code_digests,
    "packages": provenance.package_versions(),
    "weights": weights,
    "methods": {Path(p).parent.name: json.loads(Path(p).read_text()) for p in snakemake.input.prepared},
    "device": provenance.device_info(),
}
atomic_write_json(snakemake.output[0], record)
log.info("provenance written for commit %s", record["git"]["commit"])
