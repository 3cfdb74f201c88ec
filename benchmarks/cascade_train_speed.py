"""Training speed of the IF cascade's stages (``cascade.train_stage``): steps/s, samples/s and TFLOP/s per setting.

The first H200 runs trained these UNets at about 30 TFLOP/s (FLOPs counted by FlopCounterMode), far
below the card: this script runs the real training function on a small rendered set for each setting
(memory format, cuDNN autotuning, torch.compile, batch size) alone on the device, then profiles the
fastest and prints its costliest kernels. Step times leave out the first 10 steps (autotuning, the
compile), whose cost is reported apart. Timings only: the trained weights are discarded.

    python3 benchmarks/cascade_train_speed.py --device cuda          # about 3 minutes on an H200
    python3 benchmarks/cascade_train_speed.py --device cpu --dry     # the code path, tiny and quick
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipbench import provenance  # noqa: E402
from ipbench.world import cascade  # noqa: E402
from ipbench.world.train_data import render_training_set  # noqa: E402


def stage_flops(stage: str, width: int, batch: int) -> float:
    """FLOPs of one forward and backward of the stage's UNet on ``batch`` samples (counted, not assumed)."""
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    config = (cascade.base_unet_config if stage == "base" else cascade.sr_unet_config)(width)
    unet = UNet2DConditionModel(**config)
    size, channels = config["sample_size"], config["in_channels"]
    extra = {"class_labels": torch.zeros(2, dtype=torch.long)} if stage == "sr" else {}
    with FlopCounterMode(display=False) as counter:
        unet(torch.randn(2, channels, size, size), torch.zeros(2, dtype=torch.long),
             encoder_hidden_states=torch.randn(2, 77, width), **extra).sample.sum().backward()
    return counter.get_total_flops() / 2 * batch


def run(stage, data, text_dir, device, batch, channels_last, autotune, steps, scratch, compile=False) -> dict:
    torch.backends.cudnn.benchmark = autotune
    started = time.perf_counter()
    record = cascade.train_stage(Path(scratch) / f"{stage}_{batch}_{channels_last}_{autotune}_{compile}", stage,
                                 text_dir, data, steps=steps, batch_size=batch, device=device,
                                 channels_last=channels_last, log_every=steps, compile=compile)
    per_step = record["steady_seconds_per_step"] or record["seconds_per_step"]
    return {"stage": stage, "batch_size": batch, "channels_last": channels_last, "cudnn_benchmark": autotune,
            "compile": compile, "steps": steps, "seconds_per_step": per_step, "samples_per_s": batch / per_step,
            "first_steps_extra_s": record["train_seconds"] - per_step * record["stopped_at_step"],
            "wall_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--n-images", type=int, default=4096)
    parser.add_argument("--text-encoder", default="data/checkpoints/t5_text")
    parser.add_argument("--out", default=os.environ.get("OUT", "benchmarks/records"))
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="leave out the torch.compile rows")
    parser.add_argument("--dry", action="store_true", help="tiny set, 12 steps, small batches, no compile")
    args = parser.parse_args()
    steps, batches, n_images = (12, (8,), 64) if args.dry else (args.steps, (512, 2048), args.n_images)
    args.compile = args.compile and not args.dry
    data = render_training_set(n_images, "train", seed=0, workers=min(8, os.cpu_count() or 1))
    width = json.loads((Path(args.text_encoder) / "config.json").read_text())["d_model"]
    results = {"device": provenance.device_info(), "torch": torch.__version__, "rows": []}
    out = Path(args.out) / "cascade_train_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        settings = [(stage, batches[0], cl, tune) for stage in ("base", "sr") for cl in (False, True)
                    for tune in (False, True)]
        for stage, batch, channels_last, autotune in settings:
            row = run(stage, data, args.text_encoder, args.device, batch, channels_last, autotune, steps, scratch)
            row["tflop_per_s"] = stage_flops(stage, width, batch) / row["seconds_per_step"] / 1e12
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
            out.write_text(json.dumps(results, indent=2))
        for stage in ("base", "sr"):
            best = max((r for r in results["rows"] if r["stage"] == stage), key=lambda r: r["samples_per_s"])
            compiled = [(batches[0], True)] if args.compile else []
            for batch, compile in compiled + [(batch, False) for batch in batches[1:]]:
                row = run(stage, data, args.text_encoder, args.device, batch, best["channels_last"],
                          best["cudnn_benchmark"], steps, scratch, compile)
                row["tflop_per_s"] = stage_flops(stage, width, batch) / row["seconds_per_step"] / 1e12
                results["rows"].append(row)
                print(json.dumps(row), flush=True)
                out.write_text(json.dumps(results, indent=2))
            activities = [torch.profiler.ProfilerActivity.CPU] + (
                [torch.profiler.ProfilerActivity.CUDA] if torch.device(args.device).type == "cuda" else [])
            with torch.profiler.profile(activities=activities) as profiler:
                run(stage, data, args.text_encoder, args.device, batches[0], best["channels_last"],
                    best["cudnn_benchmark"], max(steps // 6, 2), scratch)
            sort = "self_cuda_time_total" if len(activities) > 1 else "self_cpu_time_total"
            table = profiler.key_averages().table(sort_by=sort, row_limit=25)
            (Path(args.out) / f"cascade_train_profile_{stage}.txt").write_text(table)
            print(table[:6000], flush=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
