"""A DeepFloyd-IF-style pixel cascade for the mini world: a 32x32 base UNet and a 32->64 super-resolution UNet.

Both are ``UNet2DConditionModel``s cross-attending to a frozen text encoder's
states: the text-only T5 of ``ipbench.world.t5_text`` (Imagen's premise), or,
for the encoder ablation, the conditioning CLIP's text tower. The base stage
works at 32x32 because that is where the analyzers still read every attribute
of a downsampled render (measured in docs/methods.md; at 16x16 shape and
texture are lost). The super-resolution stage sees the low-resolution image
upsampled as ``IFSuperResolutionPipeline`` upsamples it, noise-augmented at a
random ``noise_level`` passed as ``class_labels`` (IF's conditioning
augmentation). Stage folders are plain ``IFPipeline`` / ``IFSuperResolutionPipeline`` folders.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ipbench.training.loop import (TrainingSteps, autocast, min_snr_weights, parameter_count, save_half,
                                   to_unit_range)

# Pixel-space diffusion uses the cosine schedule (IF's), not SD's scaled-linear latent one.
PIXEL_SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2"}
# IF-I's sampling defaults: dynamic thresholding at the 95th percentile, values up to 1.5 rescaled.
THRESHOLDING = {"thresholding": True, "dynamic_thresholding_ratio": 0.95, "sample_max_value": 1.5,
                "clip_sample": True, "clip_sample_range": 1.0}
STAGE_FILE = "cascade.json"  # what a stage was trained for: its text encoder, resolutions
IF_II_INPUT = 64  # DeepFloyd IF-II upsamples IF-I's 64x64 output
D, CD, U, CU = "DownBlock2D", "CrossAttnDownBlock2D", "UpBlock2D", "CrossAttnUpBlock2D"


def base_unet_config(cross_attention_dim: int, sample_size: int = 32, block_out_channels=(32, 64, 128, 128),
                     layers_per_block: int = 1, attention_head_dim: int = 8) -> dict:
    """Base stage: 3 -> 6 channels (IFPipeline splits a variance half off; ours is fixed, see ``scheduler``),
    cross-attention at the two coarsest levels."""
    levels = len(block_out_channels)
    return {"sample_size": sample_size, "in_channels": 3, "out_channels": 6,
            "down_block_types": (D,) * (levels - 2) + (CD, CD), "up_block_types": (CU, CU) + (U,) * (levels - 2),
            "block_out_channels": tuple(block_out_channels), "layers_per_block": layers_per_block,
            "cross_attention_dim": cross_attention_dim, "attention_head_dim": attention_head_dim,
            "norm_num_groups": min(32, block_out_channels[0])}


def sr_unet_config(cross_attention_dim: int, sample_size: int = 64, block_out_channels=(16, 32, 64, 128),
                   layers_per_block: int = 1, attention_head_dim: int = 8) -> dict:
    """Super-resolution stage: noisy image + upsampled low-res image in (6 channels), the augmentation
    level as a timestep-embedded class label, cross-attention at the coarsest level only."""
    levels = len(block_out_channels)
    return {"sample_size": sample_size, "in_channels": 6, "out_channels": 6,
            "down_block_types": (D,) * (levels - 1) + (CD,), "up_block_types": (CU,) + (U,) * (levels - 1),
            "block_out_channels": tuple(block_out_channels), "layers_per_block": layers_per_block,
            "cross_attention_dim": cross_attention_dim, "attention_head_dim": attention_head_dim,
            "class_embed_type": "timestep", "norm_num_groups": min(32, block_out_channels[0])}


def scheduler(dynamic_thresholding: bool = True, prediction_type: str = "v_prediction"):
    """The stage folders' sampler, as IF's: DDPM (the IF pipelines read its ``variance_type``; DDIM has
    none), x0 dynamically thresholded (Imagen) or, with ``dynamic_thresholding`` off, clipped to [-1, 1]."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**PIXEL_SCHEDULE, **{**THRESHOLDING, "thresholding": dynamic_thresholding},
                         variance_type="fixed_small", prediction_type=prediction_type)


# ---------------------------------------------------------------- text encoders


def load_text_encoder(folder, device="cpu"):
    """(tokenizer, encoder) from a T5 folder (``t5_text``) or a CLIPModel folder (the conditioning CLIP)."""
    model_type = json.loads((Path(folder) / "config.json").read_text()).get("model_type")
    if model_type == "clip":
        from ipbench.world.pipeline import load_clip_towers

        tokenizer, text_encoder, _, _ = load_clip_towers(folder)
        return tokenizer, text_encoder.to(device)
    from ipbench.world.t5_text import load_t5

    return load_t5(folder, device)


def is_t5(text_encoder) -> bool:
    return getattr(text_encoder.config, "model_type", "") == "t5"


def encode_prompts(tokenizer, text_encoder, texts: list[str], device) -> torch.Tensor:
    """(B, L, D) states the UNets attend to, computed for training and sampling alike.

    T5 as ``IFPipeline.encode_prompt`` does it (77 positions, attention mask to
    the encoder); a CLIP text tower as the SD pipeline does (its own length, no mask).
    """
    from ipbench.world.pipeline import encode_text
    from ipbench.world.t5_text import MAX_LENGTH

    if not is_t5(text_encoder):
        return encode_text(tokenizer, text_encoder, texts, device)
    tokens = tokenizer(texts, padding="max_length", max_length=MAX_LENGTH, truncation=True,
                       add_special_tokens=True, return_tensors="pt")
    return text_encoder(tokens.input_ids.to(device), attention_mask=tokens.attention_mask.to(device))[0]


# ---------------------------------------------------------------- images


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 NHWC renders -> [-1, 1] NCHW at ``size`` (area average: every pixel counts once)."""
    return F.interpolate(to_unit_range(images), size=(size, size), mode="area")


def upsample_condition(low: torch.Tensor, size: int) -> torch.Tensor:
    """The low-resolution image as IFSuperResolutionPipeline feeds it to the UNet (bilinear, corners aligned)."""
    return F.interpolate(low, (size, size), mode="bilinear", align_corners=True)


# ---------------------------------------------------------------- training


def _caption_tokens(tokenizer, scenes, variants: int, rng: np.random.Generator):
    """(unique captions, (N, variants) index into them): captions with random attribute drops, drawn once."""
    from ipbench.world.train_data import training_captions

    texts = [text for _ in range(variants) for text in training_captions(scenes, rng)[0]]
    unique, inverse = np.unique(texts, return_inverse=True)
    return unique.tolist(), torch.from_numpy(inverse.reshape(variants, len(scenes)).T.copy())


@torch.no_grad()
def _encode_all(tokenizer, text_encoder, texts: list[str], device, batch_size: int = 2048) -> torch.Tensor:
    """States of every distinct caption, once (in bf16 on the GPU: the encoder is frozen)."""
    parts = []
    for start in range(0, len(texts), batch_size):
        with autocast(device):
            parts.append(encode_prompts(tokenizer, text_encoder, texts[start : start + batch_size], device)
                         .to(torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32))
    return torch.cat(parts)


def train_stage(out_dir, stage: str, text_dir, data: dict, steps: int, batch_size: int = 256, lr: float = 5e-4,
                seed: int = 0, device=None, caption_dropout: float = 0.1, architecture: dict | None = None,
                min_snr_gamma: float | None = 5.0, ema_decay: float | None = 0.999, caption_variants: int = 8,
                low_resolution: int = 32, max_noise_level: int = 500, prediction_type: str = "v_prediction",
                time_limit_s: float | None = None, log_every: int = 100,
                channels_last: bool | None = None, compile: bool = False, init_dir=None) -> dict:
    """Train the ``base`` (32x32 from text) or ``sr`` (64x64 from text and a 32x32 image) stage.

    Epsilon prediction on ``data["images"]`` (uint8 64x64 renders) with
    captions of ``data["scenes"]`` (random attribute drops, "" with probability
    ``caption_dropout`` for guidance), states of the frozen encoder in
    ``text_dir`` computed once per distinct caption. The SR stage's low-res
    input is the render downsampled as the base stage's training targets are,
    noise-augmented at a level drawn uniformly from [0, ``max_noise_level``].
    ``prediction_type`` is ``v_prediction`` (Imagen's for its SR models: with
    epsilon prediction, x0 at high noise levels is the residual divided by a tiny
    sqrt(alpha_bar), and a first try sampled wrong colours that way) or ``epsilon``.
    Min-SNR-gamma weighting, AdamW with warmup and cosine decay, EMA weights saved.
    ``channels_last`` (default: on CUDA) and ``compile`` (``torch.compile`` of the UNet: its first steps
    compile) are speed settings (benchmarks/cascade_train_speed.py).
    ``init_dir``: a stage trained here to continue from (same stage, architecture and text encoder;
    checked by :func:`continued_from`): its saved (EMA) weights start the UNet, while the optimizer, the
    EMA and the warmup-cosine schedule start afresh. The record's ``total_steps`` adds its steps.
    """
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from diffusers.training_utils import EMAModel

    if stage not in ("base", "sr"):
        raise ValueError(f"stage {stage!r}: use base or sr")
    if prediction_type not in ("v_prediction", "epsilon"):
        raise ValueError(f"prediction_type {prediction_type!r}: use v_prediction or epsilon")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    started = time.perf_counter()
    tokenizer, text_encoder = load_text_encoder(text_dir, device)
    text_encoder.requires_grad_(False)
    rng = np.random.default_rng(seed)
    texts, caption_index = _caption_tokens(tokenizer, data["scenes"], caption_variants, rng)
    states = _encode_all(tokenizer, text_encoder, texts + [""], device)
    empty = len(texts)
    caption_index = caption_index.to(device)
    width = states.shape[-1]
    del text_encoder
    pixels = torch.from_numpy(np.ascontiguousarray(data["images"])).to(device)
    config = (base_unet_config if stage == "base" else sr_unet_config)(width, **(architecture or {}))
    torch.manual_seed(seed)
    if channels_last is None:
        channels_last = device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    facts = {"stage": stage, "text_encoder": json.loads((Path(text_dir) / "config.json").read_text())
                   .get("model_type"), "low_resolution": low_resolution, "resolution": config["sample_size"]
                   if stage == "sr" else low_resolution, "max_noise_level": max_noise_level if stage == "sr" else None,
                   "prediction_type": prediction_type}
    lineage = continued_from(init_dir, facts, config, text_dir) if init_dir else {"steps_before": 0}
    unet = (UNet2DConditionModel.from_pretrained(init_dir, dtype=torch.float32) if init_dir
            else UNet2DConditionModel(**config)).to(device, memory_format=memory_format).train()
    if compile:
        unet.compile()  # in place: the parameters and the saved state dict keep their names
    ema = EMAModel(unet.parameters(), decay=ema_decay, foreach=True) if ema_decay else None
    noise_scheduler = DDPMScheduler(**PIXEL_SCHEDULE)
    alphas_cumprod = noise_scheduler.alphas_cumprod.to(device)
    snr = alphas_cumprod / (1 - alphas_cumprod)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-2)
    generator = torch.Generator(device).manual_seed(seed)
    run = TrainingSteps(f"if_{stage}", optimizer, unet.parameters(), lr, steps, started, device, time_limit_s,
                        log_every, ema)
    for _ in run:
        index = torch.randint(len(pixels), (batch_size,), device=device, generator=generator)
        variant = torch.randint(caption_variants, (batch_size,), device=device, generator=generator)
        rows = caption_index[index, variant]
        dropped = torch.rand(batch_size, device=device, generator=generator) < caption_dropout
        text_states = states[torch.where(dropped, empty, rows)]
        images = pixels[index]
        low = downsample(images, low_resolution)
        target = low if stage == "base" else to_unit_range(images)
        noise = torch.randn(target.shape, device=device, generator=generator)
        timesteps = torch.randint(len(alphas_cumprod), (batch_size,), device=device, generator=generator)
        model_input = noise_scheduler.add_noise(target, noise, timesteps)
        extra = {}
        if stage == "sr":
            levels = torch.randint(max_noise_level + 1, (batch_size,), device=device, generator=generator)
            condition = upsample_condition(low, target.shape[-1])
            augmentation = torch.randn(condition.shape, device=device, generator=generator)
            condition = noise_scheduler.add_noise(condition, augmentation, levels.clamp(max=len(alphas_cumprod) - 1))
            model_input = torch.cat([model_input, condition], dim=1)
            extra["class_labels"] = levels
        with autocast(device):
            prediction = unet(model_input.contiguous(memory_format=memory_format), timesteps,
                              encoder_hidden_states=text_states, **extra).sample
        goal = noise if prediction_type == "epsilon" else noise_scheduler.get_velocity(target, noise, timesteps)
        # The variance half of the output is unused: sampling uses fixed (DDPM "fixed_small") variances.
        per_sample = F.mse_loss(prediction[:, :3].float(), goal, reduction="none").mean(dim=(1, 2, 3))
        if min_snr_gamma:
            per_sample = per_sample * min_snr_weights(snr[timesteps], min_snr_gamma, prediction_type)
        run.update(per_sample.mean())
    if ema:
        ema.copy_to(unet.parameters())
    out_dir = Path(out_dir)
    save_half(unet.eval(), out_dir)
    (out_dir / STAGE_FILE).write_text(json.dumps(facts, indent=2))
    record = run.record()
    return {**facts, **record, "init_from": lineage, "total_steps": lineage["steps_before"] + record["stopped_at_step"],
            "batch_size": batch_size, "lr": lr, "seed": seed,
            "caption_dropout": caption_dropout, "min_snr_gamma": min_snr_gamma, "ema_decay": ema_decay,
            "caption_variants": caption_variants, "n_captions": len(texts), "n_images": len(pixels),
            "parameters": parameter_count(unet)}


def continued_from(init_dir, facts: dict, config: dict, text_dir) -> dict:
    """What a continued run starts from: the earlier run's commit and steps, after checking that it is the
    same stage, on the same architecture and on the very text encoder (its manifest's sha256), so the
    continuation trains the model it claims to. A mismatch is an error naming ``init_dir`` and the key."""
    from ipbench.training.manifest import MANIFEST
    from metrics.weights import sha256_file

    init_dir = Path(init_dir)
    manifest_path = init_dir / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"init_from {init_dir}: no {MANIFEST} (continue only from a stage trained here)")
    manifest = json.loads(manifest_path.read_text())
    saved_facts = stage_facts(init_dir)
    for key in ("stage", "text_encoder", "low_resolution", "resolution", "prediction_type"):
        if saved_facts.get(key) != facts[key]:
            raise ValueError(f"init_from {init_dir}: {STAGE_FILE} has {key} {saved_facts.get(key)!r}, this run {facts[key]!r}")
    saved = json.loads((init_dir / "config.json").read_text())
    for key, value in config.items():
        if key in saved and _plain(saved[key]) != _plain(value):
            raise ValueError(f"init_from {init_dir}: config.json has {key} {saved[key]!r}, this run's architecture {value!r}")
    encoder = manifest.get("inputs", {}).get("text_encoder", {})
    text_manifest = Path(text_dir) / MANIFEST
    if text_manifest.is_file() and encoder.get("sha256") != sha256_file(text_manifest):
        raise ValueError(f"init_from {init_dir}: it was trained on the text encoder {encoder.get('file') or encoder.get('folder')}, whose "
                         f"manifest differs from {text_manifest} (retrain the stage from scratch: init_from null)")
    result = manifest.get("training_result", {})
    return {"path": str(init_dir), "git": manifest.get("git", {}).get("commit"),
            "steps_before": result.get("total_steps", result.get("stopped_at_step", 0))}


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value  # JSON keeps tuples as lists


# ---------------------------------------------------------------- stage folders


def stage_facts(folder) -> dict:
    """The cascade.json of a stage trained here, or {} for another IF folder (a Hub copy)."""
    path = Path(folder) / STAGE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def assemble_stage(out_dir, unet_dir, text_dir) -> Path:
    """Save an IFPipeline (base) or IFSuperResolutionPipeline (sr) folder from a trained UNet and its encoder."""
    import shutil

    from diffusers import IFPipeline, IFSuperResolutionPipeline, UNet2DConditionModel

    facts = stage_facts(unet_dir)
    tokenizer, text_encoder = load_text_encoder(text_dir)
    parts = {"tokenizer": tokenizer, "text_encoder": text_encoder,
             "unet": UNet2DConditionModel.from_pretrained(unet_dir, dtype=torch.float32),
             "scheduler": scheduler(prediction_type=facts.get("prediction_type", "epsilon")),
             "safety_checker": None, "feature_extractor": None, "watermarker": None, "requires_safety_checker": False}
    if facts.get("stage") == "sr":
        from diffusers import DDPMScheduler

        pipe = IFSuperResolutionPipeline(**parts, image_noising_scheduler=DDPMScheduler(**PIXEL_SCHEDULE))
    else:
        pipe = IFPipeline(**parts)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    shutil.copy(Path(unet_dir) / STAGE_FILE, Path(out_dir) / STAGE_FILE)
    return Path(out_dir)


def check_encoder(unet_dir, text_dir, key: str) -> None:
    """A stage runs only on the encoder family and width it was trained on; otherwise the error names both."""
    facts = stage_facts(unet_dir)
    config = json.loads((Path(text_dir) / "config.json").read_text())
    width = config.get("d_model") or config.get("text_config", {}).get("hidden_size")
    expected = json.loads((Path(unet_dir) / "config.json").read_text())["cross_attention_dim"]
    if config.get("model_type") != facts.get("text_encoder") or width != expected:
        raise ValueError(f"{key}: {text_dir} is a {config.get('model_type')} encoder of width {width}, but "
                         f"{unet_dir} was trained on a {facts.get('text_encoder')} encoder of width {expected}")


def check_stage_input(low_resolution: tuple[int, int], stage_2_dir) -> None:
    """A super-resolution stage takes the size its training used (IF-II: IF-I's 64x64); others are refused."""
    expected = stage_facts(stage_2_dir).get("low_resolution", IF_II_INPUT)
    if tuple(low_resolution) != (expected, expected):
        raise ValueError(f"the super-resolution stage {stage_2_dir} takes {expected}x{expected} images, but the base "
                         f"stage gives {low_resolution[0]}x{low_resolution[1]}")


# ---------------------------------------------------------------- evaluation (the manifests' final numbers)


@torch.no_grad()
def evaluate_stage(unet_dir, text_dir, shape_cnn_dir, device="cpu", n: int = 256, seed: int = 0,
                   guidance_scales=(1.0, 4.0, 7.0), num_inference_steps: int = 20, thresholding=(True, False),
                   noise_level: int = 100) -> dict:
    """Analyzer accuracy of one stage on ``n`` fresh test scenes, per x0 clipping and guidance scale.

    Base: sampled from the full captions, upsampled to 64 for the analyzers.
    SR: the test renders downsampled, upsampled by the stage (so SR is judged
    alone), with PSNR to the renders.
    """
    import tempfile

    from diffusers import DiffusionPipeline

    from ipbench.world.mini_sd import _attribute_summary, _shape_reader
    from ipbench.world.render import caption, held_out_scenes, render

    device = torch.device(device)
    scenes = held_out_scenes(n, seed)
    prompts = [caption(scene) for scene in scenes]
    renders = torch.from_numpy(np.stack([render(scene) for scene in scenes]))
    reader = _shape_reader(shape_cnn_dir, device)
    facts = stage_facts(unet_dir)
    results = {"n_test": n, "num_inference_steps": num_inference_steps}
    with tempfile.TemporaryDirectory() as scratch:
        pipe = DiffusionPipeline.from_pretrained(assemble_stage(scratch, unet_dir, text_dir), dtype=torch.float32)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    embeds = torch.cat([encode_prompts(pipe.tokenizer, pipe.text_encoder, prompts[i : i + 256], device)
                        for i in range(0, n, 256)])
    negative = encode_prompts(pipe.tokenizer, pipe.text_encoder, [""], device).expand_as(embeds)
    low = downsample(renders.to(device), facts["low_resolution"])
    for dynamic in thresholding:
        pipe.scheduler = scheduler(dynamic, facts.get("prediction_type", "epsilon"))
        for scale in guidance_scales:
            images = []
            for start in range(0, n, 128):
                part = slice(start, start + 128)
                generators = [torch.Generator(device).manual_seed(seed * 100_000 + k) for k in range(start, min(start + 128, n))]
                call = {"prompt_embeds": embeds[part], "negative_prompt_embeds": negative[part],
                        "num_inference_steps": num_inference_steps, "guidance_scale": scale, "generator": generators,
                        "output_type": "pt"}
                if facts["stage"] == "sr":
                    call.update(image=low[part], noise_level=noise_level)
                out = pipe(**call).images
                images.append(upsample_condition(out.float().clamp(-1, 1), 64) if facts["stage"] == "base" else out)
            pixels = ((torch.cat(images).float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu()
            row = _attribute_summary(list(pixels.numpy()), scenes, reader)
            if facts["stage"] == "sr":
                error = ((pixels.double() - renders.double()) ** 2).mean(dim=(1, 2, 3))
                row["psnr"] = float((10 * torch.log10(255.0**2 / error.clamp(min=1e-10))).mean())
            row["saturated"] = float(((pixels == 0) | (pixels == 255)).double().mean())
            results[f"{'dynamic' if dynamic else 'static'}_cfg_{scale:g}"] = row
    return results
