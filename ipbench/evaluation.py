"""Scoring one image set: every configured metric of its task, with bootstrap CIs over items.

Set metrics (FID, KID) compare a method's whole image set with the task's real
image set; per-image metrics are averaged over an item's samples first, so every
item weighs the same and the bootstrap resamples items.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ipbench.io import read_jsonl
from ipbench.tasks import TASKS, check_task_metrics, metric_registry
from metrics import stats
from metrics.image_metrics import Inputs
from metrics.images import load_rgb, verified_paths

log = logging.getLogger("ipbench.evaluation")


def groups_by_item(ids: list[str], manifest: list[dict]) -> tuple[list[str], list[np.ndarray]]:
    """Row indices of a feature matrix grouped by item, via the manifest's paths."""
    item_of_path = {row["path"]: row["item_id"] for row in manifest}
    missing = [path for path in ids if path not in item_of_path]
    if missing:
        raise ValueError(f"features name images that the manifest does not list, e.g. {missing[:3]}")
    order: dict[str, list[int]] = {}
    for index, path in enumerate(ids):
        order.setdefault(item_of_path[path], []).append(index)
    items = sorted(order)
    return items, [np.asarray(order[item]) for item in items]


def set_value(metric_name: str, options: dict, fast: bool):
    """(features, real features) -> value of a registered set metric; ``fast`` for bootstrap resamples."""
    function = metric_registry()[metric_name].function(fast)
    return lambda features, real: function(features, real, options)


def image_set_inputs(task: str, manifest: list[dict], image_dir: Path, data_dir: Path, device: str) -> Inputs:
    """The lazily loaded inputs of one image set, as the metric functions read them."""
    spec = TASKS[task]
    truth = {}

    def truths():
        if not truth:
            truth.update({item["id"]: item.get("truth", {}) for item in read_jsonl(data_dir / "items.jsonl")})
        missing = [row["item_id"] for row in manifest if "attributes" not in truth.get(row["item_id"], {})]
        if missing:
            raise ValueError(f"{data_dir / 'items.jsonl'}: no ground-truth attributes for item {missing[0]!r}")
        return [truth[row["item_id"]] for row in manifest]

    def prompt_images():
        keys = [tuple(spec.prompt_images(row["condition"])) for row in manifest]
        arrays = {key: load_rgb(data_dir / key).array for key in sorted({k for ks in keys for k in ks})}
        return keys, arrays

    return Inputs({
        "images": lambda: [load_rgb(path).array for path in verified_paths(image_dir, manifest,
                                                                           image_dir / "manifest.jsonl")],
        "prompts": lambda: [row["condition"]["prompt"] for row in manifest],
        "prompt_images": prompt_images,
        "truth": truths,
    }, device)


def evaluate(task: str, wanted: list[str], manifest: list[dict], image_dir: Path, data_dir: Path, options: dict,
             device: str, features: dict | None = None, real_features: dict | None = None):
    """(results, per-item table): results maps each value name to its record (value, ci95, n, backbone...)."""
    check_task_metrics(task, wanted)
    registry = metric_registry()
    boot = options.get("bootstrap", {})
    results = {}
    for name in (m for m in wanted if registry[m].kind == "set"):
        metric = registry[name]
        items, groups = groups_by_item(list(features["ids"]), manifest)
        value = set_value(name, options, fast=False)(features["features"], real_features["features"])
        lo, hi = stats.bootstrap_set_ci(set_value(name, options, fast=True),
                                        [features["features"][g] for g in groups], real_features["features"],
                                        n_boot=boot.get("set_resamples", 200), seed=boot.get("seed", 0))
        results[name] = {"value": float(value), "ci95": [float(lo), float(hi)], "n": len(features["ids"]),
                         "n_items": len(items), "n_real": len(real_features["ids"]),
                         "backbone": features["info"]["backbone"], "convention": metric.convention,
                         "warnings": [w for w in (features["info"].get("size_warning"),
                                                  real_features["info"].get("size_warning")) if w]}
        log.info("%s = %.6g [%.6g, %.6g]", name, value, lo, hi)

    inputs = image_set_inputs(task, manifest, image_dir, data_dir, device)
    per_image = pd.DataFrame({"item_id": [row["item_id"] for row in manifest]})
    details = {}
    for name in (m for m in wanted if registry[m].kind == "image"):
        out = registry[name].function()(inputs, options)
        for value_name, values in out["values"].items():
            per_image[value_name] = values
            details[value_name] = {"backbone": out["backbone"], "convention": out["convention"]}
    per_item = per_image.groupby("item_id", sort=True).mean()
    for name in details:
        values = per_item[name].dropna().to_numpy(dtype=np.float64)
        if len(values) < 2:
            log.warning("%s: fewer than 2 items with a value; not reported", name)
            continue
        lo, hi = stats.bootstrap_mean_ci(values, n_boot=boot.get("resamples", 1000), seed=boot.get("seed", 0))
        results[name] = {"value": float(values.mean()), "ci95": [float(lo), float(hi)],
                         "n": int(per_image[name].notna().sum()), "n_items": len(values), **details[name]}
        log.info("%s = %.6g [%.6g, %.6g]", name, values.mean(), lo, hi)
    return results, per_item
