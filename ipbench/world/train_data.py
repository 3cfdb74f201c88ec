"""Training data for the mini world's models: renders held in one uint8 array, captions, augmentation.

A training set is a pure function of (n, split, seed): image ``i`` comes from
``scene_rng(split, seed, i)``, whichever worker renders it. Blobs are made
more common than :func:`sample_scene` makes them (``BLOB_FRACTION``), and each
blob also gets a *twin*: the same blob (outline, palette) drawn again at another
size, position, background and rotation, so a model can learn blob identity.
"""
from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os

import numpy as np

from ipbench.world.render import (
    ATTRIBUTES, BACKGROUNDS, BLOB, BLOB_SEED_RANGES, MAX_JITTER, POSITIONS, SIZES, Scene, blob_palette, caption,
    render, sample_scene, scene_rng,
)

BLOB_FRACTION = 0.22  # sample_scene alone gives 1/9
SCENE_FIELDS = tuple(field.name for field in dataclasses.fields(Scene))


def training_scene(rng: np.random.Generator, split: str) -> Scene:
    """:func:`sample_scene`, with some non-blobs turned into blobs: ``BLOB_FRACTION`` of scenes are blobs."""
    scene = sample_scene(rng, split)
    base_fraction = 1 / 9
    extra = (BLOB_FRACTION - base_fraction) / (1 - base_fraction)
    if scene.shape == BLOB or rng.random() >= extra:
        return scene
    blob_seed = int(rng.integers(*BLOB_SEED_RANGES[split]))
    return dataclasses.replace(scene, shape=BLOB, texture=None, colour=blob_palette(blob_seed)[0],
                               blob_seed=blob_seed)


def twin_scene(scene: Scene, rng: np.random.Generator) -> Scene:
    """The blob of ``scene`` at a random size, in another position on another background, turned anew.

    Position and background always change, as between a held-out subject's
    references, so the identity term teaches invariance to both.
    """
    return dataclasses.replace(
        scene,
        size=str(rng.choice(list(SIZES))),
        position=str(rng.choice([p for p in POSITIONS if p != scene.position])),
        background=str(rng.choice([b for b in BACKGROUNDS if b != scene.background])),
        rotation=round(float(rng.uniform(0, 360)), 2),
        jitter_x=round(float(rng.uniform(-MAX_JITTER, MAX_JITTER)), 2),
        jitter_y=round(float(rng.uniform(-MAX_JITTER, MAX_JITTER)), 2),
    )


def _render_range(split: str, seed: int, start: int, stop: int):
    images, scenes, twins, twin_source = [], [], [], []
    for index in range(start, stop):
        rng = scene_rng(split, seed, index)
        scene = training_scene(rng, split)
        scenes.append(scene)
        images.append(render(scene))
        if scene.shape == BLOB:
            twins.append(render(twin_scene(scene, rng)))
            twin_source.append(index)
    empty = np.zeros((0, 64, 64, 3), np.uint8)
    return np.stack(images) if images else empty, scenes, np.stack(twins) if twins else empty, twin_source


def render_training_set(n: int, split: str = "train", seed: int = 0, workers: int = 1) -> dict:
    """Render ``n`` training scenes.

    Returns ``images`` (n, 64, 64, 3) uint8, ``scenes`` (list of :class:`Scene`),
    ``twin_images`` (m, 64, 64, 3) uint8 and ``twin_source`` (m,) int64: twin ``k``
    shows the blob of ``images[twin_source[k]]``.
    """
    chunk = max(1, math.ceil(n / (workers * 8)))
    ranges = [(split, seed, start, min(start + chunk, n)) for start in range(0, n, chunk)]
    if workers > 1:
        # spawn: the caller may already hold CUDA or threads, which fork would copy badly.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.starmap(_render_range, ranges)
    else:
        parts = [_render_range(*arguments) for arguments in ranges]
    return {
        "images": np.concatenate([p[0] for p in parts]),
        "scenes": [scene for p in parts for scene in p[1]],
        "twin_images": np.concatenate([p[2] for p in parts]),
        "twin_source": np.array([index for p in parts for index in p[3]], dtype=np.int64),
    }


# ---------------------------------------------------------------- files


def save_npz(path, data: dict) -> None:
    """Write a training set (as returned by :func:`render_training_set`) to one .npz file."""
    columns = {field: [getattr(scene, field) for scene in data["scenes"]] for field in SCENE_FIELDS}
    columns["texture"] = [texture or "" for texture in columns["texture"]]
    columns["blob_seed"] = [-1 if seed is None else seed for seed in columns["blob_seed"]]
    np.savez(path, images=data["images"], twin_images=data["twin_images"], twin_source=data["twin_source"],
             **{f"scene_{field}": np.array(values) for field, values in columns.items()})


def _scenes_from_rows(rows: list[dict]) -> list[Scene]:
    return [Scene(**row) for row in rows]


def load_npz(path, workers: int | None = None) -> dict:
    """Read a file written by :func:`save_npz`; blob scenes are re-validated in ``workers`` processes."""
    with np.load(path) as archive:
        data = {name: archive[name] for name in ("images", "twin_images", "twin_source")}
        columns = {field: archive[f"scene_{field}"].tolist() for field in SCENE_FIELDS}
    rows = [dict(zip(SCENE_FIELDS, values)) for values in zip(*(columns[field] for field in SCENE_FIELDS))]
    for row in rows:
        row["texture"] = row["texture"] or None
        row["blob_seed"] = None if row["blob_seed"] < 0 else row["blob_seed"]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(rows) > 1000:
        # Validating a blob Scene recomputes its palette (about 1 ms each).
        chunk = math.ceil(len(rows) / (workers * 4))
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_scenes_from_rows, [rows[i : i + chunk] for i in range(0, len(rows), chunk)])
        data["scenes"] = [scene for part in parts for scene in part]
    else:
        data["scenes"] = _scenes_from_rows(rows)
    return data


def training_captions(scenes: list[Scene], rng: np.random.Generator, max_p_drop: float = 0.8):
    """Captions with random attribute dropout, and which attributes each one leaves out.

    Each caption draws its own drop probability uniformly from [0, max_p_drop),
    so full captions, partial ones and single-attribute ones ("a red object")
    all occur. Returns (texts, omitted) with ``omitted`` a (n, len(ATTRIBUTES))
    bool array; a blob caption always omits texture (blobs have no named one).
    """
    p_drop = rng.uniform(0.0, max_p_drop, size=(len(scenes), 1))
    omitted = rng.random((len(scenes), len(ATTRIBUTES))) < p_drop
    texture = ATTRIBUTES.index("texture")
    texts = []
    for scene, row in zip(scenes, omitted):
        texts.append(caption(scene, {name for name, dropped in zip(ATTRIBUTES, row) if dropped}))
        row[texture] |= scene.shape == BLOB
    return texts, omitted


def attribute_codes(scenes: list[Scene]) -> np.ndarray:
    """(n, len(ATTRIBUTES)) int64: each attribute's value as an index of its sorted value set in ``scenes``.

    Equal codes mean equal values within one call, which is all the contrastive
    targets need; a blob's texture (None) gets its own code.
    """
    codes = np.empty((len(scenes), len(ATTRIBUTES)), np.int64)
    for column, name in enumerate(ATTRIBUTES):
        values = [str(getattr(scene, name)) for scene in scenes]
        _, codes[:, column] = np.unique(values, return_inverse=True)
    return codes


def caption_true_of(codes, omitted):
    """(n, n) bool: caption ``i`` (``omitted[i]``, of the scene with ``codes[i]``) is true of scene ``j``.

    It does when every attribute it names has scene ``j``'s value. Works on
    numpy arrays and torch tensors alike.
    """
    return ((codes[:, None, :] == codes[None, :, :]) | omitted[:, None, :]).all(-1)


# ---------------------------------------------------------------- augmentation (torch, on the data's device)


def gaussian_blur(images, sigma):
    """Blur float images (B, C, H, W), each by its own Gaussian ``sigma`` (B,) in px (0: unchanged)."""
    import torch
    import torch.nn.functional as F

    batch, channels, height, width = images.shape
    offsets = torch.arange(-3, 4, device=images.device, dtype=images.dtype)
    weights = torch.exp(-0.5 * (offsets[None] / sigma.clamp_min(1e-3)[:, None]) ** 2)
    weights = weights / weights.sum(dim=1, keepdim=True)
    kernels = weights.repeat_interleave(channels, dim=0)  # (B*C, 7), one kernel per channel of each image
    flat = F.pad(images.reshape(1, batch * channels, height, width), (3, 3, 3, 3), mode="replicate")
    flat = F.conv2d(flat, kernels[:, None, None, :], groups=batch * channels)
    flat = F.conv2d(flat, kernels[:, None, :, None], groups=batch * channels)
    return flat.reshape(batch, channels, height, width)


def degrade(images, generator, max_blur=1.0, max_noise=12 / 255, max_gain=0.0):
    """Imperfections of generated images on float images in [0, 1]: blur, pixel noise, channel gain.

    Each image draws its own blur sigma and noise level, uniform up to the
    maxima, each applied to about half of the images; ``max_gain`` scales every
    channel by 1 +- up to that (a slight colour cast).
    """
    import torch

    batch = images.shape[0]

    def draw(maximum):
        values = torch.rand(batch, device=images.device, generator=generator) * maximum
        keep = torch.rand(batch, device=images.device, generator=generator) < 0.5
        return values * keep

    images = gaussian_blur(images, draw(max_blur))
    if max_gain:
        gain = 1 + (torch.rand(batch, 3, 1, 1, device=images.device, generator=generator) * 2 - 1) * max_gain
        images = images * gain
    noise = torch.randn(images.shape, device=images.device, generator=generator)
    images = images + noise * draw(max_noise)[:, None, None, None]
    return images.clamp(0, 1)
