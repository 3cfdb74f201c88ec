"""Task data sources. Each builder writes the task's items and its reference set.

A builder writes into ``out_dir``:
- ``items.jsonl``: one row per item, ``{"id", "condition": {...}}``; image
  conditions are paths relative to ``out_dir``;
- ``conditions/``: the condition images (image prompts);
- ``reference/``: real images with ``manifest.jsonl``, the FID/KID reference
  set, disjoint from the conditions.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from ipbench.imageset import png_bytes
from ipbench.io import atomic_directory, write_jsonl

# scikit-image's bundled photos (no download) with a caption each. Grey or
# RGBA photos are converted to RGB, and the item records the original mode.
SKIMAGE_PHOTOS = {
    "astronaut": "an astronaut in a white space suit",
    "chelsea": "a tabby cat",
    "coffee": "a cup of coffee on a saucer",
    "rocket": "a rocket on a launch pad",
    "hubble_deep_field": "galaxies in deep space",
    "immunohistochemistry": "a stained tissue sample under a microscope",
    "retina": "a photograph of a human retina",
    "colorwheel": "a colour wheel",
    "logo": "the scikit-image logo",
    "camera": "a man with a camera on a tripod",
    "brick": "a brick wall",
    "grass": "a patch of grass",
    "gravel": "gravel on the ground",
    "moon": "the surface of the moon",
    "coins": "old coins",
    "clock": "a clock on a wall",
}


def _load_photo(name: str) -> tuple[np.ndarray, str]:
    import skimage.data

    array = getattr(skimage.data, name)()
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[array.shape[2] if array.ndim == 3 else 2]
    image = Image.fromarray(array, mode if mode != "L" else None)
    return np.asarray(image.convert("RGB")), mode


def _random_crop(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    height, width = photo.shape[:2]
    side = int(rng.uniform(0.45, 0.8) * min(height, width))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = Image.fromarray(photo[top:top + side, left:left + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


def _crop_seed(seed: int, role: str, index: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{role}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def skimage_photos(out_dir: Path, *, n_items: int, n_reference: int, image_size: int, seed: int) -> None:
    """Random square crops of scikit-image's photos: conditions and a disjoint reference set."""
    names = sorted(SKIMAGE_PHOTOS)
    photos = {name: _load_photo(name) for name in names}
    with atomic_directory(out_dir) as tmp:
        items, reference = [], []
        for role, count in (("conditions", n_items), ("reference", n_reference)):
            (tmp / role).mkdir()
            for index in range(count):
                name = names[index % len(names)]
                photo, mode = photos[name]
                rng = np.random.default_rng(_crop_seed(seed, role, index))
                file_name = f"{name}-{index:04d}.png"
                (tmp / role / file_name).write_bytes(png_bytes(_random_crop(photo, rng, image_size)))
                record = {"source": f"skimage.data.{name}", "source_mode": mode}
                if role == "conditions":
                    items.append({"id": f"{name}-{index:04d}", "condition": {
                        "image": f"conditions/{file_name}", "prompt": SKIMAGE_PHOTOS[name], **record}})
                else:
                    reference.append({"path": file_name, "caption": SKIMAGE_PHOTOS[name], **record})
        write_jsonl(tmp / "items.jsonl", items)
        write_jsonl(tmp / "reference" / "manifest.jsonl", reference)


BUILDERS = {"skimage_photos": skimage_photos}


def build(source: str, out_dir: Path, **options) -> None:
    if source not in BUILDERS:
        raise ValueError(f"config key data.source: unknown source {source!r}; known: {sorted(BUILDERS)}")
    BUILDERS[source](Path(out_dir), **options)
