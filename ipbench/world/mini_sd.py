"""A miniature Stable Diffusion for the mini world: VAE, text-conditioned UNet, standard pipeline folder.

64x64 RGB images map to 16x16x4 latents; the UNet is conditioned on the last
hidden state of the conditioning CLIP's text tower, as SD 1.x is. The
assembled folder is a plain ``StableDiffusionPipeline`` (plus the CLIP vision
tower as ``image_encoder``), so diffusers' IP-Adapter loading works on it.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ipbench.world.pipeline import NOISE_SCHEDULE, load_clip_towers
from ipbench.training.loop import (ProgressSchedule, TrainingSteps, autocast, min_snr_weights, parameter_count,
                                   progress_bar, save_half, seconds_since, to_unit_range)

SCALING_SAMPLE = 2048  # images encoded to measure the latent scaling factor


def vae_config(block_out_channels=(32, 64, 128), latent_channels: int = 4, norm_num_groups: int = 32) -> dict:
    """AutoencoderKL config: 64x64x3 <-> 16x16 x ``latent_channels`` (one downsample between each pair of blocks)."""
    blocks = len(block_out_channels)
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * blocks,
        "up_block_types": ("UpDecoderBlock2D",) * blocks,
        "block_out_channels": tuple(block_out_channels),
        "layers_per_block": 1,
        "latent_channels": latent_channels,
        "norm_num_groups": norm_num_groups,
        "sample_size": 64,
    }


def unet_config(cross_attention_dim: int, block_out_channels=(64, 128, 128), attention_head_dim: int = 8,
                norm_num_groups: int = 32, layers_per_block: int = 2, latent_channels: int = 4) -> dict:
    """UNet2DConditionModel config on 16x16 latents; cross-attention only at 8x8 and 4x4 (cheaper)."""
    return {
        "sample_size": 16,
        "in_channels": latent_channels,
        "out_channels": latent_channels,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "block_out_channels": tuple(block_out_channels),
        "layers_per_block": layers_per_block,
        "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": attention_head_dim,
        "norm_num_groups": norm_num_groups,
    }


# ---------------------------------------------------------------- training


@torch.no_grad()
def measure_scaling_factor(vae, images: torch.Tensor, batch_size: int = 256) -> float:
    """1 / std of sampled latents over ``images`` (uint8 NHWC on the VAE's device), as SD's 0.18215 was chosen."""
    latents = [vae.encode(to_unit_range(images[i : i + batch_size])).latent_dist.sample()
               for i in range(0, len(images), batch_size)]
    return float(1.0 / torch.cat(latents).float().std())


def train_vae(out_dir, data: dict, steps: int, batch_size: int = 64, lr: float = 1e-4, seed: int = 0,
              device=None, lpips_weight: float = 0.5, kl_weight: float = 1e-6, config: dict | None = None,
              time_limit_s: float | None = None, log_every: int = 100) -> dict:
    """Train an AutoencoderKL on ``data["images"]`` (uint8 (N, 64, 64, 3)): L1 + LPIPS(alex) + KL.

    LPIPS is the metric engine's real AlexNet LPIPS. AdamW with warmup and
    cosine decay, bf16 autocast on CUDA. The latent scaling factor is measured
    after training and stored in the saved config. ``time_limit_s`` stops early
    (recorded as ``stopped_at_step``; see :class:`ProgressSchedule`), so a lease limit never loses the run.
    """
    from diffusers import AutoencoderKL

    from metrics.lpips_metric import load_lpips

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    vae = AutoencoderKL(**(config or vae_config())).to(device).train()
    lpips_model = load_lpips("alex", device)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    pixels = torch.from_numpy(np.ascontiguousarray(data["images"])).to(device)
    generator = torch.Generator(device).manual_seed(seed)
    history = []
    started = time.perf_counter()
    schedule = ProgressSchedule(optimizer, lr, steps, time_limit_s)
    step = 0
    bar = progress_bar(steps, "vae")
    for step in range(steps):
        if schedule.finished(step):
            break
        bar.update()
        current_lr = schedule.set_lr(step)
        batch = to_unit_range(pixels[torch.randint(len(pixels), (batch_size,), device=device, generator=generator)])
        with autocast(device):
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
        if step % log_every == 0 or step == steps - 1:
            history.append({"step": step, "loss": loss.item(), "l1": l1.item(), "lpips": perceptual.item(),
                            "kl": kl.item(), "lr": current_lr})
    else:
        step = steps
    bar.close()
    train_seconds = seconds_since(started, device)
    vae.eval()
    scaling = measure_scaling_factor(vae, pixels[:SCALING_SAMPLE])
    vae.register_to_config(scaling_factor=scaling)
    out_dir = Path(out_dir)
    save_half(vae, out_dir)
    record = {"steps": steps, "stopped_at_step": step, "batch_size": batch_size, "lr": lr, "seed": seed,
              "lpips_weight": lpips_weight, "kl_weight": kl_weight, "scaling_factor": scaling,
              "parameters": parameter_count(vae), "train_seconds": train_seconds,
              "seconds_per_step": train_seconds / max(step, 1), "device": str(device),
              "first_loss": history[0]["loss"] if history else None,
              "final_loss": history[-1]["loss"] if history else None, "history": history}
    return record


def _caption_tokens(tokenizer, scenes, variants: int, rng: np.random.Generator) -> torch.Tensor:
    """(N, variants, max_length) token ids of captions with random drops, padded as the pipeline pads."""
    from ipbench.world.train_data import training_captions

    texts = [text for _ in range(variants) for text in training_captions(scenes, rng)[0]]  # variant-major
    unique, inverse = np.unique(texts, return_inverse=True)  # far fewer distinct captions than pairs
    ids = tokenizer(unique.tolist(), padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    return ids[torch.from_numpy(inverse.reshape(variants, len(scenes)).T.copy())]


@torch.no_grad()
def _encode_latents(vae, pixels: torch.Tensor, batch_size: int = 1024):
    """Posterior mean and std of every image, computed once: training then samples latents without the encoder."""
    means, stds = [], []
    for start in range(0, len(pixels), batch_size):
        with autocast(pixels.device):
            posterior = vae.encode(to_unit_range(pixels[start : start + batch_size])).latent_dist
        means.append(posterior.mean.float())
        stds.append(posterior.std.float())
    return torch.cat(means), torch.cat(stds)


def train_unet(out_dir, vae_dir, text_encoder_dir, data: dict, steps: int, batch_size: int = 64, lr: float = 1e-4,
               seed: int = 0, device=None, caption_dropout: float = 0.1, config: dict | None = None,
               min_snr_gamma: float | None = 5.0, ema_decay: float | None = 0.999, caption_variants: int = 8,
               time_limit_s: float | None = None, log_every: int = 100) -> dict:
    """Train a text-conditioned UNet (epsilon prediction) on latents of a frozen VAE.

    ``data`` holds ``images`` (uint8 (N, 64, 64, 3)) and ``scenes``. Captions
    come from :func:`training_captions` (``caption_variants`` per image, drawn
    once), replaced by "" with probability ``caption_dropout`` for
    classifier-free guidance; ``text_encoder_dir`` is the conditioning CLIPModel
    folder, frozen. Latent posteriors are encoded once and sampled per step.
    Min-SNR-gamma loss weighting, AdamW with warmup and cosine decay, and an EMA
    of the weights (saved instead of the raw weights when ``ema_decay`` is set).
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from diffusers.training_utils import EMAModel

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    started = time.perf_counter()
    vae = AutoencoderKL.from_pretrained(vae_dir, dtype=torch.float32).to(device).eval().requires_grad_(False)
    tokenizer, text_encoder, _, _ = load_clip_towers(text_encoder_dir)
    text_encoder = text_encoder.to(device).requires_grad_(False)
    rng = np.random.default_rng(seed)
    token_ids = _caption_tokens(tokenizer, data["scenes"], caption_variants, rng).to(device)
    empty_ids = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length,
                          return_tensors="pt").input_ids.to(device)
    latent_mean, latent_std = _encode_latents(vae, torch.from_numpy(np.ascontiguousarray(data["images"])).to(device))
    scaling = vae.config.scaling_factor
    del vae
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**(config or unet_config(text_encoder.config.hidden_size))).to(device).train()
    ema = EMAModel(unet.parameters(), decay=ema_decay) if ema_decay else None
    noise_scheduler = DDPMScheduler(**NOISE_SCHEDULE)
    alphas_cumprod = noise_scheduler.alphas_cumprod.to(device)
    snr = alphas_cumprod / (1 - alphas_cumprod)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-2)
    generator = torch.Generator(device).manual_seed(seed)
    n_images = len(latent_mean)
    run = TrainingSteps("unet", optimizer, unet.parameters(), lr, steps, started, device, time_limit_s, log_every, ema)
    for _ in run:
        index = torch.randint(n_images, (batch_size,), device=device, generator=generator)
        variant = torch.randint(caption_variants, (batch_size,), device=device, generator=generator)
        ids = token_ids[index, variant]
        dropped = torch.rand(batch_size, device=device, generator=generator) < caption_dropout
        ids = torch.where(dropped[:, None], empty_ids, ids)
        eps = torch.randn(latent_mean[index].shape, device=device, generator=generator)
        latents = (latent_mean[index] + latent_std[index] * eps) * scaling
        noise = torch.randn(latents.shape, device=device, generator=generator)
        timesteps = torch.randint(len(alphas_cumprod), (batch_size,), device=device, generator=generator)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        with torch.no_grad(), autocast(device):
            text_states = text_encoder(ids)[0]
        with autocast(device):
            prediction = unet(noisy, timesteps, encoder_hidden_states=text_states).sample
        per_sample = F.mse_loss(prediction.float(), noise, reduction="none").mean(dim=(1, 2, 3))
        if min_snr_gamma:
            per_sample = per_sample * min_snr_weights(snr[timesteps], min_snr_gamma)
        run.update(per_sample.mean())
    if ema:
        ema.copy_to(unet.parameters())
    out_dir = Path(out_dir)
    save_half(unet.eval(), out_dir)
    return {**run.record(), "batch_size": batch_size, "lr": lr, "seed": seed, "caption_dropout": caption_dropout,
            "min_snr_gamma": min_snr_gamma, "ema_decay": ema_decay, "caption_variants": caption_variants,
            "n_images": n_images, "parameters": parameter_count(unet)}


# ---------------------------------------------------------------- evaluation (the manifest's final numbers)


def _attribute_summary(images: list[np.ndarray], scenes, shape_reader) -> dict:
    from ipbench.world.render import ATTRIBUTES
    from ipbench.world.metrics import attribute_scores

    truths = [{name: getattr(scene, name) for name in ATTRIBUTES if getattr(scene, name) is not None}
              for scene in scenes]
    scores = attribute_scores(images, truths, shape_reader)
    return {column: float(scores[column].mean()) for column in scores.columns if column != "resized"}


def _shape_reader(shape_cnn_dir, device):
    from ipbench.world.shape_cnn import load_shape_cnn, predict

    model = load_shape_cnn(shape_cnn_dir, device)
    return lambda images: predict(model, np.stack(images))[:2]


@torch.no_grad()
def evaluate_vae(vae_dir, shape_cnn_dir, device="cpu", n: int = 500, seed: int = 0, reconstructions=None) -> dict:
    """Reconstruction of ``n`` fresh test renders (posterior mode): analyzer accuracy, LPIPS(alex), PSNR.

    ``render_*`` is the analyzers' accuracy on the renders themselves (the
    ceiling), ``recon_*`` on the reconstructions. ``reconstructions`` (uint8, of
    ``held_out_scenes(n, seed)``, e.g. a robustness sample's ``vae`` images) skips re-encoding them.
    """
    from diffusers import AutoencoderKL

    from ipbench.world.render import held_out_scenes, render
    from metrics.lpips_metric import lpips_distances

    device = torch.device(device)
    vae = AutoencoderKL.from_pretrained(vae_dir, dtype=torch.float32).to(device).eval()
    scenes = held_out_scenes(n, seed)
    renders = np.stack([render(scene) for scene in scenes])
    if reconstructions is None:
        from ipbench.world.train_data import vae_reconstructions

        reconstructions = vae_reconstructions(vae_dir, renders, device).cpu().numpy()
    recon = np.asarray(reconstructions)
    if recon.shape != renders.shape:
        raise ValueError(f"reconstructions of shape {recon.shape} for {renders.shape} renders")
    reader = _shape_reader(shape_cnn_dir, device)
    squared_error = ((recon.astype(np.float64) - renders) ** 2).mean(axis=(1, 2, 3))
    return {
        **{f"render_{k}": v for k, v in _attribute_summary(list(renders), scenes, reader).items()},
        **{f"recon_{k}": v for k, v in _attribute_summary(list(recon), scenes, reader).items()},
        "lpips_alex": float(lpips_distances(list(recon), list(renders), device=device).mean()),
        "psnr": float(np.mean(10 * np.log10(255.0**2 / np.maximum(squared_error, 1e-10)))),
        "latent_shape": list(vae.encode(to_unit_range(torch.from_numpy(renders[:1]).to(device)))
                             .latent_dist.mean.shape[1:]),
        "n_test": n,
    }


@torch.no_grad()
def evaluate_pipeline(pipeline_dir, shape_cnn_dir, device="cpu", n: int = 256, seed: int = 0,
                      guidance_scales=(1.0, 3.0, 5.0, 7.5), num_inference_steps: int = 20) -> dict:
    """Generate from the full captions of ``n`` fresh test scenes; analyzer accuracy per guidance scale."""
    from diffusers import StableDiffusionPipeline

    from ipbench.world.render import caption, held_out_scenes

    device = torch.device(device)
    pipe = StableDiffusionPipeline.from_pretrained(pipeline_dir, dtype=torch.float32).to(device)
    pipe.set_progress_bar_config(disable=True)
    scenes = held_out_scenes(n, seed)
    prompts = [caption(scene) for scene in scenes]
    reader = _shape_reader(shape_cnn_dir, device)
    results = {"n_test": n, "num_inference_steps": num_inference_steps, "scheduler": "DDIM"}
    for scale in guidance_scales:
        generators = [torch.Generator(device).manual_seed(seed * 100_000 + k) for k in range(n)]
        images = pipe(prompts, num_inference_steps=num_inference_steps, guidance_scale=scale,
                      generator=generators, output_type="np").images
        images = list(np.round(np.clip(images, 0, 1) * 255).astype(np.uint8))
        results[f"cfg_{scale:g}"] = _attribute_summary(images, scenes, reader)
    return results
