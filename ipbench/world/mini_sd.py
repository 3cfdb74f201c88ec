"""A miniature Stable Diffusion for the mini world: VAE, text-conditioned UNet, standard pipeline folder.

64x64 RGB images map to 16x16x4 latents; the UNet is conditioned on the last
hidden state of the conditioning CLIP's text tower, as SD 1.x is. The
assembled folder is a plain ``StableDiffusionPipeline`` (plus the CLIP vision
tower as ``image_encoder``), so diffusers' IP-Adapter loading works on it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# SD 1.x noise schedule, shared by training (DDPM) and sampling (DDIM).
NOISE_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                  "beta_schedule": "scaled_linear"}
SCALING_SAMPLE = 2048  # images encoded to measure the latent scaling factor


def vae_config(block_out_channels=(32, 64, 128), norm_num_groups: int = 32) -> dict:
    """AutoencoderKL config: 64x64x3 <-> 16x16x4 (one downsample between each pair of blocks)."""
    blocks = len(block_out_channels)
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * blocks,
        "up_block_types": ("UpDecoderBlock2D",) * blocks,
        "block_out_channels": tuple(block_out_channels),
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": norm_num_groups,
        "sample_size": 64,
    }


def unet_config(cross_attention_dim: int, block_out_channels=(64, 128, 128), attention_head_dim: int = 8,
                norm_num_groups: int = 32, layers_per_block: int = 2) -> dict:
    """UNet2DConditionModel config on 16x16x4 latents; cross-attention only at 8x8 and 4x4 (cheaper)."""
    return {
        "sample_size": 16,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "block_out_channels": tuple(block_out_channels),
        "layers_per_block": layers_per_block,
        "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": attention_head_dim,
        "norm_num_groups": norm_num_groups,
    }


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- conditioning CLIP


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

    clip = CLIPModel.from_pretrained(clip_dir).eval()
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


# ---------------------------------------------------------------- training


def _to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def _write_json(path: Path, record: dict) -> None:
    path.write_text(json.dumps(record, indent=1))


@torch.no_grad()
def measure_scaling_factor(vae, images: torch.Tensor, batch_size: int = 256) -> float:
    """1 / std of sampled latents over ``images`` (uint8 NHWC on the VAE's device), as SD's 0.18215 was chosen."""
    latents = [vae.encode(_to_unit_range(images[i : i + batch_size])).latent_dist.sample()
               for i in range(0, len(images), batch_size)]
    return float(1.0 / torch.cat(latents).float().std())


def train_vae(out_dir, images: np.ndarray, steps: int, batch_size: int = 64, lr: float = 1e-4, seed: int = 0,
              device=None, lpips_weight: float = 0.5, kl_weight: float = 1e-6, config: dict | None = None) -> dict:
    """Train an AutoencoderKL on uint8 (N, 64, 64, 3) images: L1 + LPIPS(alex) + KL.

    The latent scaling factor is measured after training and stored in the
    saved config. Returns the loss history and timings (also in training.json).
    """
    from diffusers import AutoencoderKL

    from metrics.lpips_metric import load_lpips

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    vae = AutoencoderKL(**(config or vae_config())).to(device).train()
    lpips_model = load_lpips("alex", device)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    pixels = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    generator = torch.Generator(device).manual_seed(seed)
    history = {"loss": [], "l1": [], "lpips": [], "kl": []}
    start = time.perf_counter()
    for _ in range(steps):
        batch = _to_unit_range(pixels[torch.randint(len(pixels), (batch_size,), device=device, generator=generator)])
        with _autocast(device):
            posterior = vae.encode(batch).latent_dist
            recon = vae.decode(posterior.sample(generator)).sample
        recon = recon.float()
        l1 = F.l1_loss(recon, batch)
        perceptual = lpips_model(recon, batch).mean()
        kl = posterior.kl().mean()
        loss = l1 + lpips_weight * perceptual + kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        for name, value in zip(history, (loss, l1, perceptual, kl)):
            history[name].append(float(value.detach()))
    train_seconds = time.perf_counter() - start
    vae.eval()
    scaling = measure_scaling_factor(vae, pixels[:SCALING_SAMPLE])
    vae.register_to_config(scaling_factor=scaling)
    out_dir = Path(out_dir)
    vae.save_pretrained(out_dir)
    record = {**history, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
              "lpips_weight": lpips_weight, "kl_weight": kl_weight, "scaling_factor": scaling,
              "parameters": parameter_count(vae), "train_seconds": train_seconds,
              "seconds_per_step": train_seconds / max(steps, 1), "device": str(device)}
    _write_json(out_dir / "training.json", record)
    return record


def _warmup(steps: int):
    warmup_steps = max(1, min(500, steps // 20))
    return lambda step: min(1.0, (step + 1) / warmup_steps)


def train_unet(out_dir, vae_dir, text_encoder_dir, data: dict, steps: int, batch_size: int = 64, lr: float = 1e-4,
               seed: int = 0, device=None, caption_dropout: float = 0.1, config: dict | None = None) -> dict:
    """Train a text-conditioned UNet (epsilon prediction) on latents of a frozen VAE.

    ``data`` holds ``images`` (uint8 (N, 64, 64, 3)) and ``scenes``; captions
    come from :func:`training_captions`, replaced by "" with probability
    ``caption_dropout`` for classifier-free guidance. ``text_encoder_dir`` is the
    conditioning CLIPModel folder. Returns loss history and timings.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from ipbench.world.train_data import training_captions

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    vae = AutoencoderKL.from_pretrained(vae_dir).to(device).eval().requires_grad_(False)
    tokenizer, text_encoder, _, _ = load_clip_towers(text_encoder_dir)
    text_encoder = text_encoder.to(device).requires_grad_(False)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**(config or unet_config(text_encoder.config.hidden_size))).to(device).train()
    noise_scheduler = DDPMScheduler(**NOISE_SCHEDULE)
    alphas_cumprod = noise_scheduler.alphas_cumprod.to(device)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-2)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup(steps))
    pixels = torch.from_numpy(np.ascontiguousarray(data["images"])).to(device)
    scenes = data["scenes"]
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device).manual_seed(seed)
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        index = rng.integers(len(scenes), size=batch_size)
        texts, _ = training_captions([scenes[i] for i in index], rng)
        texts = ["" if drop else text for text, drop in zip(texts, rng.random(batch_size) < caption_dropout)]
        with torch.no_grad(), _autocast(device):
            latents = vae.encode(_to_unit_range(pixels[torch.from_numpy(index).to(device)])).latent_dist
            latents = latents.sample(generator).float() * vae.config.scaling_factor
            text_states = encode_text(tokenizer, text_encoder, texts, device)
        noise = torch.randn(latents.shape, generator=generator, device=device)
        timesteps = torch.randint(len(alphas_cumprod), (batch_size,), generator=generator, device=device)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        with _autocast(device):
            prediction = unet(noisy, timesteps, encoder_hidden_states=text_states).sample
        loss = F.mse_loss(prediction.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr_schedule.step()
        losses.append(float(loss.detach()))
    train_seconds = time.perf_counter() - start
    out_dir = Path(out_dir)
    unet.save_pretrained(out_dir)
    record = {"loss": losses, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
              "caption_dropout": caption_dropout, "parameters": parameter_count(unet),
              "train_seconds": train_seconds, "seconds_per_step": train_seconds / max(steps, 1),
              "device": str(device)}
    _write_json(out_dir / "training.json", record)
    return record


# ---------------------------------------------------------------- pipeline


def assemble_pipeline(out_dir, vae_dir, unet_dir, clip_dir, with_image_encoder: bool = True) -> Path:
    """Save a StableDiffusionPipeline folder (safetensors) from the trained parts and the conditioning CLIP.

    With ``with_image_encoder`` the CLIP vision tower and its image processor
    are included as ``image_encoder`` / ``feature_extractor``, which IP-Adapter uses.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer, text_encoder, image_encoder, image_processor = load_clip_towers(clip_dir)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(vae_dir),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=UNet2DConditionModel.from_pretrained(unet_dir),
        scheduler=DDIMScheduler(**NOISE_SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1),
        safety_checker=None,
        feature_extractor=image_processor if with_image_encoder else None,
        image_encoder=image_encoder if with_image_encoder else None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return Path(out_dir)
