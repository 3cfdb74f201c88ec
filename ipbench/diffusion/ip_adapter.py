"""IP-Adapter and IP-Adapter-Plus on a diffusers Stable Diffusion pipeline: build, train, save, load.

The adapter lives in diffusers' own modules from the start: a new adapter is an
IP-Adapter-format state dict (``image_proj`` + ``ip_adapter`` keys) handed to
``pipe.load_ip_adapter``, so training updates exactly the modules that
generation later loads from the saved file. Its trainable parts, as in
IP-Adapter's training script:

- the image projection: ``ImageProjection`` (4 tokens from the pooled, projected
  image embedding) or, for Plus, ``IPAdapterPlusImageProjection`` (a
  Perceiver resampler over the image tower's penultimate hidden states);
- decoupled ``to_k_ip`` / ``to_v_ip`` on every cross-attention layer,
  initialised from that layer's ``to_k`` / ``to_v``.

Files are written in the original IP-Adapter layout (the key names of
``ip-adapter_sd15`` / ``ip-adapter-plus_sd15``, as one safetensors file with
``image_proj.`` / ``ip_adapter.`` prefixes), which ``load_ip_adapter`` converts
back to diffusers' modules.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import torch

WEIGHT_NAME = "ip-adapter.safetensors"
PLUS_DEPTH = 4  # diffusers builds the Plus resampler with its default depth and dim_head
PLUS_DIM_HEAD = 64


# ---------------------------------------------------------------- the image tower's side


def pixel_values(pipe, images: list[np.ndarray]) -> torch.Tensor:
    """The image tower's input for uint8 images, exactly as the pipeline's ``encode_image`` prepares them."""
    return pipe.feature_extractor(list(images), return_tensors="pt").pixel_values


@torch.no_grad()
def image_features(pipe, pixels: torch.Tensor, plus: bool) -> torch.Tensor:
    """Pooled projected embeddings (B, D) or, for Plus, penultimate hidden states (B, tokens, width)."""
    encoder = pipe.image_encoder
    pixels = pixels.to(encoder.device, next(encoder.parameters()).dtype)
    if plus:
        return encoder(pixels, output_hidden_states=True).hidden_states[-2]
    return encoder(pixels).image_embeds


def empty_image_features(pipe, like: torch.Tensor, plus: bool, pixel_shape) -> torch.Tensor:
    """What the pipeline feeds the unconditional branch: zero features, or for Plus the features of an
    all-zero (normalised) pixel input, as ``encode_image`` and IP-Adapter's Plus training both do."""
    if not plus:
        return torch.zeros_like(like)
    zeros = torch.zeros((1, *pixel_shape), device=pipe.image_encoder.device)
    return image_features(pipe, zeros, plus=True).expand_as(like)


# ---------------------------------------------------------------- IP-Adapter's file layout <-> diffusers

_PLUS_TO_ORIGINAL = [  # diffusers' IPAdapterPlusImageProjection names -> the original Resampler's
    (r"^layers\.(\d+)\.ln0\.", r"layers.\1.0.norm1."),
    (r"^layers\.(\d+)\.ln1\.", r"layers.\1.0.norm2."),
    (r"^layers\.(\d+)\.attn\.to_q\.", r"layers.\1.0.to_q."),
    (r"^layers\.(\d+)\.attn\.to_out\.0\.", r"layers.\1.0.to_out."),
    (r"^layers\.(\d+)\.ff\.0\.", r"layers.\1.1.0."),
    (r"^layers\.(\d+)\.ff\.1\.net\.0\.proj\.", r"layers.\1.1.1."),
    (r"^layers\.(\d+)\.ff\.1\.net\.2\.", r"layers.\1.1.3."),
]


def _image_proj_to_original(projection) -> dict:
    from diffusers.models.embeddings import ImageProjection

    state = {name: value.detach().clone() for name, value in projection.state_dict().items()}
    if isinstance(projection, ImageProjection):
        return {name.replace("image_embeds.", "proj."): value for name, value in state.items()}
    original = {}
    for name, value in state.items():
        key_value = re.match(r"^layers\.(\d+)\.attn\.to_([kv])\.weight$", name)
        if key_value:
            continue  # joined below into to_kv, as the original resampler stores them
        for pattern, replacement in _PLUS_TO_ORIGINAL:
            name = re.sub(pattern, replacement, name)
        original[name] = value
    for layer in range(len(projection.layers)):
        original[f"layers.{layer}.0.to_kv.weight"] = torch.cat(
            [state[f"layers.{layer}.attn.to_k.weight"], state[f"layers.{layer}.attn.to_v.weight"]])
    return original


def cross_attention_processors(unet) -> list[tuple[str, object]]:
    """(name, processor) of every cross-attention layer, in the order IP-Adapter numbers them (1, 3, 5, ...).

    The Plus resampler's own attention layers (under ``encoder_hid_proj``) are not the UNet's.
    """
    return [(name, processor) for name, processor in unet.attn_processors.items()
            if not name.endswith("attn1.processor") and not name.startswith("encoder_hid_proj.")]


def adapter_state_dict(unet) -> dict:
    """The loaded adapter (the first one) in IP-Adapter's layout: {"image_proj": ..., "ip_adapter": ...}."""
    if getattr(unet, "encoder_hid_proj", None) is None or not hasattr(unet.encoder_hid_proj, "image_projection_layers"):
        raise ValueError("the UNet has no IP-Adapter loaded")
    ip_adapter = {}
    for index, (_, processor) in enumerate(cross_attention_processors(unet)):
        key_id = 2 * index + 1
        ip_adapter[f"{key_id}.to_k_ip.weight"] = processor.to_k_ip[0].weight.detach().clone()
        ip_adapter[f"{key_id}.to_v_ip.weight"] = processor.to_v_ip[0].weight.detach().clone()
    return {"image_proj": _image_proj_to_original(unet.encoder_hid_proj.image_projection_layers[0]),
            "ip_adapter": ip_adapter}


def save_adapter(state: dict, path: Path, dtype=torch.float16) -> Path:
    """One safetensors file with ``image_proj.`` / ``ip_adapter.`` prefixed keys, in ``dtype``."""
    from safetensors.torch import save_file

    flat = {f"{group}.{name}": value.to(dtype).contiguous()
            for group in ("image_proj", "ip_adapter") for name, value in state[group].items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(flat, str(path))
    return path


def new_adapter_state(unet, image_embed_dim: int, plus: bool, num_tokens: int, seed: int) -> dict:
    """A fresh adapter in IP-Adapter's layout: a seeded projection, and to_k_ip/to_v_ip copied from to_k/to_v."""
    from diffusers.models.embeddings import ImageProjection, IPAdapterPlusImageProjection

    cross_dim = unet.config.cross_attention_dim
    torch.manual_seed(seed)
    if plus:
        # The file stores no head count: diffusers reads it as to_q's width / 64, so heads x 64 is the width.
        projection = IPAdapterPlusImageProjection(embed_dims=image_embed_dim, output_dims=cross_dim,
                                                  hidden_dims=cross_dim, depth=PLUS_DEPTH, dim_head=PLUS_DIM_HEAD,
                                                  heads=max(1, cross_dim // PLUS_DIM_HEAD), num_queries=num_tokens)
    else:
        if num_tokens != 4:
            raise ValueError(f"IP-Adapter's file format fixes 4 image tokens (diffusers infers it), got {num_tokens}")
        projection = ImageProjection(image_embed_dim=image_embed_dim, cross_attention_dim=cross_dim,
                                     num_image_text_embeds=num_tokens)
    attention = dict(unet.named_modules())
    ip_adapter = {}
    for index, (name, _) in enumerate(cross_attention_processors(unet)):
        layer = attention[name.removesuffix(".processor")]
        ip_adapter[f"{2 * index + 1}.to_k_ip.weight"] = layer.to_k.weight.detach().clone()
        ip_adapter[f"{2 * index + 1}.to_v_ip.weight"] = layer.to_v.weight.detach().clone()
    return {"image_proj": _image_proj_to_original(projection.float()), "ip_adapter": ip_adapter}


WEIGHT_SUFFIXES = (".safetensors", ".bin")


def adapter_location(source: str | Path) -> tuple[str, str, str, bool]:
    """(folder or Hub repo, subfolder, weight name, is local) of an adapter source.

    A local folder holds ``ip-adapter.safetensors``; a local file is itself; a
    Hub file is ``owner/repo/<subfolder>/<file>``, e.g.
    ``h94/IP-Adapter/models/ip-adapter_sd15.bin`` (its image encoder then comes
    from ``<subfolder>/image_encoder``, as ``load_ip_adapter`` loads it).
    """
    path = Path(source)
    if path.is_dir():
        return str(path), "", WEIGHT_NAME, True
    if path.suffix in WEIGHT_SUFFIXES and (path.exists() or path.is_absolute() or str(source).startswith(".")):
        return str(path.parent), "", path.name, True
    parts = str(source).split("/")
    if len(parts) >= 3 and path.suffix in WEIGHT_SUFFIXES and not path.is_absolute():
        return "/".join(parts[:2]), "/".join(parts[2:-1]), parts[-1], False
    return str(path), "", WEIGHT_NAME, True  # a folder that does not exist (yet): named in the error below


def load_adapter(pipe, source: str | Path, scale: float = 1.0) -> None:
    """``pipe.load_ip_adapter`` from an adapter folder, a local file or a Hub file, with clear errors.

    A missing local file names itself and the retrain command; shapes that do
    not fit the base model name both shapes.
    """
    folder, subfolder, weight, local = adapter_location(source)
    if local:
        path = Path(folder) / weight
        if not path.is_file():
            raise FileNotFoundError(f"IP-Adapter weights {path} not found; retrain with "
                                    f"`snakemake --cores all --config retrain={Path(folder).name} device=cuda`")
        if weight.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                _check_shapes(pipe, {key: handle.get_slice(key).get_shape() for key in handle.keys()}, path)
    try:
        pipe.load_ip_adapter(folder, subfolder=subfolder, weight_name=weight)
    except RuntimeError as error:  # load_state_dict's size mismatches
        raise ValueError(f"{source} does not fit the base model: {error}") from error
    pipe.set_ip_adapter_scale(scale)


def _check_shapes(pipe, shapes: dict, path: Path) -> None:
    """Compare the file's decoupled key/value shapes with the base model's cross-attention layers."""
    attention = dict(pipe.unet.named_modules())
    for index, (name, _) in enumerate(cross_attention_processors(pipe.unet)):
        key = f"ip_adapter.{2 * index + 1}.to_k_ip.weight"
        expected = list(attention[name.removesuffix(".processor")].to_k.weight.shape)
        if key not in shapes:
            raise ValueError(f"{path}: no {key} for cross-attention layer {name} (the adapter was trained for "
                             "another base model)")
        if list(shapes[key]) != expected:
            raise ValueError(f"{path}: {key} has shape {list(shapes[key])}, the base model's {name} needs "
                             f"{expected} (the adapter was trained for another base model)")
    encoder = getattr(pipe, "image_encoder", None)
    if encoder is not None:
        embed = (encoder.config.hidden_size if "image_proj.latents" in shapes
                 else encoder.config.projection_dim)
        proj = shapes.get("image_proj.proj.weight") or shapes.get("image_proj.proj_in.weight")
        if proj is not None and proj[-1] != embed:
            raise ValueError(f"{path}: the image projection takes {proj[-1]}-wide image features, the pipeline's "
                             f"image encoder gives {embed}")


def trainable_parameters(unet) -> list[torch.nn.Parameter]:
    """The adapter's parameters: the image projection and every to_k_ip / to_v_ip."""
    parameters = list(unet.encoder_hid_proj.parameters())
    for _, processor in cross_attention_processors(unet):
        parameters += list(processor.to_k_ip.parameters()) + list(processor.to_v_ip.parameters())
    return parameters


# ---------------------------------------------------------------- training


def train(out_dir: Path, pipeline_dir, data: dict, *, plus: bool, steps: int, batch_size: int, lr: float,
          seed: int, num_tokens: int, drop_text: float, drop_image: float, drop_both: float, weight_decay: float,
          time_limit_s: float | None, device, held_out: dict | None = None, log_every: int = 50) -> dict:
    """Train an adapter on (render, full caption) pairs, everything else frozen; IP-Adapter's recipe.

    Each image is its own image prompt. The text, the image or both are dropped
    (``drop_*``, each a probability; IP-Adapter uses 0.05 each) so classifier-free
    guidance works with image prompts: a dropped image gets the features the
    pipeline gives the unconditional branch (:func:`empty_image_features`). Image features and VAE posteriors
    are computed once (both towers are frozen). On ``held_out`` renders the
    record's validation compares the denoising loss with the image prompt
    against the loss with the empty image prompt (both with the empty text).
    """
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    from ipbench.diffusion.finetune import encode_prompts
    from ipbench.diffusion.pipelines import load_pipeline
    from ipbench.training.loop import TrainingSteps, autocast, to_unit_range
    from ipbench.world.render import caption

    device = torch.device(device)
    started = time.perf_counter()
    pipe = load_pipeline(StableDiffusionPipeline, str(pipeline_dir), str(device))
    for part in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.image_encoder):
        part.requires_grad_(False)
    images = np.ascontiguousarray(data["images"])
    captions = [caption(scene) for scene in data["scenes"]]
    features = torch.cat([image_features(pipe, pixel_values(pipe, images[start:start + 1024]), plus)
                          for start in range(0, len(images), 1024)])
    empty = empty_image_features(pipe, features[:1], plus, pixel_values(pipe, images[:1]).shape[1:])
    with torch.no_grad():
        posterior = [pipe.vae.encode(to_unit_range(torch.from_numpy(images[start:start + 256]).to(device))).latent_dist
                     for start in range(0, len(images), 256)]
    latent_mean = torch.cat([p.mean for p in posterior])
    latent_std = torch.cat([p.std for p in posterior])
    unique, caption_index = np.unique(captions, return_inverse=True)
    with torch.no_grad():
        text_states = torch.cat([encode_prompts(pipe, unique[start:start + 1024].tolist(), device)
                                 for start in range(0, len(unique), 1024)])
        empty_text = encode_prompts(pipe, [""], device)
    caption_index = torch.from_numpy(caption_index).to(device)
    del posterior

    image_embed_dim = features.shape[-1]
    pipe.load_ip_adapter(new_adapter_state(pipe.unet, image_embed_dim, plus, num_tokens, seed), subfolder="",
                         weight_name="", image_encoder_folder=None)
    pipe.unet.to(device)
    parameters = trainable_parameters(pipe.unet)
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    generator = torch.Generator(device).manual_seed(seed)
    scaling = pipe.vae.config.scaling_factor
    run = TrainingSteps("ip_adapter_plus" if plus else "ip_adapter", optimizer, parameters, lr, steps, started,
                        device, time_limit_s, log_every, clip_norm=None)
    pipe.unet.train()
    for _ in run:
        index = torch.randint(len(images), (batch_size,), device=device, generator=generator)
        latents = (latent_mean[index] + latent_std[index] * torch.randn(
            latent_mean[index].shape, device=device, generator=generator)) * scaling
        # One draw per row: text only dropped, image only dropped, both dropped, or neither.
        draw = torch.rand(batch_size, device=device, generator=generator)
        no_text = draw < drop_text + drop_both
        no_image = (draw >= drop_text) & (draw < drop_text + drop_both + drop_image)
        states = torch.where(no_text[:, None, None], empty_text, text_states[caption_index[index]])
        mask = no_image.view(-1, *([1] * (features.dim() - 1)))
        image = torch.where(mask, empty.expand_as(features[index]), features[index])
        noise = torch.randn(latents.shape, device=device, generator=generator)
        timesteps = torch.randint(noise_scheduler.config.num_train_timesteps, (batch_size,), device=device,
                                  generator=generator)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        with autocast(device):
            prediction = pipe.unet(noisy, timesteps, encoder_hidden_states=states,
                                   added_cond_kwargs={"image_embeds": [image.unsqueeze(1)]}).sample
        run.update(F.mse_loss(prediction.float(), noise))
    pipe.unet.eval()
    path = save_adapter(adapter_state_dict(pipe.unet), Path(out_dir) / WEIGHT_NAME)
    validation = heldout_losses(pipe, held_out, plus, seed) if held_out else {}
    record = run.record()
    validation["final_loss"] = record["final_loss"]
    return {**record, "validation": validation, "n_images": len(images),
            "parameters": sum(p.numel() for p in parameters), "file_bytes": path.stat().st_size}


@torch.no_grad()
def heldout_losses(pipe, held_out: dict, plus: bool, seed: int, batch_size: int = 64) -> dict:
    """Mean denoising loss on held-out renders with their own image prompt and with the empty one.

    Same latents, noise and timesteps for both, and the empty text: the drop in
    loss is what the image prompt tells the UNet (IP-Adapter's Table 1 setting).
    """
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    from ipbench.diffusion.finetune import encode_prompts
    from ipbench.training.loop import to_unit_range

    device = pipe.unet.device
    generator = torch.Generator(device).manual_seed(seed + 1)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    images = np.ascontiguousarray(held_out["images"])
    totals, elements = {"with_image": 0.0, "empty_image": 0.0}, 0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        latents = pipe.vae.encode(to_unit_range(torch.from_numpy(batch).to(device))).latent_dist.mean
        latents = latents * pipe.vae.config.scaling_factor
        noise = torch.randn(latents.shape, device=device, generator=generator)
        timesteps = torch.randint(scheduler.config.num_train_timesteps, (len(batch),), device=device,
                                  generator=generator)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        elements += noise.numel()
        text = encode_prompts(pipe, [""] * len(batch), device)
        pixels = pixel_values(pipe, batch)
        features = image_features(pipe, pixels, plus)
        empty = empty_image_features(pipe, features[:1], plus, pixels.shape[1:]).expand_as(features)
        for name, image in (("with_image", features), ("empty_image", empty)):
            prediction = pipe.unet(noisy, timesteps, encoder_hidden_states=text,
                                   added_cond_kwargs={"image_embeds": [image.unsqueeze(1)]}).sample
            totals[name] += F.mse_loss(prediction.float(), noise, reduction="sum").item()
    values = {f"heldout_loss_{name}": total / elements for name, total in totals.items()}
    return {**values, "n_heldout": len(images)}
