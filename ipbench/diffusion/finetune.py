"""Fine-tuning networks of a Stable Diffusion pipeline on (image, caption) pairs.

The epsilon-prediction loss SD 1.x trains with, over a frozen VAE and (by
default) a frozen text encoder: LoRA, DreamBooth, Textual Inversion and
IP-Adapter training all reduce to it plus which parameters are trainable.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ipbench.training.loop import autocast, to_unit_range


def encode_prompts(pipe, prompts: list[str], device) -> torch.Tensor:
    """The text encoder's last hidden states, padded to max length as the pipeline pads."""
    tokens = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                            truncation=True, return_tensors="pt").input_ids.to(device)
    return pipe.text_encoder(tokens)[0]


def denoising_loss(pipe, images: np.ndarray, prompts: list[str], generator: torch.Generator,
                   text_grad: bool = False) -> torch.Tensor:
    """Mean squared error of the UNet's noise prediction on uint8 ``images`` (B, H, W, 3) at random timesteps."""
    device = pipe.unet.device
    with torch.no_grad():
        pixels = to_unit_range(torch.from_numpy(np.ascontiguousarray(images)).to(device))
        latents = pipe.vae.encode(pixels).latent_dist.sample(generator) * pipe.vae.config.scaling_factor
    with torch.set_grad_enabled(text_grad):
        states = encode_prompts(pipe, prompts, device)
    noise = torch.randn(latents.shape, generator=generator, device=device)
    steps = pipe.scheduler.config.num_train_timesteps
    timesteps = torch.randint(steps, (len(latents),), generator=generator, device=device)
    noisy = pipe.scheduler.add_noise(latents, noise, timesteps)
    with autocast(device):
        prediction = pipe.unet(noisy, timesteps, encoder_hidden_states=states).sample
    return F.mse_loss(prediction.float(), noise)
