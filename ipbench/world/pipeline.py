"""The mini SD's pipeline folder and the conditioning CLIP's towers: what generation loads.

Kept apart from the training and evaluation code of ``mini_sd``, so that the
jobs that only assemble or load the pipeline do not depend on that code (their
code digest, ``ipbench/code_digest.py``, follows imports).
"""
from __future__ import annotations

from pathlib import Path

import torch

from metrics.weights import check_architecture

# SD 1.x noise schedule, shared by training (DDPM) and sampling (DDIM).
NOISE_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                  "beta_schedule": "scaled_linear"}


def load_clip_towers(clip_dir):
    """(tokenizer, text_encoder, image_encoder, image_processor) from a transformers CLIPModel folder.

    ``CLIPTextModel.from_pretrained`` on a CLIPModel folder silently leaves the
    text tower random (its keys lack the ``text_model.`` prefix), and
    ``CLIPVisionModelWithProjection`` reads the vision config's projection size,
    not the model's; so both towers are copied out of the loaded CLIPModel.
    """
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPModel,
        CLIPTextModel,
        CLIPVisionModelWithProjection,
    )

    check_architecture(clip_dir, "CLIPModel")
    clip = CLIPModel.from_pretrained(clip_dir, dtype=torch.float32).eval()
    text_encoder = CLIPTextModel(clip.config.text_config)
    text_encoder.load_state_dict(clip.text_model.state_dict(), strict=True)
    vision_config = clip.config.vision_config
    vision_config.projection_dim = clip.config.projection_dim
    image_encoder = CLIPVisionModelWithProjection(vision_config)
    image_encoder.load_state_dict({**{f"vision_model.{k}": v for k, v in clip.vision_model.state_dict().items()},
                                   **{f"visual_projection.{k}": v for k, v in clip.visual_projection.state_dict().items()}},
                                  strict=True)
    return (AutoTokenizer.from_pretrained(clip_dir), text_encoder.eval(), image_encoder.eval(),
            CLIPImageProcessor.from_pretrained(clip_dir))


def encode_text(tokenizer, text_encoder, texts: list[str], device) -> torch.Tensor:
    """Last hidden state of the text tower, padded to the tokenizer's max length (as the SD pipeline does)."""
    tokens = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                       return_tensors="pt")
    return text_encoder(tokens.input_ids.to(device))[0]


def assemble_pipeline(out_dir, vae_dir, unet_dir, clip_dir, with_image_encoder: bool = True) -> Path:
    """Save a StableDiffusionPipeline folder (safetensors) from the trained parts and the conditioning CLIP.

    With ``with_image_encoder`` the CLIP vision tower and its image processor
    are included as ``image_encoder`` / ``feature_extractor``, which IP-Adapter uses.
    """
    check_architecture(vae_dir, "AutoencoderKL")
    check_architecture(unet_dir, "UNet2DConditionModel")
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer, text_encoder, image_encoder, image_processor = load_clip_towers(clip_dir)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(vae_dir, dtype=torch.float32),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=UNet2DConditionModel.from_pretrained(unet_dir, dtype=torch.float32),
        scheduler=DDIMScheduler(**NOISE_SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1),
        safety_checker=None,
        feature_extractor=image_processor if with_image_encoder else None,
        image_encoder=image_encoder if with_image_encoder else None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return Path(out_dir)
