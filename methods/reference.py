"""The real images themselves: the upper-bound row of every table."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ipbench.imageset import Request
from methods import register_method
from methods.base import Method
from metrics.images import load_rgb


@register_method
class Reference(Method):
    """Returns the item's real condition image unchanged (CLIP-I = 1, LPIPS = 0)."""

    name = "reference"
    tasks = ("variation",)

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        return [load_rgb(Path(data_dir) / request.condition["image"]).array for request in requests]
