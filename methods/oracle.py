"""The oracle: the upper-bound row of every table.

Where the task data knows the exact scene an item asks for (the mini world),
this is an oracle render of it; otherwise it is the item's real image prompt.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ipbench.imageset import Request
from ipbench.io import read_jsonl
from methods import register_method
from methods.base import Method
from metrics.images import load_rgb


@register_method
class Oracle(Method):
    name = "oracle"
    tasks = ("variation", "subject", "text2image")
    batch_size = 64

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        truth = {item["id"]: item.get("truth", {}) for item in read_jsonl(Path(data_dir) / "items.jsonl")}
        images = []
        for request in requests:
            scene = truth[request.item_id].get("scene")
            if scene is not None:
                from ipbench.world.render import Scene, render

                images.append(render(Scene.from_dict(scene)))
            else:
                images.append(load_rgb(Path(data_dir) / request.condition["image"]).array)
        return images
