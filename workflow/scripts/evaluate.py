"""Evaluate one method's image set for one task: metrics.json plus per-item values."""
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ipbench.evaluation import PER_ITEM_METRICS, SET_METRICS, groups_by_item, set_metric_fn
from ipbench.io import atomic_write_json, atomic_write_text, read_jsonl
from ipbench.jobs import resolve_device, start_job
from ipbench.tasks import TASKS, check_task_metrics
from metrics import stats
from metrics.fid import load_features
from metrics.images import load_rgb

log = start_job(snakemake)
torch.set_num_threads(snakemake.threads)
wc = snakemake.wildcards
task = TASKS[wc.task]
options = snakemake.params.options
boot = options.get("bootstrap", {})
device = resolve_device(snakemake.params.device)
data_dir = Path(snakemake.input.data)
image_dir = Path(snakemake.input.manifest).parent
manifest = read_jsonl(snakemake.input.manifest)
truth = {item["id"]: item.get("truth", {}) for item in read_jsonl(data_dir / "items.jsonl")}
wanted = snakemake.params.metrics
# A task without image prompts (text2image) must never reach the metrics that compare with one.
check_task_metrics(wc.task, wanted)
results = {}

if any(m in wanted for m in SET_METRICS):
    generated = load_features(snakemake.input.features)
    reference = load_features(snakemake.input.reference_features)
    items, groups = groups_by_item(list(generated["ids"]), manifest)
    for name in (m for m in SET_METRICS if m in wanted):
        value = set_metric_fn(name, options, fast=False)(generated["features"], reference["features"])
        lo, hi = stats.bootstrap_set_ci(set_metric_fn(name, options, fast=True),
                                        [generated["features"][g] for g in groups], reference["features"],
                                        n_boot=boot.get("set_resamples", 200), seed=boot.get("seed", 0))
        results[name] = {"value": float(value), "ci95": [float(lo), float(hi)], "n": len(generated["ids"]),
                         "n_items": len(items), "n_reference": len(reference["ids"]),
                         "backbone": generated["info"]["backbone"],
                         "convention": "clean-fid protocol: uint8 RGB, PIL bicubic resize to 299, "
                                       "(x-128)/128, float64 statistics"
                                       + (", unbiased cubic-kernel MMD over subsets" if name == "kid" else "")}
        log.info("%s = %.6g [%.6g, %.6g]", name, value, lo, hi)

per_image = pd.DataFrame({"item_id": [row["item_id"] for row in manifest]})
images = [load_rgb(image_dir / row["path"]).array for row in manifest]
_prompt_cache = {}


def prompt_images(row):
    """The item's image prompts, decoded once per item."""
    if row["item_id"] not in _prompt_cache:
        _prompt_cache[row["item_id"]] = [load_rgb(data_dir / p).array for p in task.prompt_images(row["condition"])]
    return _prompt_cache[row["item_id"]]


def resized_to(image, shape):
    from PIL import Image

    if image.shape == shape:
        return image
    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.Resampling.BICUBIC))


details = {}
if "lpips" in wanted:
    from metrics.lpips_metric import LPIPS_NAMES, lpips_distances

    net = options.get("lpips", {}).get("net", "alex")
    prompts = [prompt_images(row)[0] for row in manifest]
    resized = sum(g.shape != p.shape for g, p in zip(images, prompts))
    per_image["lpips"] = lpips_distances([resized_to(g, p.shape) for g, p in zip(images, prompts)], prompts,
                                         net=net, device=device)
    details["lpips"] = {"backbone": LPIPS_NAMES[net],
                        "convention": "LPIPS v0.1 (generated, image prompt); generated resized to the prompt's "
                                      f"size with PIL bicubic where they differ ({resized} images)"}

if "clip_i" in wanted or "clip_t" in wanted:
    from metrics.backbones import load_backbone
    from metrics.clip_scores import CONVENTIONS, apply_convention, clip_t, mean_pairwise

    spec = snakemake.params.clip_backbone
    if not spec:
        raise ValueError(f"task {wc.task} asks for CLIP metrics but config key metrics.clip.backbone is not set")
    convention = options.get("clip", {}).get("convention", "cosine")
    backbone = load_backbone(spec, device=device)
    generated_emb = backbone.encode_images(images)
    if "clip_i" in wanted:
        # DreamBench: mean cosine between a generated image and each of its item's real images.
        ref_emb = {item: backbone.encode_images(prompt_images(row))
                   for item, row in {row["item_id"]: row for row in manifest}.items()}
        cosines = [float(mean_pairwise(g[None], ref_emb[row["item_id"]])[0])
                   for g, row in zip(generated_emb, manifest)]
        per_image["clip_i"] = apply_convention(np.asarray(cosines), convention)
        details["clip_i"] = {"backbone": backbone.name,
                             "convention": CONVENTIONS[convention] + "; mean over the item's image prompts"}
    if "clip_t" in wanted:
        per_image["clip_t"] = clip_t(generated_emb, backbone.encode_texts([r["condition"]["prompt"] for r in manifest]),
                                     convention)
        details["clip_t"] = {"backbone": backbone.name, "convention": CONVENTIONS[convention]}

if "attributes" in wanted:
    from metrics.world import attribute_scores

    shape_reader = None
    if snakemake.input.get("shape_cnn"):
        from ipbench.world.shape_cnn import load_shape_cnn, predict

        shape_cnn = load_shape_cnn(snakemake.params.shape_cnn_dir, device)
        shape_reader = lambda batch: predict(shape_cnn, batch)[:2]  # noqa: E731
    scores = attribute_scores(images, [truth[row["item_id"]]["attributes"] for row in manifest], shape_reader)
    for column in scores.columns:
        per_image[column] = scores[column].to_numpy()

if "subject_iou" in wanted or "colour_error" in wanted:
    from metrics.world import subject_fidelity

    fidelity = subject_fidelity(images, [prompt_images(row) for row in manifest])
    for column in ("subject_iou", "colour_error"):
        if column in wanted:
            per_image[column] = fidelity[column].to_numpy()

analyzer_info = {"backbone": "mini-world analyzers (ipbench.world.analyze)",
                 "convention": "read back from the image, compared with the item's ground truth"}
per_item = per_image.groupby("item_id", sort=True).mean()
for name in (c for c in per_item.columns if c in PER_ITEM_METRICS):
    values = per_item[name].dropna().to_numpy(dtype=np.float64)
    if len(values) < 2:
        log.warning("%s: fewer than 2 items with a value; not reported", name)
        continue
    lo, hi = stats.bootstrap_mean_ci(values, n_boot=boot.get("resamples", 1000), seed=boot.get("seed", 0))
    results[name] = {"value": float(values.mean()), "ci95": [float(lo), float(hi)],
                     "n": int(per_image[name].notna().sum()), "n_items": len(values),
                     **details.get(name, analyzer_info)}
    log.info("%s = %.6g [%.6g, %.6g]", name, values.mean(), lo, hi)

atomic_write_text(snakemake.output.per_item, per_item.reset_index().to_csv(index=False))
atomic_write_json(snakemake.output.metrics, {"task": wc.task, "method": wc.method, "metrics": results,
                                             "protocol": {"name": f"ipbench/{wc.task}", "version": 1}})
