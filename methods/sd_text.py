"""Text-to-image with a diffusers Stable Diffusion pipeline: the ``text2image`` method.

``pretrained`` is ``world:mini_sd`` (the mini world's SD, assembled by the DAG),
any local ``StableDiffusionPipeline`` folder, or a Hub id. The caption is
``request.condition["prompt"]``; sampling is DDIM with classifier-free guidance,
one seeded generator per request. Given the full caption of an image, it is also
the text upper bound of the image-prompted tasks. Words the tokenizer does not
know and captions it truncates are logged per item.
"""
from __future__ import annotations

from ipbench.diffusion.method import DiffusersMethod
from methods import register_method


@register_method
class SDText(DiffusersMethod):
    name = "sd_text"
    tasks = ("text2image",)
