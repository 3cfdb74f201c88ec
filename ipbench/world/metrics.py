"""Mini-world metrics with exact ground truth: attribute accuracy and subject fidelity.

Registered in the metric registry from the world's side (``metrics/`` imports
nothing from ``ipbench``); the analyzers run only when a metric is computed.

Every generated image is read back by the analyzers (``ipbench.world.analyze``
plus the shape/texture CNN when given); nothing here trusts a method's claims.
An image in which the analyzer finds no object, or several, counts as wrong
for every attribute and as IoU 0, and is counted in ``no_single_object``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from metrics.registry import Metric, Value, register_metric

# (images) -> (shapes, textures): the learned reader for what geometry cannot tell apart.
ShapeReader = Callable[[list[np.ndarray]], tuple[list[str], list[str | None]]]


def read_attributes(images: list[np.ndarray], shape_reader: ShapeReader | None = None) -> list[dict]:
    """Analyzer output per image: attribute -> value, plus ``n_objects`` and ``resized``."""
    from ipbench.world.analyze import analyze, as_image

    analyses = [analyze(image) for image in images]
    if shape_reader:  # the CNN reads 64x64 only: other sizes get the analyzer's resize (flagged ``resized``)
        shapes, textures = shape_reader([as_image(image)[0] for image in images])
    else:
        shapes, textures = [None] * len(images), [None] * len(images)
    rows = []
    for analysis, shape, texture in zip(analyses, shapes, textures):
        rows.append({"background": analysis.background, "position": analysis.position, "size": analysis.size,
                     "colour": analysis.colour, "shape": shape, "texture": texture,
                     "n_objects": analysis.n_objects, "resized": analysis.resized})
    return rows


def attribute_scores(images: list[np.ndarray], truths: list[dict],
                     shape_reader: ShapeReader | None = None) -> pd.DataFrame:
    """Per image: ``acc_<attribute>`` (1/0) for each attribute its truth names, and ``all_correct``.

    Attributes the readers cannot judge (shape and texture without a CNN)
    are left out rather than guessed.
    """
    rows = []
    for read, truth in zip(read_attributes(images, shape_reader), truths):
        single = read["n_objects"] == 1
        row = {"no_single_object": float(not single), "resized": float(read["resized"])}
        judged = [name for name, value in truth.items()
                  if value is not None and (shape_reader or name not in ("shape", "texture"))]
        for name in judged:
            row[f"acc_{name}"] = float(single and read[name] == truth[name])
        row["all_correct"] = float(all(row[f"acc_{name}"] for name in judged))
        rows.append(row)
    return pd.DataFrame(rows)


def subject_fidelity(images: list[np.ndarray], references: list[list[np.ndarray]]) -> pd.DataFrame:
    """Per image: mean shape IoU and mean colour error (ΔE2000) against the item's reference images."""
    from ipbench.world.analyze import Outline, analyze, colour_error, shape_iou

    outlines: dict[int, Outline] = {}  # a reference array shared by several images is analysed once

    def outline(ref: np.ndarray) -> Outline:
        if id(ref) not in outlines:
            outlines[id(ref)] = Outline(analyze(ref))
        return outlines[id(ref)]

    rows = []
    for image, refs in zip(images, references):
        generated = Outline(analyze(image))
        ref_outlines = [outline(ref) for ref in refs]
        if generated.analysis.n_objects != 1:
            rows.append({"subject_iou": 0.0, "colour_error": np.nan})
            continue
        rows.append({"subject_iou": float(np.mean([shape_iou(generated, ref) for ref in ref_outlines])),
                     "colour_error": float(np.nanmean([colour_error(generated.analysis, ref.analysis)
                                                       for ref in ref_outlines]))})
    return pd.DataFrame(rows)


# ---- the registered metrics

ANALYZERS = "mini-world analyzers (ipbench.world.analyze)"
GROUND_TRUTH = "read back from the image, compared with the item's ground truth"
ATTRIBUTE_NAMES = ("background", "position", "size", "colour", "shape", "texture")


def _shape_reader(options: dict, device: str) -> ShapeReader | None:
    folder = options.get("shape_cnn")
    if not folder:
        return None
    from ipbench.world.shape_cnn import load_shape_cnn, predict

    model = load_shape_cnn(folder, device)
    return lambda batch: predict(model, batch)[:2]


def attributes_metric(inputs, options: dict) -> dict:
    """Per image: each ground-truth attribute read back right (1/0), all of them, and single-object failures."""
    scores = attribute_scores(inputs["images"], [truth["attributes"] for truth in inputs["truth"]],
                              _shape_reader(options, inputs.device))
    values = {column: scores[column].to_numpy(dtype=np.float64) for column in scores.columns if column != "resized"}
    shape_note = "; shape and texture by the shape/texture CNN" if options.get("shape_cnn") else ""
    return {"values": values, "backbone": ANALYZERS + shape_note, "convention": GROUND_TRUTH}


def _fidelity(inputs, column: str) -> dict:
    def make():
        keys, arrays = inputs["prompt_images"]
        return subject_fidelity(inputs["images"], [[arrays[k] for k in image_keys] for image_keys in keys])

    fidelity = inputs.cached("subject_fidelity", make)  # subject IoU and colour error share one pass
    return {"values": {column: fidelity[column].to_numpy(dtype=np.float64)}, "backbone": ANALYZERS,
            "convention": "against each image prompt, averaged; an image without exactly one object scores IoU 0"}


def subject_iou_metric(inputs, options: dict) -> dict:
    return _fidelity(inputs, "subject_iou")


def colour_error_metric(inputs, options: dict) -> dict:
    return _fidelity(inputs, "colour_error")


register_metric(Metric(
    "attributes", "image", ("images", "truth"), "ipbench.world.metrics:attributes_metric",
    values={**{f"acc_{name}": Value(f"{name} acc", True, f"fraction of images whose {name} the analyzers read as "
                                                       "the ground truth") for name in ATTRIBUTE_NAMES},
            "all_correct": Value("all correct", True, "fraction of images with every ground-truth attribute right "
                                                      "(GenEval-style compositional score)"),
            "no_single_object": Value("no/many objects", False, "fraction of images where the analyzer found no "
                                                                "object or several")},
    backbone=ANALYZERS, convention=GROUND_TRUTH))
register_metric(Metric(
    "subject_iou", "image", ("images", "prompt_images"), "ipbench.world.metrics:subject_iou_metric",
    values={"subject_iou": Value("subject IoU", True, "shape IoU with the image prompts after normalising position, "
                                                      "scale and rotation")},
    backbone=ANALYZERS, convention="mean over the item's image prompts"))
register_metric(Metric(
    "colour_error", "image", ("images", "prompt_images"), "ipbench.world.metrics:colour_error_metric",
    values={"colour_error": Value("colour ΔE", False, "ΔE2000 between the object colours of image and image "
                                                      "prompts")},
    backbone=ANALYZERS, convention="mean over the item's image prompts"))
