"""SDEdit (Meng et al., 2022): re-noise the image prompt part of the way, then denoise it with the text.

The image prompt, centre-cropped and resized to the pipeline's resolution, is
the img2img init image: its VAE posterior sample is noised to the DDIM step
that ``strength`` picks and denoised from there with classifier-free guidance.
With K references (``subject``) it takes one, chosen by the request's seed
(``one_of``), so the samples of an item spread over its references. No
weights beyond the pipeline's: the training-free baseline of ``variation``.
"""
from __future__ import annotations

from pathlib import Path

from ipbench.diffusion.image_prompt import ImagePromptMethod, one_of, prompt_image_paths
from ipbench.imageset import Request
from ipbench.paper_data import center_crop_resize
from ipbench.params import Param
from methods import register_method
from metrics.images import load_rgb


@register_method
class SDEdit(ImagePromptMethod):
    name = "sdedit"
    pipeline_class = "StableDiffusionImg2ImgPipeline"
    params = {**ImagePromptMethod.params,
              "strength": Param(0.6, float, "SDEdit's t0: the fraction of the DDIM steps re-noised and denoised "
                                "(diffusers runs int(strength x steps) of them)", min=0.0, max=1.0)}

    @classmethod
    def check(cls, params: dict | None, key: str | None = None) -> dict:
        settings = super().check(params, key)
        # diffusers floors strength x steps; zero steps fail deep inside the pipeline (a reshape error).
        if int(settings["num_inference_steps"] * settings["strength"]) < 1:
            raise ValueError(f"config key {key or f'methods.{cls.name}.params'}.strength: {settings['strength']!r} "
                             f"x {settings['num_inference_steps']} steps runs no denoising step")
        return settings

    def call_inputs(self, requests: list[Request], data_dir: Path) -> dict:
        from PIL import Image

        pipe = self.pipeline()
        size = pipe.unet.config.sample_size * pipe.vae_scale_factor
        images = []
        for request in requests:
            paths = prompt_image_paths(request, self.name)
            prompt = load_rgb(data_dir / paths[one_of(request, len(paths))]).array
            images.append(Image.fromarray(center_crop_resize(prompt, size)))
        return {**super().call_inputs(requests, data_dir), "image": images, "strength": self.settings["strength"]}
