"""The compute functions of the registered metrics, over plain arrays and texts.

``Inputs`` is what they read: lazily loaded images, prompts and image prompts,
and embeddings computed once per backbone (an image prompt shared by many
images, such as a subject's reference image, is embedded once).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from metrics import fid as fid_math
from metrics.clip_scores import CONVENTIONS, apply_convention, paired_cosine


class Inputs:
    """Named inputs of one image set, each loaded on first use.

    ``loaders`` maps input names (``metrics.registry.INPUTS``) to zero-argument
    functions. ``prompt_images`` loads as (keys per image, {key: uint8 array}),
    so shared image prompts are decoded and embedded once.
    """

    def __init__(self, loaders: dict[str, Callable], device: str = "cpu"):
        self._loaders, self.device = loaders, device
        self._cache: dict = {}

    def __getitem__(self, name: str):
        if name not in self._cache:
            if name not in self._loaders:
                raise KeyError(f"this image set has no {name!r} input")
            self._cache[name] = self._loaders[name]()
        return self._cache[name]

    def cached(self, key, make):
        """``make()``, computed once per image set (shared by the metrics that read it)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def backbone(self, spec: str):
        from metrics.backbones import load_backbone

        return self.cached(("backbone", spec), lambda: load_backbone(spec, device=self.device))

    def image_embeddings(self, spec: str) -> np.ndarray:
        return self.cached(("images", spec), lambda: self.backbone(spec).encode_images(self["images"]))

    def prompt_image_embeddings(self, spec: str) -> list[np.ndarray]:
        """Per image, the (K, D) embeddings of its image prompts."""
        def make():
            keys, arrays = self["prompt_images"]
            unique = sorted(arrays)
            embedded = dict(zip(unique, self.backbone(spec).encode_images([arrays[k] for k in unique])))
            return [np.stack([embedded[k] for k in image_keys]) for image_keys in keys]
        return self.cached(("prompt_images", spec), make)

    def text_embeddings(self, spec: str) -> np.ndarray:
        def make():
            prompts = self["prompts"]
            unique = sorted(set(prompts))
            embedded = dict(zip(unique, self.backbone(spec).encode_texts(unique)))
            return np.stack([embedded[p] for p in prompts])
        return self.cached(("prompts", spec), make)


def _result(name, values, backbone, convention) -> dict:
    return {"values": {name: np.asarray(values, dtype=np.float64)}, "backbone": backbone, "convention": convention}


# ---- set metrics: features of the generated set and of the real set


def fid(features, real, options) -> float:
    return fid_math.fid_from_features(features, real)


def fid_fast(features, real, options) -> float:
    """Exact small-n trace identity: for the many bootstrap resamples."""
    return fid_math.fid_from_features_fast(features, real)


def _kid(features, real, options, subsets) -> float:
    return fid_math.kid_from_features(features, real, num_subsets=subsets,
                                      max_subset_size=options.get("kid", {}).get("subset_size", 1000), seed=0)


def kid(features, real, options) -> float:
    return _kid(features, real, options, options.get("kid", {}).get("subsets", 100))


BOOTSTRAP_KID_SUBSETS = 10


def kid_fast(features, real, options) -> float:
    """KID over ``BOOTSTRAP_KID_SUBSETS`` subsets: bootstrap resamples only estimate a spread."""
    return _kid(features, real, options, min(options.get("kid", {}).get("subsets", 100), BOOTSTRAP_KID_SUBSETS))


# ---- per-image metrics


def _resized_to(image: np.ndarray, shape) -> np.ndarray:
    from PIL import Image

    if image.shape == shape:
        return image
    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.Resampling.BICUBIC))


def lpips_to_prompt(inputs: Inputs, options: dict) -> dict:
    from metrics.lpips_metric import LPIPS_NAMES, lpips_distances

    net = options.get("lpips", {}).get("net", "alex")
    keys, arrays = inputs["prompt_images"]
    prompts = [arrays[image_keys[0]] for image_keys in keys]
    images = inputs["images"]
    resized = sum(g.shape != p.shape for g, p in zip(images, prompts))
    distances = lpips_distances([_resized_to(g, p.shape) for g, p in zip(images, prompts)], prompts, net=net,
                                device=inputs.device)
    return _result("lpips", distances, LPIPS_NAMES[net],
                   "LPIPS v0.1 (generated, first image prompt); generated resized to the prompt's size with PIL "
                   f"bicubic where they differ ({resized} images)")


def _mean_cosine_to_prompts(inputs: Inputs, spec: str) -> np.ndarray:
    generated = inputs.image_embeddings(spec)
    return np.array([float((references @ image).mean())
                     for image, references in zip(generated, inputs.prompt_image_embeddings(spec))])


def _clip_options(options: dict) -> tuple[str, str]:
    clip = options.get("clip", {})
    if not clip.get("backbone"):
        raise ValueError("config key metrics.clip.backbone is not set, but a task asks for a CLIP metric")
    return clip["backbone"], clip.get("convention", "cosine")


def clip_i_to_prompts(inputs: Inputs, options: dict) -> dict:
    spec, convention = _clip_options(options)
    values = apply_convention(_mean_cosine_to_prompts(inputs, spec), convention)
    return _result("clip_i", values, spec, CONVENTIONS[convention] + "; mean over the item's image prompts")


def clip_t_to_prompt(inputs: Inputs, options: dict) -> dict:
    spec, convention = _clip_options(options)
    cosines = paired_cosine(inputs.image_embeddings(spec), inputs.text_embeddings(spec))
    return _result("clip_t", apply_convention(cosines, convention), spec, CONVENTIONS[convention])


def dino_to_prompts(inputs: Inputs, options: dict) -> dict:
    spec = options.get("dino", {}).get("backbone")
    if not spec:
        raise ValueError("config key metrics.dino.backbone is not set, but a task asks for DINO")
    return _result("dino", _mean_cosine_to_prompts(inputs, spec), spec,
                   "raw cosine of CLS embeddings; mean over the item's image prompts (DreamBench)")


def saturation(inputs: Inputs, options: dict) -> dict:
    """Fraction of each image's channel values at 0 or 255: Imagen's over-saturation at high guidance."""
    values = [float(np.mean((image == 0) | (image == 255))) for image in inputs["images"]]
    return _result("saturation", values, "none", "fraction of uint8 RGB channel values equal to 0 or 255")
