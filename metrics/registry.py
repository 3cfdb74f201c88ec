"""One record per metric: what it is called, what it needs, how it is computed and reported.

A metric is configured by ``name`` in a task's ``metrics:`` list and produces
one or more *values* (``attributes`` gives ``acc_shape``, ``all_correct``...),
each with its label and direction. ``needs`` names its inputs:

- ``images``: the generated uint8 images (every metric has them);
- ``prompts``: each image's text prompt;
- ``prompt_images``: each image's image prompts (tasks with an image condition);
- ``truth``: each image's ground truth (a synthetic world that knows it);
- ``real_set``: the task's real image set (set metrics compare with it).

A task offers some of these, so whether a metric applies to a task follows from
its record. ``compute`` ("module:function", imported when used) takes a mapping
of those inputs plus the config's ``metrics`` options and returns
``{"values": {name: per-image array}, "backbone": str, "convention": str}``;
set metrics instead give ``value(features, real_features, options, fast)``.
Tables, the config check, evaluation and the CLI all read this registry; the
mini world registers its own metrics from its side (``ipbench.world.metrics``),
so this package imports nothing from ``ipbench``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

INPUTS = ("images", "prompts", "prompt_images", "truth", "real_set")


@dataclass(frozen=True)
class Value:
    """One reported number."""

    label: str
    higher_is_better: bool
    description: str
    display_scale: float = 1.0  # tables print value x this (KID x 10^3)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "image": a value per image, averaged per item; "set": one value for the whole set
    needs: tuple[str, ...]
    compute: str  # "module:function"
    values: dict  # value name -> Value
    backbone: str  # what it runs on, as named in tables (the exact spec is recorded with every value)
    convention: str
    fast: str | None = None  # set metrics: a cheaper exact or approximate form for bootstrap resamples
    # The n below which a value is not to be read as is: images for a set metric, items for an image metric.
    min_n: int = 20
    min_n_why: str = "a percentile bootstrap over fewer items gives too narrow a 95% CI"

    def small_n_warning(self, n: int, n_items: int) -> str | None:
        """Why a value over ``n`` images of ``n_items`` items is to be read with care, or None."""
        count, unit = (n, "images") if self.kind == "set" else (n_items, "items")
        if count >= self.min_n:
            return None
        return f"{count} {unit}, below the {self.min_n} it needs ({self.min_n_why})"

    def function(self, fast: bool = False):
        module, _, name = (self.fast if fast and self.fast else self.compute).partition(":")
        return getattr(importlib.import_module(module), name)


_REGISTRY: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    unknown = set(metric.needs) - set(INPUTS)
    if unknown:
        raise ValueError(f"metric {metric.name!r}: unknown inputs {sorted(unknown)} (known: {', '.join(INPUTS)})")
    if metric.kind not in ("image", "set"):
        raise ValueError(f"metric {metric.name!r}: kind must be 'image' or 'set'")
    clash = {value for other in _REGISTRY.values() if other.name != metric.name for value in other.values}
    if clash & set(metric.values):
        raise ValueError(f"metric {metric.name!r}: value names {sorted(clash & set(metric.values))} taken")
    _REGISTRY[metric.name] = metric
    return metric


def registered() -> dict[str, Metric]:
    return dict(_REGISTRY)


def metric_of(value: str) -> Metric:
    """The metric that reports ``value``."""
    for metric in _REGISTRY.values():
        if value in metric.values:
            return metric
    raise KeyError(f"no registered metric reports a value {value!r}")


def value_info(value: str) -> Value:
    return metric_of(value).values[value]


def value_order() -> list[str]:
    """Every value name, in registration order (the column order of tables)."""
    return [value for metric in _REGISTRY.values() for value in metric.values]


CLEAN_FID = "clean-fid protocol: uint8 RGB, PIL bicubic resize to 299, (x-128)/128, float64 statistics"

register_metric(Metric(
    "fid", "set", ("images", "real_set"), "metrics.image_metrics:fid", fast="metrics.image_metrics:fid_fast",
    values={"fid": Value("FID", False, "Fréchet distance to the task's real image set")},
    backbone="inception-v3-pool3", convention=CLEAN_FID, min_n=2048,
    min_n_why="with fewer images than Inception's 2048 dimensions the covariance is singular and FID is biased "
              "upward, the more so the smaller n; compare FIDs only at equal n"))
register_metric(Metric(
    "kid", "set", ("images", "real_set"), "metrics.image_metrics:kid", fast="metrics.image_metrics:kid_fast",
    values={"kid": Value("KID×10³", False, "kernel inception distance to the real image set (tables print ×1000)",
                            1000.0)},
    backbone="inception-v3-pool3", convention=CLEAN_FID + ", unbiased cubic-kernel MMD over subsets",
    min_n=100, min_n_why="KID is unbiased, but over few images it varies widely from draw to draw; read its CI"))
register_metric(Metric(
    "lpips", "image", ("images", "prompt_images"), "metrics.image_metrics:lpips_to_prompt",
    values={"lpips": Value("LPIPS", False, "LPIPS(generated image, its image prompt), mean per item")},
    backbone="lpips-v0.1", convention="LPIPS v0.1 (generated, first image prompt)"))
register_metric(Metric(
    "clip_i", "image", ("images", "prompt_images"), "metrics.image_metrics:clip_i_to_prompts",
    values={"clip_i": Value("CLIP-I", True, "CLIP image similarity to the image prompts")},
    backbone="clip", convention="cosine to each image prompt, averaged (DreamBench)"))
register_metric(Metric(
    "clip_t", "image", ("images", "prompts"), "metrics.image_metrics:clip_t_to_prompt",
    values={"clip_t": Value("CLIP-T", True, "CLIP similarity to the text prompt")},
    backbone="clip", convention="cosine of image and prompt embeddings"))
register_metric(Metric(
    "dino", "image", ("images", "prompt_images"), "metrics.image_metrics:dino_to_prompts",
    values={"dino": Value("DINO", True, "DINO CLS similarity to the image prompts (subject identity)")},
    backbone="dino", convention="cosine of CLS embeddings to each image prompt, averaged (DreamBench)"))
register_metric(Metric(
    "saturation", "image", ("images",), "metrics.image_metrics:saturation",
    values={"saturation": Value("saturated %", False, "percentage of channel values at 0 or 255 (tables print the "
                                "fraction ×100; compare the oracle's)", 100.0)},
    backbone="none", convention="per image, uint8 RGB channel values equal to 0 or 255"))
