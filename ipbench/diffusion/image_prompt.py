"""Image-prompted methods on the diffusion layer: a request's image prompts and the text beside them.

A ``variation`` request holds one image prompt (``condition["image"]``) and its
caption; a ``subject`` request holds K reference images (``condition["images"]``)
and a prompt for the new scene. ``caption: false`` replaces the text with the
empty prompt, which is the IP-Adapter paper's Table 1 protocol (image prompt
only). How a method uses K references is its own param (``references``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ipbench.diffusion.method import SD_PARAMS, DiffusersMethod
from ipbench.diffusion.sampling import check_prompts
from ipbench.imageset import Request
from ipbench.params import Param
from metrics.images import load_rgb

IMAGE_PROMPT_PARAMS = {
    "caption": Param(True, bool, help="give the request's text prompt; false: the empty text (IP-Adapter Table 1)"),
}


def prompt_image_paths(request: Request, method: str) -> list[str]:
    """The request's image prompts, relative to the task folder (one for variation, K for subject)."""
    condition = request.condition
    if "images" in condition:
        return list(condition["images"])
    if "image" in condition:
        return [condition["image"]]
    raise ValueError(f"method {method!r} needs an image prompt, but item {request.item_id!r} has neither "
                     f"condition.image nor condition.images (keys: {', '.join(sorted(condition))})")


def prompt_images(request: Request, data_dir: Path, method: str) -> list[np.ndarray]:
    return [load_rgb(Path(data_dir) / path).array for path in prompt_image_paths(request, method)]


def one_of(request: Request, count: int) -> int:
    """The reference a single-image method takes from K: chosen by the request's seed (so per sample)."""
    return request.seed % count


class ImagePromptMethod(DiffusersMethod):
    """A ``DiffusersMethod`` whose requests carry image prompts; the text follows ``caption``."""

    tasks = ("variation", "subject")
    params = {**SD_PARAMS, **IMAGE_PROMPT_PARAMS}

    def texts(self, requests: list[Request]) -> list[str]:
        if not self.settings["caption"]:
            return [""] * len(requests)
        check_prompts(self.pipeline().tokenizer, requests, self.log)
        return [request.condition["prompt"] for request in requests]

    def call_inputs(self, requests: list[Request], data_dir: Path) -> dict:
        inputs = {"prompt": self.texts(requests)}
        if self.settings["negative_prompt"]:
            inputs["negative_prompt"] = [self.settings["negative_prompt"]] * len(requests)
        return inputs
