from pathlib import Path

from ipbench.imageset import requests_for, shard_of, write_shard
from ipbench.io import read_jsonl
from ipbench.jobs import resolve_device, start_job
from methods import get_method

log = start_job(snakemake)
wc = snakemake.wildcards
data_dir = Path(snakemake.input.data)
items = shard_of(read_jsonl(data_dir / "items.jsonl"), int(wc.shard), snakemake.params.shards)
requests = requests_for(snakemake.params.suite, wc.task, items, snakemake.params.samples)
method_class = get_method(snakemake.params.method_class)
device = resolve_device(snakemake.params.device) if method_class.uses_gpu else "cpu"
if method_class.uses_gpu:
    import torch

    torch.set_num_threads(snakemake.threads)  # CPU fallback: one process per shard, no oversubscription
method = method_class(Path(snakemake.input.prepared).parent, snakemake.params.params, device)
log.info("%s: %d requests for shard %s of task %s on %s", wc.method, len(requests), wc.shard, wc.task, device)
images = method.generate(requests, data_dir)
out = Path(snakemake.output[0])
write_shard(out, out.name, requests, images, extra={"method": wc.method})
