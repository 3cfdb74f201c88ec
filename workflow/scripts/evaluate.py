"""Evaluate one method's image set for one task: metrics.json plus per-item values."""
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ipbench.evaluation import PER_ITEM_METRICS, SET_METRICS, groups_by_item, set_metric_fn
from ipbench.io import atomic_write_json, atomic_write_text, read_jsonl
from ipbench.jobs import resolve_device, start_job
from metrics import stats
from metrics.fid import load_features
from metrics.images import load_rgb

log = start_job(snakemake)
torch.set_num_threads(snakemake.threads)
wc = snakemake.wildcards
options = snakemake.params.options
boot = options.get("bootstrap", {})
device = resolve_device(snakemake.params.device)
data_dir = Path(snakemake.input.data)
image_dir = Path(snakemake.input.manifest).parent
manifest = read_jsonl(snakemake.input.manifest)
wanted = snakemake.params.metrics
results = {}


def _resized_to(image: np.ndarray, shape) -> np.ndarray:
    from PIL import Image

    if image.shape == shape:
        return image
    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.Resampling.BICUBIC))


if any(m in wanted for m in SET_METRICS):
    generated = load_features(snakemake.input.features)
    reference = load_features(snakemake.input.reference_features)
    items, groups = groups_by_item(list(generated["ids"]), manifest)
    for name in (m for m in SET_METRICS if m in wanted):
        value = set_metric_fn(name, options, fast=False)(generated["features"], reference["features"])
        fast = set_metric_fn(name, options, fast=True)
        lo, hi = stats.bootstrap_set_ci(fast, [generated["features"][g] for g in groups], reference["features"],
                                        n_boot=boot.get("set_resamples", 200), seed=boot.get("seed", 0))
        results[name] = {"value": float(value), "ci95": [float(lo), float(hi)], "n": len(generated["ids"]),
                         "n_items": len(items), "n_reference": len(reference["ids"]),
                         "backbone": generated["info"]["backbone"],
                         "convention": "clean-fid protocol: uint8 RGB, PIL bicubic resize to 299, "
                                       "(x-128)/128, float64 statistics"
                                       + (", unbiased cubic-kernel MMD over subsets" if name == "kid" else "")}
        log.info("%s = %.6g [%.6g, %.6g]", name, value, lo, hi)

per_image = pd.DataFrame({"item_id": [row["item_id"] for row in manifest]})
generated_images = [load_rgb(image_dir / row["path"]).array for row in manifest]
prompts = [load_rgb(data_dir / row["condition"]["image"]).array for row in manifest]
resized = sum(g.shape != p.shape for g, p in zip(generated_images, prompts))
details = {}

if "lpips" in wanted:
    from metrics.lpips_metric import LPIPS_NAMES, lpips_distances

    net = options.get("lpips", {}).get("net", "alex")
    per_image["lpips"] = lpips_distances([_resized_to(g, p.shape) for g, p in zip(generated_images, prompts)],
                                         prompts, net=net, device=device)
    details["lpips"] = {"backbone": LPIPS_NAMES[net],
                        "convention": "LPIPS v0.1 (generated, image prompt); generated resized to the prompt's "
                                      f"size with PIL bicubic where they differ ({resized} images)"}

if "clip_i" in wanted or "clip_t" in wanted:
    from metrics.backbones import load_backbone
    from metrics.clip_scores import CONVENTIONS, clip_i, clip_t

    spec = options.get("clip", {}).get("backbone")
    if not spec:
        raise ValueError(f"task {wc.task} asks for CLIP metrics but config key metrics.clip.backbone is not set")
    convention = options.get("clip", {}).get("convention", "cosine")
    backbone = load_backbone(spec, device=device)
    generated_emb = backbone.encode_images(generated_images)
    if "clip_i" in wanted:
        per_image["clip_i"] = clip_i(generated_emb, backbone.encode_images(prompts), convention)
        details["clip_i"] = {"backbone": backbone.name, "convention": CONVENTIONS[convention]}
    if "clip_t" in wanted:
        captions = [row["condition"]["prompt"] for row in manifest]
        per_image["clip_t"] = clip_t(generated_emb, backbone.encode_texts(captions), convention)
        details["clip_t"] = {"backbone": backbone.name, "convention": CONVENTIONS[convention]}

per_item = per_image.groupby("item_id", sort=True).mean()
for name in (m for m in PER_ITEM_METRICS if m in wanted):
    values = per_item[name].to_numpy(dtype=np.float64)
    lo, hi = stats.bootstrap_mean_ci(values, n_boot=boot.get("resamples", 1000), seed=boot.get("seed", 0))
    results[name] = {"value": float(values.mean()), "ci95": [float(lo), float(hi)], "n": len(per_image),
                     "n_items": len(values), **details[name]}
    log.info("%s = %.6g [%.6g, %.6g]", name, values.mean(), lo, hi)

atomic_write_text(snakemake.output.per_item, per_item.reset_index().to_csv(index=False))
atomic_write_json(snakemake.output["metrics"], {"task": wc.task, "method": wc.method, "metrics": results,
                                                "protocol": {"name": f"ipbench/{wc.task}", "version": 1}})
