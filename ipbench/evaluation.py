"""What each metric means in a table, and how the harness computes it for an image set.

Set metrics (FID, KID) compare a method's whole image set with the task's
real reference set; per-item metrics (LPIPS, CLIP-I, CLIP-T) are averaged
over an item's samples first, so every item weighs the same and the
bootstrap resamples items.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SET_METRICS = ("fid", "kid")


@dataclass(frozen=True)
class MetricInfo:
    label: str
    higher_is_better: bool
    description: str


METRICS = {
    "fid": MetricInfo("FID", False, "Fréchet distance to the task's real reference set"),
    "kid": MetricInfo("KID×10³", False, "kernel inception distance to the reference set, ×1000"),
    "lpips": MetricInfo("LPIPS", False, "LPIPS(generated image, its image prompt), mean per item"),
    "clip_i": MetricInfo("CLIP-I", True, "CLIP image similarity to the image prompt"),
    "clip_t": MetricInfo("CLIP-T", True, "CLIP similarity to the prompt's caption"),
    "subject_iou": MetricInfo("subject IoU", True,
                              "shape IoU with the subject's references after normalising position, scale, rotation"),
    "colour_error": MetricInfo("colour ΔE", False, "ΔE2000 between object colours of image and references"),
    **{f"acc_{name}": MetricInfo(f"{name} acc", True, f"fraction of images whose {name} the analyzers read as the "
                                                      "ground truth")
       for name in ("background", "position", "size", "colour", "shape", "texture")},
    "all_correct": MetricInfo("all correct", True, "fraction of images with every ground-truth attribute right "
                                                   "(GenEval-style compositional score)"),
    "no_single_object": MetricInfo("no/many objects", False, "fraction of images where the analyzer found "
                                                             "no object or several"),
}
PER_ITEM_METRICS = tuple(name for name in METRICS if name not in SET_METRICS)

# KID is tiny in raw units; tables print it ×1000, as papers do.
DISPLAY_SCALE = {"kid": 1000.0}


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


BOOTSTRAP_KID_SUBSETS = 10


def set_metric_fn(name: str, options: dict, fast: bool):
    """A function (generated features, reference features) -> value.

    ``fast`` is for bootstrap resamples, which only estimate a spread: FID uses
    the exact small-n trace identity, and KID averages ``BOOTSTRAP_KID_SUBSETS``
    random subsets instead of the configured count (clean-fid's 100). The
    headline values always use clean-fid's sqrtm path and the configured subsets.
    """
    from metrics import fid

    if name == "fid":
        return fid.fid_from_features_fast if fast else fid.fid_from_features
    if name == "kid":
        kid_options = options.get("kid", {})
        subsets = kid_options.get("subsets", 100)
        return lambda a, b: fid.kid_from_features(
            a, b, num_subsets=min(subsets, BOOTSTRAP_KID_SUBSETS) if fast else subsets,
            max_subset_size=kid_options.get("subset_size", 1000), seed=0)
    raise ValueError(f"{name!r} is not a set metric")
