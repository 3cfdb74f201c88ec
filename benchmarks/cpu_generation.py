"""Generation throughput of ``sd_text`` through the harness path (planned batches, one seeded generator per request).

Assembles the mini SD from the shipped checkpoints, then generates the same captions at several
batch sizes and thread counts, as the generate_shard rule does, and prints images/s for each and for the
whole machine (shards run as separate single-threaded processes). Timing only: no image is kept.
Usage: python benchmarks/cpu_generation.py [--n 32] [--batch-sizes 1 16] [--steps 20] [--cfg 5]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ipbench.imageset import generate_shard  # noqa: E402
from ipbench.world.mini_sd import assemble_pipeline  # noqa: E402
from ipbench.world.render import caption, held_out_scenes  # noqa: E402
from methods.sd_text import SDText  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="captions per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--checkpoints", default="data/checkpoints")
    args = parser.parse_args()
    items = [{"id": f"c{k:04d}", "condition": {"prompt": caption(scene)}}
             for k, scene in enumerate(held_out_scenes(args.n, seed=7))]
    results = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "n": args.n,
               "steps": args.steps, "guidance_scale": args.cfg, "torch": torch.__version__, "runs": []}
    with tempfile.TemporaryDirectory() as scratch:
        ckpt = Path(args.checkpoints)
        pipe_dir = assemble_pipeline(Path(scratch) / "mini_sd", ckpt / "vae", ckpt / "unet", ckpt / "cond_clip")
        params = {"pretrained": str(pipe_dir), "num_inference_steps": args.steps, "guidance_scale": args.cfg}
        for threads in args.threads:
            torch.set_num_threads(threads)
            for batch_size in args.batch_sizes:
                method = SDText(Path(scratch), params, "cpu")
                generate_shard(method, items[:batch_size], suite="bench", task="text2image", samples=1,
                               batch_size=batch_size, shard=0, n_shards=1, data_dir=Path(scratch))  # warm-up
                started = time.perf_counter()
                generate_shard(method, items, suite="bench", task="text2image", samples=1, batch_size=batch_size,
                               shard=0, n_shards=1, data_dir=Path(scratch))
                seconds = time.perf_counter() - started
                run = {"threads": threads, "batch_size": batch_size, "seconds": round(seconds, 2),
                       "images_per_second": round(args.n / seconds, 3)}
                results["runs"].append(run)
                print(json.dumps(run), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
