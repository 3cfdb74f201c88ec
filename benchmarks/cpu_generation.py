"""Generation throughput of diffusers methods through the harness path (planned batches, one generator per request).

Assembles the mini SD from the shipped checkpoints, then generates at several batch sizes and thread
counts, as the generate_shard rule does, and prints images/s for each and for the whole machine (shards
run as separate single-threaded processes). ``sd_text`` draws held-out captions; the image-prompted
methods (``sdedit``, ``reference_attn``, at their default params) draw mini-world ``variation`` items.
Timing only: no image is kept.
Usage: python benchmarks/cpu_generation.py [--methods sd_text sdedit] [--n 32] [--batch-sizes 1 16] [--steps 20]
       [--cfg 5]
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

from ipbench import datasets  # noqa: E402
from ipbench.imageset import generate_shard  # noqa: E402
from ipbench.io import read_jsonl  # noqa: E402
from ipbench.world.pipeline import assemble_pipeline  # noqa: E402
from ipbench.world.render import caption, held_out_scenes  # noqa: E402
from methods import get_method  # noqa: E402


def task_items(method_cls, n: int, scratch: Path) -> tuple[str, list[dict], Path]:
    """(task, items, data_dir): held-out captions for a text2image method, else mini-world variation items."""
    if "text2image" in method_cls.tasks:
        return "text2image", [{"id": f"c{k:04d}", "condition": {"prompt": caption(scene)}}
                              for k, scene in enumerate(held_out_scenes(n, seed=7))], scratch
    data_dir = scratch / "variation"
    if not data_dir.is_dir():
        datasets.build("mini_world", "variation", data_dir, n_items=n, n_real=0, seed=7)
    return "variation", read_jsonl(data_dir / "items.jsonl"), data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["sd_text"], help="registered diffusers methods")
    parser.add_argument("--n", type=int, default=32, help="items per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--checkpoints", default="data/checkpoints")
    args = parser.parse_args()
    results = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "n": args.n,
               "steps": args.steps, "guidance_scale": args.cfg, "torch": torch.__version__, "runs": []}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        ckpt = Path(args.checkpoints)
        pipe_dir = assemble_pipeline(scratch / "mini_sd", ckpt / "vae", ckpt / "unet", ckpt / "cond_clip")
        params = {"pretrained": str(pipe_dir), "num_inference_steps": args.steps, "guidance_scale": args.cfg}
        for name in args.methods:
            method_cls = get_method(name)
            task, items, data_dir = task_items(method_cls, args.n, scratch)
            for threads in args.threads:
                torch.set_num_threads(threads)
                for batch_size in args.batch_sizes:
                    method = method_cls(scratch, params, "cpu")
                    generate_shard(method, items[:batch_size], suite="bench", task=task, samples=1,
                                   batch_size=batch_size, shard=0, n_shards=1, data_dir=data_dir)  # warm-up
                    started = time.perf_counter()
                    generate_shard(method, items, suite="bench", task=task, samples=1, batch_size=batch_size,
                                   shard=0, n_shards=1, data_dir=data_dir)
                    seconds = time.perf_counter() - started
                    run = {"method": name, "threads": threads, "batch_size": batch_size, "seconds": round(seconds, 2),
                           "images_per_second": round(args.n / seconds, 3)}
                    results["runs"].append(run)
                    print(json.dumps(run), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
