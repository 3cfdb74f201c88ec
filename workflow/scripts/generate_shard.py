from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ipbench.imageset import generate_shard, png_bytes, write_shard
from ipbench.io import read_jsonl
from ipbench.jobs import check_device, start_job
from ipbench.training.loop import progress_bar
from methods import get_method

log = start_job(snakemake)
wc, params = snakemake.wildcards, snakemake.params
plan = params.plan
data_dir = Path(snakemake.input.data)
method_class = get_method(params.method_class)
device = check_device(params.device) if method_class.uses_gpu else "cpu"
torch.set_num_threads(snakemake.threads)
method = method_class(Path(snakemake.input.prepared).parent, params.params, device, key=f"methods.{wc.method}.params")
items = read_jsonl(data_dir / "items.jsonl")
log.info("%s: shard %s of %d, task %s, batches of %d items, on %s", wc.method, wc.shard, plan["shards"], wc.task,
         plan["batch_size"], device)
bar = progress_bar(len(items), f"{wc.method} {wc.task} shard {wc.shard} (items of all shards)")
# PNG encoding (zlib releases the GIL) runs in threads while the next batch generates: at 512 px one
# core encodes about 17 images/s, so done after generation it would idle a GPU for minutes per shard.
encoder, pngs = ThreadPoolExecutor(max(1, snakemake.threads)), []


def batch_done(n_items, batch_images):
    bar.update(n_items)
    pngs.extend(encoder.submit(png_bytes, image) for image in batch_images)


requests, images = generate_shard(method, items, suite=plan["suite"], task=wc.task, samples=plan["samples"],
                                  batch_size=plan["batch_size"], shard=int(wc.shard), n_shards=plan["shards"],
                                  data_dir=data_dir, on_batch=batch_done)
bar.close()
out = Path(snakemake.output[0])
write_shard(out, out.name, requests, images, extra={"method": wc.method}, pngs=pngs)
encoder.shutdown()
log.info("%d images", len(images))
