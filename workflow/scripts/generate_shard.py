from pathlib import Path

import torch

from ipbench.imageset import plan_batches, requests_for, shard_batches, write_shard
from ipbench.io import read_jsonl
from ipbench.jobs import check_device, start_job
from ipbench.training.loop import progress_bar
from methods import get_method

log = start_job(snakemake)
wc, params = snakemake.wildcards, snakemake.params
data_dir = Path(snakemake.input.data)
method_class = get_method(params.method_class)
device = check_device(params.device) if method_class.uses_gpu else "cpu"
torch.set_num_threads(snakemake.threads)
batches = plan_batches(read_jsonl(data_dir / "items.jsonl"), params.batch_size, method_class.group_by)
mine = shard_batches(batches, int(wc.shard), params.shards, method_class.group_by)
method = method_class(Path(snakemake.input.prepared).parent, params.params, device, key=f"methods.{wc.method}.params")
requests, images = [], []
log.info("%s: %d batches (%d items) for shard %s of task %s on %s", wc.method, len(mine),
         sum(map(len, mine)), wc.shard, wc.task, device)
bar = progress_bar(sum(map(len, mine)), f"{wc.method} {wc.task} shard {wc.shard}")
for batch in mine:
    batch_requests = requests_for(params.suite, wc.task, batch, params.samples)
    requests += batch_requests
    images += method.generate(batch_requests, data_dir)
    bar.update(len(batch))
bar.close()
out = Path(snakemake.output[0])
write_shard(out, out.name, requests, images, extra={"method": wc.method})
