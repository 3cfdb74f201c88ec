"""Training throughput of the mini Stable Diffusion at the configured sizes (steps/s, images/s).

Runs a few steps of ``train_vae`` and ``train_unet`` on a small rendered set
(random-weight VAE for the UNet run: speed only, the outputs are discarded).
Usage: python benchmarks/train_speed.py [--device cuda] [--steps 200] [--config config/config.yaml]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipbench import provenance  # noqa: E402
from ipbench.training.registry import available_artifacts, merged_settings  # noqa: E402
from ipbench.world.mini_sd import train_unet, train_vae, unet_config, vae_config  # noqa: E402
from ipbench.world.train_data import render_training_set  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n-images", type=int, default=4096)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--clip", default="data/checkpoints/cond_clip")
    args = parser.parse_args()
    configured = yaml.safe_load(Path(args.config).read_text()).get("training", {})
    data = render_training_set(args.n_images, "train", seed=0, workers=8)
    results = {"device": provenance.device_info(), "steps": args.steps}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        latent_channels = None
        for name in ("vae", "unet"):
            settings = merged_settings(available_artifacts()[name], configured.get(name))
            architecture = settings.pop("architecture")
            training = {key: value for key, value in settings.items()
                        if key not in ("steps", "time_limit_s", "seed", "evaluation")}
            if name == "vae":
                latent_channels = architecture.get("latent_channels", 4)
                record = train_vae(scratch / "vae", data, steps=args.steps, device=args.device,
                                   config=vae_config(**architecture), **training)
            else:
                from transformers import CLIPConfig

                width = CLIPConfig.from_pretrained(args.clip).text_config.hidden_size
                record = train_unet(scratch / "unet", scratch / "vae", args.clip, data, steps=args.steps,
                                    device=args.device, config=unet_config(width, latent_channels=latent_channels,
                                                                          **architecture), **training)
            results[name] = {"parameters": record["parameters"], "batch_size": record["batch_size"],
                             "seconds_per_step": record["seconds_per_step"],
                             "images_per_second": record["batch_size"] / record["seconds_per_step"]}
            print(name, json.dumps(results[name]), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
