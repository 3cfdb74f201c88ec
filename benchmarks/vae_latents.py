"""Which latent size keeps every attribute? Trains the mini SD's VAE at other latent channel counts.

Runs the same training job as the DAG's ``vae`` artifact (``ipbench.world.train_jobs.vae``: same
settings, train set and final measurement on fresh renders), changing only ``latent_channels``;
the models are scratch (the shipped VAE is the DAG's). Prints one JSON line per latent size.
Usage: python benchmarks/vae_latents.py --train-set results/mini/world/train_set.npz --channels 4 8 [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipbench import provenance  # noqa: E402
from ipbench.training.registry import available_artifacts, merged_settings  # noqa: E402
from ipbench.world.train_jobs import vae  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-set", required=True)
    parser.add_argument("--channels", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--shape-cnn", default="data/checkpoints/shape_cnn")
    parser.add_argument("--out", help="also write the results here (JSON)")
    args = parser.parse_args()
    configured = yaml.safe_load(Path(args.config).read_text()).get("training", {}).get("vae")
    results = {"device": provenance.device_info(), "runs": []}
    for channels in args.channels:
        settings = merged_settings(available_artifacts()["vae"], configured)
        settings["architecture"] = {**settings["architecture"], "latent_channels": channels}
        with tempfile.TemporaryDirectory() as scratch:
            started = time.time()
            record = vae(Path(scratch), {"train_set": args.train_set, "shape_cnn": args.shape_cnn}, settings,
                         args.device, threads=4)
        run = {"latent_channels": channels, "seconds": round(time.time() - started, 1),
               "stopped_at_step": record["stopped_at_step"], "settings": settings, "validation": record["validation"]}
        results["runs"].append(run)
        print(json.dumps(run), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
