"""Image loading shared by every metric: uint8 RGB arrays, clear errors.

Every metric reads images through :func:`load_rgb`, so a corrupt file, a
non-image or an empty folder fails the same way everywhere, naming the file.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageError(ValueError):
    """An input image (or image folder) that a metric cannot use."""


@dataclass(frozen=True)
class LoadedImage:
    array: np.ndarray  # HxWx3 uint8
    converted_from: str | None  # what decoding did besides reading RGB (mode conversion, EXIF rotation)


def _to_rgb(img: Image.Image) -> tuple[np.ndarray, str | None]:
    """uint8 RGB of a decoded image and what the conversion did (None when it was already RGB).

    PIL's ``convert("RGB")`` clips 16- and 32-bit values at 255 (a 16-bit PNG comes out all white) and
    drops alpha whatever it covered, so those modes are handled here or refused with the reason.
    """
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy(), None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(img).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(f"mode {mode} holds values in [{values.min()}, {values.max()}], outside 16 bits")
        grey = np.round(values / 257.0).astype(np.uint8)  # 65535 -> 255 exactly
        return np.repeat(grey[..., None], 3, axis=2), f"{mode}: 16-bit grey scaled to 8 bits (v / 257)"
    if mode == "F":
        raise ValueError("mode F (32-bit float) has no defined value range; save the image as 8- or 16-bit")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        # clean-fid reads with convert("RGB"), which drops alpha; FID must read pixels as it does.
        rgba = img.convert("RGBA")
        hidden = float((np.asarray(rgba)[..., 3] < 255).mean())
        return (np.asarray(rgba.convert("RGB"), dtype=np.uint8).copy(),
                f"{mode}: alpha dropped, as clean-fid reads it ({hidden:.1%} of pixels not opaque)")
    if mode == "CMYK":
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy(), "CMYK: converted without a colour profile"
    if mode in ("1", "L", "P"):
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy(), f"{mode}: expanded to RGB"
    converted = img.convert("RGB")  # YCbCr, LAB, HSV: PIL's own colour conversions
    return np.asarray(converted, dtype=np.uint8).copy(), f"{mode}: converted to RGB by PIL"


def load_rgb(path: str | os.PathLike) -> LoadedImage:
    """Decode ``path`` fully into uint8 RGB: other modes converted (and said how) or refused with the reason,
    an EXIF orientation applied (and said so)."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # force a full decode so truncated files fail here
            orientation = img.getexif().get(0x0112, 1)  # the EXIF Orientation tag
            upright = ImageOps.exif_transpose(img) if orientation not in (0, 1) else img
            array, converted = _to_rgb(upright)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: corrupt, truncated or unsupported image ({err})") from None
    if orientation not in (0, 1):
        converted = "; ".join(filter(None, [converted, f"EXIF orientation {orientation} applied"]))
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise ImageError(f"{path}: decoded to shape {array.shape}, expected HxWx3")
    return LoadedImage(array, converted)


def size_warning(folder: str | os.PathLike, paths: list[Path]) -> str | None:
    """A warning naming ``folder`` and its sizes when its images are not all one size (read from file headers).

    Set metrics resize every image to their network's input on its own, so a set of mixed sizes is also
    compared on how much each image was scaled.
    """
    counts = Counter()
    for path in paths:
        with Image.open(path) as img:
            counts[img.size] += 1
    if len(counts) < 2:
        return None
    sizes = ", ".join(f"{w}x{h}: {n}" for (w, h), n in sorted(counts.items()))
    return (f"{folder}: images of {len(counts)} sizes ({sizes} images); each is resized on its own, so the "
            "value also measures the differences in resizing")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of ``folder`` in a stable order.

    A folder holding ``manifest.jsonl`` (an ipbench image set) is read in
    manifest order; otherwise image files are found recursively and sorted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a directory")
    manifest = folder / "manifest.jsonl"
    if manifest.is_file():
        paths = verified_paths(folder, read_manifest(manifest), manifest)
    else:
        paths = sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
    if not paths:
        raise ImageError(f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return paths


def verified_paths(folder: Path, rows: list[dict], manifest: Path) -> list[Path]:
    """The files of a manifest's rows, each checked against the sha256 it recorded.

    A file that is missing, truncated or replaced since the manifest was written
    is an error naming it: an image set is read as generated, or not at all.
    """
    from metrics.weights import sha256_file

    paths = []
    for row in rows:
        path = Path(folder) / row["path"]
        fix = f"delete {folder} and rerun to regenerate the image set"
        if not path.is_file():
            raise ImageError(f"{path}: listed in {manifest} but missing; {fix}")
        if "sha256" in row and sha256_file(path) != row["sha256"]:
            raise ImageError(f"{path}: changed since {manifest} recorded it (sha256 differs); {fix}")
        paths.append(path)
    return paths


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``manifest.jsonl``; a malformed line is an error naming the line."""
    path = Path(path)
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ImageError(f"{path}:{line_no}: invalid JSON ({err})") from None
            if "path" not in row:
                raise ImageError(f"{path}:{line_no}: row has no 'path' key")
            rows.append(row)
    return rows


def match_pairs(folder_a: str | os.PathLike, folder_b: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Pairs of images with the same relative path in two folders.

    Used for paired metrics such as LPIPS; the two folders must hold exactly
    the same names, otherwise the first few differences are reported.
    """
    folder_a, folder_b = Path(folder_a), Path(folder_b)
    rel_a = {p.relative_to(folder_a).as_posix(): p for p in list_images(folder_a)}
    rel_b = {p.relative_to(folder_b).as_posix(): p for p in list_images(folder_b)}
    only_a, only_b = sorted(rel_a.keys() - rel_b.keys()), sorted(rel_b.keys() - rel_a.keys())
    if only_a or only_b:
        raise ImageError(
            f"unmatched pairs: {len(rel_a)} images in {folder_a}, {len(rel_b)} in {folder_b}; "
            f"only in first: {only_a[:3]}, only in second: {only_b[:3]}"
        )
    return [(rel_a[name], rel_b[name]) for name in sorted(rel_a)]
