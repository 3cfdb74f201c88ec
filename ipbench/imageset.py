"""Standardized image sets: lossless PNGs plus ``manifest.jsonl``.

One directory per (suite, task, method), split into ``shard-NNN`` folders.
Each manifest row records item id, sample index, seed, condition, the path
relative to the image-set directory and the PNG's sha256, so a set can be
checked, re-evaluated or shared without the DAG that made it.
"""
from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ipbench.io import atomic_directory, read_jsonl, write_jsonl
from ipbench.seeds import item_seed

ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Request:
    """One image a method must produce."""

    item_id: str
    sample_index: int
    seed: int
    condition: dict = field(hash=False)


def check_item_id(item_id: str) -> str:
    if not isinstance(item_id, str) or not ITEM_ID.match(item_id):
        raise ValueError(f"item id {item_id!r} must match {ITEM_ID.pattern} (it becomes a file name)")
    return item_id


def plan_batches(items: list[dict], batch_size: int, group_by: str | None = None) -> list[list[dict]]:
    """Fixed groups of items, a function of the item ids (and ``group_by`` values) alone.

    Items are sorted by id and cut into runs of ``batch_size``; with ``group_by``
    (a condition key such as "subject") a run also ends where that value changes,
    so a batch never mixes two groups. Every shard count sees the same batches,
    so an image never depends on how many shards or processes drew it.
    """
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be >= 1")
    batches: list[list[dict]] = []
    for item in sorted(items, key=lambda item: item["id"]):
        previous = batches[-1] if batches else None
        same_group = group_by is None or (previous and previous[0]["condition"].get(group_by)
                                          == item["condition"].get(group_by))
        if previous is not None and len(previous) < batch_size and same_group:
            previous.append(item)
        else:
            batches.append([item])
    return batches


def shard_batches(batches: list[list[dict]], shard: int, n_shards: int,
                  group_by: str | None = None) -> list[list[dict]]:
    """The batches of one shard: whole batches, or with ``group_by`` whole groups, dealt round-robin."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} out of range for {n_shards} shards")
    if group_by is None:
        return batches[shard::n_shards]
    groups = sorted({batch[0]["condition"].get(group_by) for batch in batches}, key=str)
    mine = set(groups[shard::n_shards])
    return [batch for batch in batches if batch[0]["condition"].get(group_by) in mine]


def requests_for(suite: str, task: str, items: list[dict], samples: int) -> list[Request]:
    return [
        Request(check_item_id(item["id"]), k, item_seed(suite, task, item["id"], k), item["condition"])
        for item in items
        for k in range(samples)
    ]


def generate_shard(method, items: list[dict], *, suite: str, task: str, samples: int, batch_size: int, shard: int,
                   n_shards: int, data_dir: Path, on_batch=None) -> tuple[list[Request], list[np.ndarray]]:
    """Requests and images of one shard: the method sees one planned batch at a time.

    ``on_batch(n_items, images)`` is called after each batch (progress, and the PNG encoding that
    overlaps the next batch's generation in the generate_shard job).
    """
    group_by = getattr(method, "group_by", None)
    name = getattr(method, "name", method)
    twice = sorted((i, n) for i, n in Counter(item["id"] for item in items).items() if n > 1)
    if twice:  # two items would write one file
        raise ValueError(f"{Path(data_dir) / 'items.jsonl'}: item id {twice[0][0]!r} appears {twice[0][1]} times; "
                         "item ids must be unique")
    requests, images = [], []
    for batch in shard_batches(plan_batches(items, batch_size, group_by), shard, n_shards, group_by):
        batch_requests = requests_for(suite, task, batch, samples)
        batch_images = method.generate(batch_requests, data_dir)
        if len(batch_images) != len(batch_requests):
            raise ValueError(f"method {name!r} returned {len(batch_images)} images for "
                             f"{len(batch_requests)} requests")
        for request, image in zip(batch_requests, batch_images):
            check_image(image, f"method {name!r}, item {request.item_id!r} sample {request.sample_index}")
        requests += batch_requests
        images += batch_images
        if on_batch:
            on_batch(len(batch), batch_images)
    return requests, images


def check_image(image, what: str = "a method") -> np.ndarray:
    """``image`` as a uint8 HxWx3 array, or an error saying what ``what`` returned instead."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        nan = " holding NaN" if np.issubdtype(image.dtype, np.floating) and np.isnan(image).any() else ""
        raise ValueError(f"{what}: returned an image of dtype {image.dtype}{nan} and shape {image.shape}; "
                         "expected uint8 HxWx3")
    return image


def png_bytes(image: np.ndarray) -> bytes:
    """Encode uint8 HxWx3 as PNG with fixed settings and no metadata, so bytes are reproducible."""
    image = check_image(image)
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def image_name(request: Request) -> str:
    return f"{request.item_id}_s{request.sample_index:02d}.png"


def write_shard(out_dir: Path, shard_name: str, requests: list[Request], images: list[np.ndarray],
                extra: dict | None = None, pngs: list | None = None) -> None:
    """Write one shard atomically: the directory appears only when complete.

    ``pngs``, if given, are the images already encoded by :func:`png_bytes` (bytes, or futures of
    them from an encoder pool), one per request.
    """
    if len(images) != len(requests):
        raise ValueError(f"method returned {len(images)} images for {len(requests)} requests")
    if pngs is not None and len(pngs) != len(requests):
        raise ValueError(f"{len(pngs)} encoded images for {len(requests)} requests")
    with atomic_directory(out_dir) as tmp:
        rows = []
        for index, (request, image) in enumerate(zip(requests, images)):
            if pngs is None:
                data = png_bytes(image)
            else:
                data = pngs[index] if isinstance(pngs[index], bytes) else pngs[index].result()
            (tmp / image_name(request)).write_bytes(data)
            rows.append({
                "item_id": request.item_id,
                "sample_index": request.sample_index,
                "seed": request.seed,
                "condition": request.condition,
                "path": f"{shard_name}/{image_name(request)}",
                "sha256": hashlib.sha256(data).hexdigest(),
                **(extra or {}),
            })
        write_jsonl(tmp / "manifest.jsonl", rows)


def merge_manifests(shard_dirs: list[Path], out_manifest: Path) -> list[dict]:
    """Concatenate shard manifests (sorted by item, sample) after checking every file's hash."""
    rows = []
    base = out_manifest.parent
    for shard_dir in shard_dirs:
        for row in read_jsonl(Path(shard_dir) / "manifest.jsonl"):
            path = base / row["path"]
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != row["sha256"]:
                raise ValueError(f"{path}: sha256 {digest} does not match its manifest ({row['sha256']})")
            rows.append(row)
    rows.sort(key=lambda row: (row["item_id"], row["sample_index"]))
    keys = [(row["item_id"], row["sample_index"]) for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{out_manifest}: duplicate (item, sample) rows across shards")
    write_jsonl(out_manifest, rows)
    return rows
