"""The oracle: the upper-bound row of every table.

Where the task data knows the exact scene an item asks for (the mini world),
this is a render of it. Otherwise it is a real image: the item's real image
(COCO captions), one of the subject's real images chosen by the seed
(DreamBench's "real images" row; a pick that is also a reference image counts
its self-similarity, which DreamBench leaves out), or the image prompt itself.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ipbench.imageset import Request
from ipbench.io import read_jsonl
from methods import register_method
from methods.base import Method
from metrics.images import load_rgb


@functools.lru_cache(maxsize=4)
def _truth(items_path: Path) -> dict:
    return {item["id"]: item.get("truth", {}) for item in read_jsonl(items_path)}


@register_method
class Oracle(Method):
    name = "oracle"
    tasks = ("variation", "subject", "text2image")
    batch_size = 64

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        truth = _truth(Path(data_dir) / "items.jsonl")
        images = []
        for request in requests:
            known = truth[request.item_id]
            if known.get("scene") is not None:
                from ipbench.world.render import Scene, render

                images.append(render(Scene.from_dict(known["scene"])))
            elif known.get("real_image"):
                images.append(load_rgb(Path(data_dir) / known["real_image"]).array)
            elif known.get("real_images"):
                choices = known["real_images"]
                images.append(load_rgb(Path(data_dir) / choices[request.seed % len(choices)]).array)
            else:
                images.append(load_rgb(Path(data_dir) / request.condition["image"]).array)
        return images
