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

from ipbench.io import atomic_open
from ipbench.world.render import (
    ALL_SHAPES, ATTRIBUTES, BACKGROUNDS, BLOB, BLOB_SEED_RANGES, COLOURS, MAX_JITTER, POSITIONS, SIZES, TEXTURES,
    Scene, blob_palette, caption, render, sample_scene, scene_rng,
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
    """Write a training set (as returned by :func:`render_training_set`) to one .npz file, atomically: a
    reader waiting for the file (benchmarks/cascade_segment.py beside the DAG's job) never opens half of it."""
    columns = {field: [getattr(scene, field) for scene in data["scenes"]] for field in SCENE_FIELDS}
    columns["texture"] = [texture or "" for texture in columns["texture"]]
    columns["blob_seed"] = [-1 if seed is None else seed for seed in columns["blob_seed"]]
    with atomic_open(path) as handle:
        np.savez(handle, images=data["images"], twin_images=data["twin_images"], twin_source=data["twin_source"],
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
    return texts_true_of(codes, omitted, codes)


def texts_true_of(text_codes, text_omitted, image_codes):
    """(t, n) bool: the caption naming ``text_codes[i]`` except ``text_omitted[i]`` is true of image ``j``.

    :func:`caption_true_of` for captions that need not be any image's own (hard
    negatives); codes of both sides must come from one coding (:func:`value_codes`).
    """
    return ((text_codes[:, None, :] == image_codes[None, :, :]) | text_omitted[:, None, :]).all(-1)


# ---------------------------------------------------------------- global value codes and hard negatives

# Every value of every attribute, in ATTRIBUTES order; a blob's texture is None, the last texture code.
ATTRIBUTE_VALUES = {
    "size": tuple(SIZES), "colour": tuple(COLOURS), "texture": TEXTURES + (None,), "shape": ALL_SHAPES,
    "background": tuple(BACKGROUNDS), "position": tuple(POSITIONS),
}
assert tuple(ATTRIBUTE_VALUES) == ATTRIBUTES
# How many values a caption can name: all but the blob's texture (None).
NAMEABLE_VALUES = tuple(len(values) - (name == "texture") for name, values in ATTRIBUTE_VALUES.items())
SHAPE, TEXTURE = ATTRIBUTES.index("shape"), ATTRIBUTES.index("texture")
BLOB_CODE = ALL_SHAPES.index(BLOB)


def value_codes(scenes: list[Scene]) -> np.ndarray:
    """(n, len(ATTRIBUTES)) int64: each attribute's value as its index in ``ATTRIBUTE_VALUES``.

    Unlike :func:`attribute_codes` the coding does not depend on which scenes
    are passed, so captions made up from codes (hard negatives) compare with
    any image's codes.
    """
    lookup = [{value: index for index, value in enumerate(values)} for values in ATTRIBUTE_VALUES.values()]
    return np.array([[table[getattr(scene, name)] for name, table in zip(ATTRIBUTES, lookup)] for scene in scenes],
                    dtype=np.int64).reshape(len(scenes), len(ATTRIBUTES))


def hard_negatives(codes, omitted, k: int, generator, weights=None):
    """``k`` captions per caption (``codes``, ``omitted``: (n, A)) that differ from it in one named attribute.

    The attribute is drawn among those the caption names, with probability
    proportional to ``weights`` (A,) (default equal), and its value uniformly
    among the other nameable values. A caption whose shape becomes "blob"
    leaves texture out, as :func:`caption` writes it. Returns ``(codes,
    omitted, changed, valid)``: (n, k, A), (n, k, A), (n, k) attribute index,
    and (n, k) bool, False where the caption names nothing (then the row is
    a copy and must not be used). Torch tensors; ``codes`` from :func:`value_codes`.
    """
    import torch

    n, n_attributes = codes.shape
    device = codes.device
    weights = torch.ones(n_attributes, device=device) if weights is None else torch.as_tensor(
        weights, dtype=torch.float32, device=device)
    probabilities = (~omitted).float() * weights[None]
    valid = probabilities.sum(dim=1) > 0
    probabilities = torch.where(valid[:, None], probabilities, torch.ones_like(probabilities))
    changed = torch.multinomial(probabilities, k, replacement=True, generator=generator)  # (n, k)
    counts = torch.tensor(NAMEABLE_VALUES, device=device)[changed]
    offset = 1 + (torch.rand(changed.shape, device=device, generator=generator) * (counts - 1)).long()
    new_value = (codes.gather(1, changed) + offset) % counts
    negative_codes = codes[:, None, :].repeat(1, k, 1)
    negative_codes.scatter_(2, changed[..., None], new_value[..., None])
    negative_omitted = omitted[:, None, :].repeat(1, k, 1)
    negative_omitted[..., TEXTURE] |= negative_codes[..., SHAPE] == BLOB_CODE
    return negative_codes, negative_omitted, changed, valid[:, None].expand(n, k)


class CaptionTokens:
    """:func:`caption`'s token ids, assembled on the data's device from value codes and omitted masks.

    The world tokenizer has one token per word, so a caption is the
    concatenation of its parts' tokens: article, size, colour, texture, shape
    (or "object"), "on a <background> background", ", <position>". The
    constructor checks that against the tokenizer on a sample of captions.
    """

    def __init__(self, tokenizer, device="cpu", check: int = 64):
        import torch

        def ids(text):
            return tokenizer(text, add_special_tokens=False)["input_ids"]

        def table(pieces):
            width = max(len(piece) for piece in pieces)
            return torch.tensor([piece + [-1] * (width - len(piece)) for piece in pieces], device=device)

        parts = {
            "size": [ids(v) for v in SIZES], "colour": [ids(v) for v in COLOURS],
            "texture": [ids(v) for v in TEXTURES] + [[]],
            "shape": [ids(v) for v in ALL_SHAPES] + [ids("object")],  # last: shape left out
            "background": [ids(f"on a {v} background") for v in BACKGROUNDS],
            "position": [ids(f", {v}") for v in POSITIONS],
        }
        self.tables = {name: table(pieces) for name, pieces in parts.items()}
        words = {"size": list(SIZES), "colour": list(COLOURS), "texture": list(TEXTURES) + [""],
                 "shape": list(ALL_SHAPES) + ["object"]}
        self.vowel = {name: torch.tensor([w[:1] in tuple("aeiou") for w in values], device=device)
                      for name, values in words.items()}
        self.articles = table([ids("a"), ids("an")])
        self.bos, self.eos, self.pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
        self.max_length = 2 + self.articles.shape[1] + sum(t.shape[1] for t in self.tables.values())
        self.device = device
        if check:
            self._check(tokenizer, check)

    def __call__(self, codes, omitted, width: int | None = None):
        """(ids, attention_mask), each (n, width): the tokenized captions, padded like the tokenizer pads."""
        import torch

        width = width or self.max_length
        named = ~omitted
        column = {name: ATTRIBUTES.index(name) for name in ATTRIBUTES}
        shape_row = torch.where(named[:, SHAPE], codes[:, SHAPE], len(ALL_SHAPES))
        texture_named = named[:, TEXTURE] & (codes[:, SHAPE] != BLOB_CODE)

        def piece(name, rows, present):
            return torch.where(present[:, None], self.tables[name][rows], -1)

        vowel = self.vowel["shape"][shape_row]
        for name, present in (("texture", texture_named), ("colour", named[:, column["colour"]]),
                              ("size", named[:, column["size"]])):
            vowel = torch.where(present, self.vowel[name][codes[:, column[name]]], vowel)
        n = len(codes)
        sequence = torch.cat([
            torch.full((n, 1), self.bos, device=codes.device), self.articles[vowel.long()],
            piece("size", codes[:, column["size"]], named[:, column["size"]]),
            piece("colour", codes[:, column["colour"]], named[:, column["colour"]]),
            piece("texture", codes[:, TEXTURE], texture_named),
            self.tables["shape"][shape_row],
            piece("background", codes[:, column["background"]], named[:, column["background"]]),
            piece("position", codes[:, column["position"]], named[:, column["position"]]),
            torch.full((n, 1), self.eos, device=codes.device),
        ], dim=1)
        real = sequence >= 0
        order = torch.sort((~real).to(torch.int8), dim=1, stable=True).indices  # real tokens first, in order
        sequence, real = sequence.gather(1, order), real.gather(1, order)
        if real.sum(dim=1).max() > width:
            raise ValueError(f"captions of up to {int(real.sum(dim=1).max())} tokens do not fit width {width}")
        if sequence.shape[1] < width:
            sequence = torch.nn.functional.pad(sequence, (0, width - sequence.shape[1]), value=-1)
            real = torch.nn.functional.pad(real, (0, width - real.shape[1]), value=False)
        sequence, real = sequence[:, :width], real[:, :width]
        return torch.where(real, sequence, self.pad), real.long()

    def _check(self, tokenizer, count: int) -> None:
        import torch

        rng = np.random.default_rng(0)
        scenes = [training_scene(scene_rng("train", 0, index), "train") for index in range(count)]
        texts, omitted = training_captions(scenes, rng)
        ids, mask = self(torch.from_numpy(value_codes(scenes)).to(self.device),
                         torch.from_numpy(omitted).to(self.device))
        expected = tokenizer(texts, padding="max_length", max_length=self.max_length, return_tensors="pt")
        if not (torch.equal(ids.cpu(), expected["input_ids"]) and torch.equal(mask.cpu(), expected["attention_mask"])):
            raise ValueError("CaptionTokens disagrees with the tokenizer: the caption template or vocabulary changed")


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


# ---------------------------------------------------------------- augmentation that keeps every named attribute
# Each keeps what the analyzers read (background, position, size, colour; shape and texture by the
# shape CNN) on >= 99% of renders at the default strengths below (tests/test_clip_train.py). The
# limits are what the analyzers tolerate: background names are absolute colours, so a 10% gain
# already turns the analyzer's "sand" into "white" or "checker-grey" on about half of the renders
# (15%: on 80%), and the shape CNN's texture reading gives way first under contrast, hue and blur.
# No flips or crops: position is named.

BRIGHTNESS = 0.05  # gain 1 +- this; at 0.08 the shape CNN misreads 3% of textures, at 0.1 the analyzer backgrounds
CONTRAST = 0.15  # factor 1 +- this about each image's mean grey; at 0.2 the shape CNN misreads 1.5% of textures
HUE_DEGREES = 5.0  # rotation of the YIQ chroma plane; 8 degrees costs ~1% of textures, 15 turns cyan blue or green
TRANSLATE = 1  # px, whole pixels, edges replicated; a centroid sits >= 2.8 px inside its cell

_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def adjust_brightness(images, gain):
    """Float images (B, C, H, W) in [0, 1] times ``gain`` (B,), clamped."""
    return (images * gain[:, None, None, None]).clamp(0, 1)


def adjust_contrast(images, factor):
    """Each image's deviation from its own mean grey scaled by ``factor`` (B,), clamped."""
    grey = images.mean(dim=(1, 2, 3), keepdim=True)
    return ((images - grey) * factor[:, None, None, None] + grey).clamp(0, 1)


def rotate_hue(images, degrees):
    """Turn each image's chroma by ``degrees`` (B,) in YIQ (luma kept), clamped."""
    import torch

    to_yiq = torch.tensor(_RGB_TO_YIQ, dtype=images.dtype, device=images.device)
    angle = torch.deg2rad(degrees.to(images.dtype))
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(len(images), 3, 3, dtype=images.dtype, device=images.device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = cos, -sin, sin, cos
    transform = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # (B, 3, 3) in RGB
    return torch.einsum("bij,bjhw->bihw", transform, images).clamp(0, 1)


def translate(images, dx, dy):
    """Shift each image by whole pixels ``dx``, ``dy`` (B,) (right, down), replicating the edges."""
    import torch

    batch, channels, height, width = images.shape
    rows = (torch.arange(height, device=images.device)[None] - dy[:, None]).clamp(0, height - 1)  # (B, H)
    columns = (torch.arange(width, device=images.device)[None] - dx[:, None]).clamp(0, width - 1)  # (B, W)
    flat = images.reshape(batch, channels, height * width)
    index = (rows[:, :, None] * width + columns[:, None, :]).reshape(batch, 1, height * width)
    return flat.gather(2, index.expand(batch, channels, height * width)).reshape(images.shape)


def keep_attributes_augment(images, generator, brightness=BRIGHTNESS, contrast=CONTRAST, hue_degrees=HUE_DEGREES,
                            max_shift=TRANSLATE, p: float = 0.5):
    """Random brightness, contrast, hue and 1-px translation of float images in [0, 1], each on ~``p`` of them.

    Every named attribute stays true at the default strengths (see above);
    a strength of 0 turns that change off. Combine with :func:`degrade` for
    blur and noise.
    """
    import torch

    batch, device = images.shape[0], images.device

    def draw(maximum):  # uniform in [-maximum, maximum] on ~p of the images, else 0
        values = (torch.rand(batch, device=device, generator=generator) * 2 - 1) * maximum
        return values * (torch.rand(batch, device=device, generator=generator) < p)

    if max_shift:
        shift = torch.randint(-max_shift, max_shift + 1, (2, batch), device=device, generator=generator)
        shift = shift * (torch.rand(batch, device=device, generator=generator) < p)
        images = translate(images, shift[0], shift[1])
    if hue_degrees:
        images = rotate_hue(images, draw(hue_degrees))
    if contrast:
        images = adjust_contrast(images, 1 + draw(contrast))
    if brightness:
        images = adjust_brightness(images, 1 + draw(brightness))
    return images


def vae_reconstructions(vae_dir, images, device="cpu", batch_size: int = 256):
    """uint8 (N, 64, 64, 3) tensor: ``images`` (uint8 NHWC, array or tensor) encoded (posterior mode) and decoded
    by the diffusers AutoencoderKL in ``vae_dir``, on ``device``; the result stays there."""
    import torch
    from diffusers import AutoencoderKL

    from ipbench.training.loop import autocast, to_unit_range

    device = torch.device(device)
    vae = AutoencoderKL.from_pretrained(vae_dir, dtype=torch.float32).to(device).eval()
    images = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = to_unit_range(images[start : start + batch_size].to(device))
            with autocast(device):
                decoded = vae.decode(vae.encode(batch).latent_dist.mode()).sample
            out.append(((decoded.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1))
    return torch.cat(out) if out else torch.zeros((0, 64, 64, 3), dtype=torch.uint8, device=device)
