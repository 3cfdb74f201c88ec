"""Tiny random-weight models saved like real ones, for tests and timings only.

Each builder writes a self-contained folder that the real loaders read
(``hf-clip:<folder>``, ``hf-dino:<folder>``, ``open_clip:local-dir:<folder>``),
so code paths are exercised without any download. Their outputs mean nothing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

TINY_IMAGE_SIZE = 32
TINY_CLIP_WIDTH = 32  # build_tiny_clip's hidden size
TINY_TEXT_LENGTH = 16  # CLIP text positions; short so truncation is easy to test
BOS, EOS = "<|startoftext|>", "<|endoftext|>"

# An open_clip model config (same keys as open_clip/model_configs/*.json).
TINY_OPEN_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {
        "image_size": TINY_IMAGE_SIZE,
        "layers": 2,
        "width": 32,
        "head_width": 16,
        "patch_size": 8,
    },
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def tiny_images(count: int, height: int = 40, width: int = 48, seed: int = 0) -> list[np.ndarray]:
    """Random uint8 HxWx3 images, smooth enough that resizing them is not pure noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, height // 4 + 1, width // 4 + 1, 3)).astype(np.uint8)
    return [np.repeat(np.repeat(img, 4, 0), 4, 1)[:height, :width].copy() for img in coarse]


def build_char_tokenizer(folder: str | os.PathLike, max_length: int = TINY_TEXT_LENGTH) -> Path:
    """A CLIPTokenizer with one token per byte (plus ``</w>`` variants) and no merges.

    Ids follow CLIP's layout: byte tokens first, then BOS and EOS last.
    """
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = sorted(ByteLevel.alphabet())
    vocab = {char: i for i, char in enumerate(chars)}
    vocab.update({char + "</w>": i + len(chars) for i, char in enumerate(chars)})
    vocab.update({BOS: len(vocab), EOS: len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer.from_pretrained(folder, model_max_length=max_length).save_pretrained(folder)
    return folder


def build_tiny_clip(folder: str | os.PathLike, seed: int = 0) -> Path:
    """transformers CLIPModel (32x32 images, 16 text positions) with tokenizer and image processor."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = build_char_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    # initializer_factor 3: with the default init every image embeds to nearly the same vector.
    tower = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "initializer_factor": 3.0,
    }
    config = CLIPConfig(
        text_config={
            **tower,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TINY_TEXT_LENGTH,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={**tower, "image_size": TINY_IMAGE_SIZE, "patch_size": 8},
        projection_dim=16,
        initializer_factor=3.0,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
    ).save_pretrained(folder)
    return folder


def build_tiny_dino(folder: str | os.PathLike, seed: int = 0) -> Path:
    """transformers ViTModel (DINO's architecture) with a square-resize image processor."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = Path(folder)
    config = ViTConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=TINY_IMAGE_SIZE,
        patch_size=8,
        initializer_range=0.2,  # spreads the random embeddings apart (default 0.02)
    )
    torch.manual_seed(seed)
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(
        size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        resample=3,  # bicubic
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return folder


def build_tiny_open_clip(folder: str | os.PathLike, seed: int = 0) -> Path:
    """open_clip model in a ``local-dir:`` folder (open_clip_config.json + weights)."""
    import open_clip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_OPEN_CLIP_CONFIG)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP_CONFIG}, indent=1))
    return folder


def tiny_vae_config() -> dict:
    """The mini SD VAE (64x64x3 <-> 16x16x4) with 8/16/16 channels."""
    from ipbench.world.mini_sd import vae_config

    return vae_config(block_out_channels=(8, 16, 16), norm_num_groups=8)


def tiny_unet_config() -> dict:
    """The mini SD UNet with 16/32/32 channels, conditioned on ``build_tiny_clip``'s text tower."""
    from ipbench.world.mini_sd import unet_config

    return unet_config(TINY_CLIP_WIDTH, block_out_channels=(16, 32, 32), attention_head_dim=4,
                       norm_num_groups=8, layers_per_block=1)


def build_tiny_pipeline(folder: str | os.PathLike, clip_dir: str | os.PathLike, seed: int = 0) -> Path:
    """A StableDiffusionPipeline folder (64x64 images) with random VAE and UNet, assembled like mini SD's."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from ipbench.world.pipeline import assemble_pipeline

    folder = Path(folder)
    parts = folder.with_name(folder.name + "-parts")
    torch.manual_seed(seed)
    AutoencoderKL(**tiny_vae_config()).save_pretrained(parts / "vae")
    UNet2DConditionModel(**tiny_unet_config()).save_pretrained(parts / "unet")
    return assemble_pipeline(folder, parts / "vae", parts / "unet", clip_dir)
