import platform
from pathlib import Path

from ipbench.io import atomic_write_json
from ipbench.jobs import start_job
from methods import get_method

log = start_job(snakemake)
method = snakemake.wildcards.method
out_dir = Path(snakemake.output[0]).parent
cls = get_method(snakemake.params.method_class)
settings = cls.check(snakemake.params.params, f"methods.{method}.params")
facts = cls.prepare(out_dir, settings)
log.info("prepared %s: %s", method, facts)
atomic_write_json(snakemake.output[0], {"method": method, "method_class": snakemake.params.method_class,
                                        "params": snakemake.params.params, "host": platform.node(), **facts})
