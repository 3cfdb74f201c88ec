"""One continued segment of an IF cascade stage with changed settings, beside the DAG's training job.

The DAG's job continues a stage from its shipped weights with the config's settings; this script trains
the same segment (same shipped start, seed, batches and schedule, on the train set that job builds) with
the settings named by ``--set`` changed, and runs the manifest's evaluation on it, so the two segments
compare on equal terms. A measurement, not an artifact: the weights are written to ``--out`` for
inspection and are not shipped. Two it has measured (docs/if-cascade.md):

- ``--set min_snr_gamma=null``, the plain v-loss. Min-SNR-gamma weighting with v-prediction weights a
  sample's x0 error by min(SNR, gamma), so the high-noise timesteps, where the sampler lays out the image,
  get almost no weight (at t = 950 of the cosine schedule, SNR 0.006); the plain v-loss weights it by
  SNR + 1 (Imagen's v-prediction, Salimans & Ho 2022).
- ``--set lr=0.0002``, a lower peak learning rate for a stage whose segments level off.

    python3 benchmarks/cascade_segment.py --stage if_base --set lr=0.0002 --out $OUT/segment   # beside the DAG's job
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ipbench import provenance  # noqa: E402
from ipbench.world import cascade  # noqa: E402
from ipbench.world.train_data import load_npz  # noqa: E402

TEXT_ENCODERS = {"if_base": "t5_text", "if_sr": "t5_text", "if_base_clip": "cond_clip", "if_sr_clip": "cond_clip"}


def wait_for(path: Path, timeout_s: float) -> None:
    """The DAG's job builds the train set; wait for its atomic rename rather than render it twice."""
    deadline = time.time() + timeout_s
    while not path.is_file():
        if time.time() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout_s:.0f} s")
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=sorted(TEXT_ENCODERS), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--train-set", type=Path, default=REPO / "results" / "mini" / "world" / "train_set.npz")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="a training setting to change (VALUE in YAML: 0.0002, null); repeatable")
    parser.add_argument("--n-test", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None, help="default: the config's")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    from methods.if_cascade import STAGE_DEFAULTS

    stage = "base" if "base" in args.stage else "sr"
    settings = {**STAGE_DEFAULTS, **yaml.safe_load(args.config.read_text())["training"][args.stage]}
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in settings or key in ("init_from", "evaluation"):
            parser.error(f"--set {item!r}: expected KEY=VALUE with KEY one of a stage's training settings "
                         f"({', '.join(sorted(set(settings) - {'init_from', 'evaluation'}))})")
        overrides[key] = yaml.safe_load(value)
    settings.update(overrides)
    for key in ("init_from", "evaluation") + (("max_noise_level",) if stage == "base" else ()):
        settings.pop(key)
    settings["steps"] = args.steps or settings["steps"]
    settings["time_limit_s"] = None  # the call's deadline ($IPBENCH_TRAIN_DEADLINE) stops it, as the DAG job's
    checkpoints = REPO / "data" / "checkpoints"
    wait_for(args.train_set, 300)
    data = load_npz(args.train_set, workers=4)
    text_dir = checkpoints / TEXT_ENCODERS[args.stage]
    record = cascade.train_stage(args.out / "unet", stage, text_dir, data, device=args.device,
                                 init_dir=checkpoints / args.stage, **settings)
    validation = cascade.evaluate_stage(args.out / "unet", text_dir, checkpoints / "shape_cnn", device=args.device,
                                        n=args.n_test, guidance_scales=(4.0,), thresholding=(True,))
    report = {"stage": args.stage, "overrides": overrides, "settings": settings,
              "training": {k: v for k, v in record.items() if k != "history"}, "history": record["history"],
              "validation": validation, "git": provenance.git_state(REPO), "device": provenance.device_info(),
              "packages": provenance.package_versions()}
    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({"training": report["training"], "validation": validation}, indent=2, default=str))


if __name__ == "__main__":
    main()
