"""Mini-world metrics with exact ground truth: attribute accuracy and subject fidelity.

Every generated image is read back by the analyzers (``ipbench.world.analyze``
plus the shape/texture CNN when given); nothing here trusts a method's claims.
An image in which the analyzer finds no object, or several, counts as wrong
for every attribute and as IoU 0, and is counted in ``no_single_object``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ipbench.world.analyze import analyze, colour_error, shape_iou

# (images) -> (shapes, textures): the learned reader for what geometry cannot tell apart.
ShapeReader = Callable[[list[np.ndarray]], tuple[list[str], list[str | None]]]


def read_attributes(images: list[np.ndarray], shape_reader: ShapeReader | None = None) -> list[dict]:
    """Analyzer output per image: attribute -> value, plus ``n_objects`` and ``resized``."""
    analyses = [analyze(image) for image in images]
    shapes, textures = shape_reader(images) if shape_reader else ([None] * len(images), [None] * len(images))
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
    rows = []
    for image, refs in zip(images, references):
        generated = analyze(image)
        ref_analyses = [analyze(ref) for ref in refs]
        if generated.n_objects != 1:
            rows.append({"subject_iou": 0.0, "colour_error": np.nan})
            continue
        rows.append({"subject_iou": float(np.mean([shape_iou(generated, ref) for ref in ref_analyses])),
                     "colour_error": float(np.nanmean([colour_error(generated, ref) for ref in ref_analyses]))})
    return pd.DataFrame(rows)
