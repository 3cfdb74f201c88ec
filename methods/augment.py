"""Classical augmentation of the image prompt: a no-weights variation baseline.

A seeded random-resized crop, horizontal flip and brightness/contrast jitter,
so a table shows how far plain photometric and geometric variation moves each
metric without any generative model. With several image prompts (``subject``)
it augments one of them, chosen by the seed: a copy-the-reference baseline
that keeps the subject and ignores the text.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from ipbench.imageset import Request
from ipbench.params import Param
from methods import register_method
from methods.base import Method
from metrics.images import load_rgb


@register_method
class Augment(Method):
    name = "augment"
    tasks = ("variation", "subject")
    params = {"min_scale": Param(0.6, float, "smallest crop side, as a fraction of the image", min=0.05, max=1.0),
              "jitter": Param(0.2, float, "brightness and contrast change, up to this fraction", min=0.0, max=1.0)}
    batch_size = 64

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        min_scale, jitter = self.settings["min_scale"], self.settings["jitter"]
        images = []
        for request in requests:
            rng = np.random.default_rng(request.seed)
            prompts = request.condition.get("images") or [request.condition["image"]]
            image = Image.fromarray(load_rgb(Path(data_dir) / prompts[int(rng.integers(len(prompts)))]).array)
            width, height = image.size
            side = rng.uniform(min_scale, 1.0)
            crop_w, crop_h = max(1, round(width * side)), max(1, round(height * side))
            left = int(rng.integers(0, width - crop_w + 1))
            top = int(rng.integers(0, height - crop_h + 1))
            image = image.crop((left, top, left + crop_w, top + crop_h))
            image = image.resize((width, height), Image.Resampling.BICUBIC)
            if rng.random() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            image = ImageEnhance.Brightness(image).enhance(1 + rng.uniform(-jitter, jitter))
            image = ImageEnhance.Contrast(image).enhance(1 + rng.uniform(-jitter, jitter))
            images.append(np.asarray(image, dtype=np.uint8))
        return images
