"""``DiffusersMethod``: a method on a diffusers pipeline, as a chain of overridable steps.

``pipeline()`` loads the pipeline once (``load_pipeline``, then ``setup`` for
add-ons such as IP-Adapter or LoRA weights, then ``fast.accelerate``: bfloat16 on CUDA); ``generate`` builds the call's
inputs (``call_inputs``), runs the pipeline with one seeded generator per
request and returns uint8. A subclass changes only the steps it needs.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import numpy as np

from ipbench.diffusion import fast, pipelines, sampling
from ipbench.imageset import Request
from ipbench.params import Param
from methods.base import Method

SD_PARAMS = {
    "pretrained": Param(type=str, model=True, help="Stable Diffusion pipeline: world:mini_sd, a folder or a Hub id"),
    "num_inference_steps": Param(20, int, min=1, help="DDIM steps"),
    "guidance_scale": Param(7.5, float, min=0.0, help="classifier-free guidance scale"),
    "scheduler": Param("ddim", str, choices=pipelines.SCHEDULERS),
    "negative_prompt": Param("", str),
    "precision": Param("auto", str, choices=fast.PRECISIONS,
                       help="UNet and VAE weights (auto: bfloat16 on CUDA, float32 on CPU); the rest stays float32"),
    "memory_format": Param("contiguous", str, choices=fast.MEMORY_FORMATS,
                           help="of the reduced-precision UNet and VAE (channels_last measured slower on an H200)"),
    "compile": Param("off", str, choices=fast.COMPILE_MODES, help="torch.compile mode of the UNet (CUDA)"),
    "compile_tuning": Param(False, bool, help="inductor options of diffusers' speed recipe for the compile "
                                              "(ipbench/diffusion/fast.py COMPILE_TUNING)"),
    "fuse_qkv": Param(False, bool, help="one projection matrix per attention's q, k, v (plain SDPA processors only)"),
}


class DiffusersMethod(Method):
    """Base of every method that samples a diffusers pipeline (Stable Diffusion by default)."""

    uses_gpu = True
    params = SD_PARAMS
    pipeline_class: ClassVar[str] = "StableDiffusionPipeline"  # a diffusers class name

    def __init__(self, model_dir: Path, params: dict | None = None, device: str = "cpu", key: str | None = None):
        super().__init__(model_dir, params, device, key)
        self.log = logging.getLogger(f"ipbench.methods.{self.name}")
        self._pipe = None

    @classmethod
    def prepare(cls, out_dir: Path, settings: dict) -> dict:
        """Record the pipeline folder's weight hashes (or the Hub revision); copies nothing."""
        return pipelines.describe_source(settings["pretrained"], f"config key methods.{cls.name}.params.pretrained")

    def pipeline(self):
        if self._pipe is None:
            import diffusers

            pipe = pipelines.load_pipeline(getattr(diffusers, self.pipeline_class), self.settings["pretrained"],
                                           self.device, self.settings["scheduler"])
            self.setup(pipe)
            # After setup, so that add-ons (adapters, LoRA) run in the UNet's precision too.
            self._pipe = fast.accelerate(pipe, self.device, self.settings["precision"], self.settings["compile"],
                                         self.settings["memory_format"], self.settings["fuse_qkv"],
                                         self.settings["compile_tuning"])
        return self._pipe

    def setup(self, pipe) -> None:
        """Load add-ons onto the freshly loaded pipeline (IP-Adapter, LoRA, ...). Default: none."""

    def call_inputs(self, requests: list[Request], data_dir: Path) -> dict:
        """Keyword arguments of the pipeline call for this batch, besides sampling settings and generators."""
        pipe = self.pipeline()
        sampling.check_prompts(pipe.tokenizer, requests, self.log)
        inputs = {"prompt": [request.condition["prompt"] for request in requests]}
        if self.settings["negative_prompt"]:
            inputs["negative_prompt"] = [self.settings["negative_prompt"]] * len(requests)
        return inputs

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        import torch

        inputs = self.call_inputs(requests, Path(data_dir))
        with torch.inference_mode():
            out = self.pipeline()(**inputs, num_inference_steps=self.settings["num_inference_steps"],
                                  guidance_scale=self.settings["guidance_scale"],
                                  generator=sampling.generators(requests, self.device), output_type="np").images
        return sampling.to_uint8(out)
