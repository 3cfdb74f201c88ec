"""A small CNN that reads an object's shape (8 named shapes or "blob") and texture back from a 64x64 image.

It fills :class:`ipbench.world.analyze.Analysis` ``shape`` / ``texture``, which
the pixel rules there cannot measure. Trained on renders degraded the way
generated images are imperfect (blur, noise, a slight colour cast), with flips
and quarter turns, which change no label.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ipbench.world import train_data
from ipbench.world.analyze import CORRUPTIONS, corrupt
from ipbench.world.render import ALL_SHAPES, BLOB, TEXTURES, held_out_scenes, render

CHANNELS = (32, 64, 96, 160)
IGNORE = -100  # texture target of blobs, which have no named texture


class ShapeTextureNet(nn.Module):
    """Conv-BN-ReLU-maxpool blocks (64 -> 4 px), global average pooling, a shape head and a texture head."""

    def __init__(self, channels=CHANNELS, n_shapes=len(ALL_SHAPES), n_textures=len(TEXTURES)):
        super().__init__()
        layers, previous = [], 3
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2)]
            previous = width
        self.features = nn.Sequential(*layers)
        self.shape_head = nn.Linear(previous, n_shapes)
        self.texture_head = nn.Linear(previous, n_textures)

    def forward(self, pixels):
        """``pixels``: (B, 3, 64, 64) float in [0, 1]. Returns (shape logits, texture logits)."""
        pooled = self.features((pixels - 0.5) / 0.25).mean(dim=(2, 3))
        return self.shape_head(pooled), self.texture_head(pooled)


def _labels(scenes) -> tuple[np.ndarray, np.ndarray]:
    shapes = np.array([ALL_SHAPES.index(scene.shape) for scene in scenes])
    textures = np.array([IGNORE if scene.texture is None else TEXTURES.index(scene.texture)
                         for scene in scenes])
    return shapes, textures


def _random_dihedral(pixels: torch.Tensor, generator) -> torch.Tensor:
    """Each image flipped or not, then turned by a random multiple of 90 degrees."""
    choice = torch.randint(8, (len(pixels),), device=pixels.device, generator=generator)
    out = torch.empty_like(pixels)
    for k in range(8):
        chosen = choice == k
        group = pixels[chosen]
        if k >= 4:
            group = group.flip(3)
        out[chosen] = torch.rot90(group, k % 4, dims=(2, 3))
    return out


def train_shape_cnn(
    out_dir, data: dict, steps: int, batch_size: int = 512, lr: float = 2e-3, seed: int = 0,
    device: str = "cuda", log_every: int = 100,
) -> dict:
    """Train on a training set from :func:`train_data.render_training_set` and save to ``out_dir``.

    Writes ``model.safetensors`` and ``config.json`` (class names, channels).
    Returns the loss history and timings.
    """
    from safetensors.torch import save_file
    from transformers import get_cosine_schedule_with_warmup

    device = torch.device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # Twins are extra views of blobs: more images, same labels.
    images = np.concatenate([data["images"], data["twin_images"]])
    scenes = list(data["scenes"]) + [data["scenes"][k] for k in data["twin_source"]]
    shapes, textures = _labels(scenes)
    images = torch.from_numpy(images).to(device)
    shapes, textures = torch.from_numpy(shapes).to(device), torch.from_numpy(textures).to(device)

    torch.manual_seed(seed)
    model = ShapeTextureNet().to(device).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    schedule = get_cosine_schedule_with_warmup(optimizer, min(200, steps // 10), steps)
    generator = torch.Generator(device).manual_seed(seed)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    prepared = time.perf_counter()

    history = []
    for step in range(steps):
        index = torch.randint(len(images), (batch_size,), device=device, generator=generator)
        pixels = images[index].permute(0, 3, 1, 2).float() / 255.0
        pixels = train_data.degrade(_random_dihedral(pixels, generator), generator, max_blur=1.0,
                                    max_noise=12 / 255, max_gain=0.05)
        with autocast:
            shape_logits, texture_logits = model(pixels.contiguous(memory_format=torch.channels_last))
        shape_loss = F.cross_entropy(shape_logits.float(), shapes[index])
        texture_loss = F.cross_entropy(texture_logits.float(), textures[index], ignore_index=IGNORE)
        loss = shape_loss + texture_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % log_every == 0 or step == steps - 1:
            history.append({"step": step, "loss": loss.item(), "shape_loss": shape_loss.item(),
                            "texture_loss": texture_loss.item()})
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    trained = time.perf_counter()

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / "model.safetensors"))
    config = {"architecture": "ShapeTextureNet", "channels": list(CHANNELS), "shapes": list(ALL_SHAPES),
              "textures": list(TEXTURES), "input": "RGB 64x64 float in [0, 1]"}
    (out_dir / "config.json").write_text(json.dumps(config, indent=1))
    metrics = {
        "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "n_images": len(images),
        "parameters": sum(p.numel() for p in model.parameters()),
        "prepare_seconds": prepared - started, "train_seconds": trained - prepared,
        "first_loss": history[0]["loss"], "final_loss": history[-1]["loss"], "history": history,
    }
    (out_dir / "training.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def load_shape_cnn(folder, device: str = "cpu") -> ShapeTextureNet:
    """The model :func:`train_shape_cnn` saved in ``folder``, in eval mode; checks its class names."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    if tuple(config["shapes"]) != ALL_SHAPES or tuple(config["textures"]) != TEXTURES:
        raise ValueError(f"{folder}: trained for shapes {config['shapes']} / textures {config['textures']}, "
                         f"but the world has {list(ALL_SHAPES)} / {list(TEXTURES)}")
    model = ShapeTextureNet(tuple(config["channels"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.to(device).eval()


def predict(model: ShapeTextureNet, images, batch_size: int = 512):
    """Shape and texture of each 64x64x3 uint8 image.

    Returns (shapes, textures, confidences): lists of names, texture None where
    the shape is "blob", and an (N, 2) array of the softmax probability of the
    chosen shape and texture (texture NaN for blobs).
    """
    device = next(model.parameters()).device
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (64, 64, 3) or images.dtype != np.uint8:
        raise ValueError(f"expected (N, 64, 64, 3) uint8 images, got {images.shape} {images.dtype}")
    shape_probs, texture_probs = [], []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start : start + batch_size]).to(device)
            shape_logits, texture_logits = model(batch.permute(0, 3, 1, 2).float() / 255.0)
            shape_probs.append(shape_logits.float().softmax(1).cpu())
            texture_probs.append(texture_logits.float().softmax(1).cpu())
    shape_probs, texture_probs = torch.cat(shape_probs).numpy(), torch.cat(texture_probs).numpy()
    shape_index, texture_index = shape_probs.argmax(1), texture_probs.argmax(1)
    shapes = [ALL_SHAPES[k] for k in shape_index]
    textures = [None if shape == BLOB else TEXTURES[k] for shape, k in zip(shapes, texture_index)]
    confidences = np.stack([shape_probs.max(1), texture_probs.max(1)], axis=1)
    confidences[[shape == BLOB for shape in shapes], 1] = np.nan
    return shapes, textures, confidences


def evaluate_shape_cnn(folder, n: int = 2000, seed: int = 0, device: str = "cpu") -> dict:
    """Accuracy on ``n`` held-out test renders, clean, blurred and noisy (``analyze.corrupt``).

    Keys ``<shape|texture>_<none|blur|noise>``; texture over non-blobs only.
    """
    model = load_shape_cnn(folder, device)
    scenes = held_out_scenes(n, seed)
    clean = [render(scene) for scene in scenes]
    true_shapes, true_textures = [s.shape for s in scenes], [s.texture for s in scenes]
    has_texture = np.array([texture is not None for texture in true_textures])
    results = {}
    for corruption in CORRUPTIONS:
        rng = np.random.default_rng([seed, CORRUPTIONS.index(corruption)])
        shapes, textures, _ = predict(model, np.stack([corrupt(image, corruption, rng) for image in clean]))
        results[f"shape_{corruption}"] = float(np.mean(np.array(shapes) == np.array(true_shapes)))
        texture_hits = np.array([a == b for a, b in zip(textures, true_textures)])
        results[f"texture_{corruption}"] = (
            float(texture_hits[has_texture].mean()) if has_texture.any() else float("nan")
        )
    results["n_test"] = n
    return results
