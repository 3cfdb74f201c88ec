"""Image/text embedding backbones named by a spec string.

Spec strings (the spec is the backbone's ``name``, recorded with every value):

- ``hf-clip:<hub id or local folder>``: transformers ``CLIPModel`` with the
  tokenizer and image processor saved beside it, e.g.
  ``hf-clip:openai/clip-vit-large-patch14`` or ``hf-clip:data/judge_clip``.
- ``open_clip:<model name>/<pretrained tag or local .pt/.bin/.safetensors path>``,
  e.g. ``open_clip:ViT-B-32/laion2b_s34b_b79k``; or
  ``open_clip:local-dir:<folder>`` for a folder holding ``open_clip_config.json``
  and its weights.
- ``hf-dino:<hub id or local folder>``: transformers ``AutoModel`` (ViTModel,
  Dinov2Model) with its image processor; the embedding is the CLS token of
  ``last_hidden_state`` (DreamBench's DINO score uses ViT-S/16 DINO's CLS).
  DINO has no text tower.

Images go through the model's own preprocessing. Hugging Face image processors
use their PIL backend: it resizes with PIL like the original CLIP/DINO code and
transformers 4 did, where the default torchvision backend resizes slightly
differently. Texts longer than the model's context are truncated (keeping the
end token), as CLIPScore implementations do. Embeddings are float64, unit norm.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from metrics.weights import check_architecture

PREFIXES = ("hf-clip:", "open_clip:", "hf-dino:")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


@dataclass
class Backbone:
    name: str  # the spec string
    kind: str  # "clip" or "dino"
    embed_images: Callable[[list[np.ndarray]], torch.Tensor]  # one batch -> raw embeddings
    embed_texts: Callable[[list[str]], torch.Tensor] | None

    def encode_images(self, images: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """(N, D) float64 unit-norm embeddings of uint8 HxWx3 images."""
        return _encode(self.embed_images, list(images), batch_size)

    def encode_texts(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """(N, D) float64 unit-norm embeddings of texts."""
        if self.embed_texts is None:
            raise ValueError(f"{self.name}: a {self.kind} backbone has no text encoder")
        return _encode(self.embed_texts, list(texts), batch_size)


def _encode(embed, items: list, batch_size: int) -> np.ndarray:
    if not items:
        raise ValueError("nothing to encode")
    with torch.inference_mode():
        batches = [embed(items[i : i + batch_size]).double().cpu() for i in range(0, len(items), batch_size)]
    embeddings = torch.cat(batches).numpy()
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def load_backbone(spec: str, device: str | torch.device | None = None) -> Backbone:
    """Load the backbone a spec string names (see the module docstring)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    prefix, _, source = spec.partition(":")
    loaders = {"hf-clip": _load_hf_clip, "open_clip": _load_open_clip, "hf-dino": _load_hf_dino}
    if prefix not in loaders or not source:
        expected = ", ".join(p + "..." for p in PREFIXES)
        raise ValueError(f"unknown backbone spec {spec!r}; expected one of {expected}")
    return loaders[prefix](spec, source, device)


def _from_pretrained(spec: str, source: str, load):
    """``load(source)`` for a local folder or a Hub id, with errors that name the path."""
    path = Path(source).expanduser()
    if path.exists():
        return load(str(path))
    # Not a Hub id ("org/name"): an explicit path, a deeper path, or one whose parent folder is here.
    explicit = source.startswith((".", "/", "~")) or source.count("/") > 1
    if explicit or ("/" in source and path.parent.is_dir()):
        raise FileNotFoundError(f"{spec}: model folder {path.resolve()} does not exist")
    try:
        return load(source)
    except OSError as err:
        raise OSError(
            f"{spec}: {source!r} is not a local folder ({path.resolve()} does not exist) "
            f"and could not be loaded from the Hugging Face Hub: {err}"
        ) from err


def _load_hf_clip(spec: str, source: str, device: torch.device) -> Backbone:
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    def load(where):
        check_architecture(where, "CLIPModel")
        return (
            CLIPModel.from_pretrained(where, dtype=torch.float32).eval().to(device),
            AutoImageProcessor.from_pretrained(where, backend="pil"),
            AutoTokenizer.from_pretrained(where),
        )

    model, processor, tokenizer = _from_pretrained(spec, source, load)
    max_length = model.config.text_config.max_position_embeddings

    def embed_images(images):
        pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        return model.get_image_features(pixel_values=pixels).pooler_output

    def embed_texts(texts):
        tokens = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return model.get_text_features(**tokens.to(device)).pooler_output

    return Backbone(spec, "clip", embed_images, embed_texts)


def _load_hf_dino(spec: str, source: str, device: torch.device) -> Backbone:
    from transformers import AutoImageProcessor, AutoModel

    def load(where):
        return AutoModel.from_pretrained(where, dtype=torch.float32).eval().to(device), AutoImageProcessor.from_pretrained(
            where, backend="pil"
        )

    model, processor = _from_pretrained(spec, source, load)

    def embed_images(images):
        pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        return model(pixel_values=pixels).last_hidden_state[:, 0]

    return Backbone(spec, "dino", embed_images, None)


def _load_open_clip(spec: str, source: str, device: torch.device) -> Backbone:
    import open_clip
    from PIL import Image

    if source.startswith("local-dir:"):
        model_name, pretrained, local = source, None, Path(source.removeprefix("local-dir:"))
    else:
        model_name, _, pretrained = source.partition("/")
        if not pretrained:
            raise ValueError(f"{spec}: expected open_clip:<model name>/<pretrained tag or weights path>")
        is_path = pretrained.endswith(CHECKPOINT_SUFFIXES) or "/" in pretrained
        local = Path(pretrained) if is_path else None
    if local is not None and not local.exists():
        raise FileNotFoundError(f"{spec}: {local.resolve()} does not exist")
    # require_pretrained: never score with a randomly initialised model by mistake.
    model, _, preprocess = open_clip.create_model_and_transforms(
        model_name, pretrained=pretrained, device=device, require_pretrained=True
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)

    def embed_images(images):
        pixels = torch.stack([preprocess(Image.fromarray(image)) for image in images]).to(device)
        return model.encode_image(pixels)

    def embed_texts(texts):
        return model.encode_text(tokenizer(texts).to(device))

    return Backbone(spec, "clip", embed_images, embed_texts)
