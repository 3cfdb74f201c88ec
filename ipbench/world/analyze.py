"""Read the mini world's attributes back from any image, rendered or generated.

:func:`analyze` finds the background from the border, segments the object by
its distance to that background, and measures position, size and colour the
way :mod:`ipbench.world.render` defines them. Shape and texture are left to a
learned classifier (``Analysis.shape`` / ``.texture`` stay None here).
:func:`shape_iou` and :func:`colour_error` compare the subjects of two images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.color import deltaE_ciede2000, rgb2lab

from ipbench.world.render import (
    BACKGROUNDS, COLOURS, IMAGE_SIZE, POSITIONS, SIZES, nearest_colour_names, render, sample_scene, scene_rng,
)
from metrics.images import ImageError, load_rgb

# Object colours are >= 84 RGB units from every background colour, so this
# keeps edge pixels at least ~40% covered and stays far above pixel noise.
OBJECT_DISTANCE = 36.0
MIN_OBJECT_AREA = 12  # px; smaller components are specks, not objects
# The farthest mask pixel centre lies inside the outline: on renders it falls short of
# the bounding radius by 0.3 px on average (sharp tips up to 1.4 px when blurred), so
# it is moved out by that much before comparing with the size classes.
RADIUS_CORRECTION = 0.3
# Halfway between the size classes' bounding radii (7 / 10 / 14 px).
SIZE_THRESHOLDS = ((SIZES["small"] + SIZES["medium"]) / 2, (SIZES["medium"] + SIZES["large"]) / 2)
CELL = IMAGE_SIZE / 3
_GRID_NAMES = {cell: name for name, cell in POSITIONS.items()}
_COLOUR_NAMES = tuple(COLOURS)
_SIZE_NAMES = tuple(SIZES)

# shape_iou's canonical frame: a square of +-IOU_SPAN equal-area radii, IOU_GRID samples a side.
IOU_SPAN = 2.4
IOU_GRID = 96


@dataclass
class Analysis:
    """What :func:`analyze` read from one image; object fields are None when ``n_objects`` is 0."""

    background: str
    mask: np.ndarray  # bool 64x64, the main (largest) object only
    n_objects: int
    position: str | None
    size: str | None
    colour: str | None
    centroid: tuple[float, float] | None  # (x, y) in pixels, pixel i spanning [i, i+1]
    area: int
    # Bounding radius from the centroid, px (see RADIUS_CORRECTION); ``size`` classifies it.
    radius: float | None
    mean_lab: tuple[float, float, float] | None  # mean CIE Lab of the object's interior
    coverage: np.ndarray  # float 64x64 in [0, 1]: how much of each pixel the main object covers
    resized: bool
    shape: str | None = None  # filled in later by a learned classifier
    texture: str | None = None


def as_image(image) -> tuple[np.ndarray, bool]:
    """A 64x64x3 uint8 array from an array or an image file, and whether it had to be resized."""
    if isinstance(image, (str, os.PathLike)):
        image = load_rgb(image).array
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected an HxWx3 uint8 array or an image path, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1 or image.dtype != np.uint8:
        raise ImageError(f"expected an HxWx3 uint8 RGB array, got shape {image.shape} dtype {image.dtype}")
    if image.shape[:2] == (IMAGE_SIZE, IMAGE_SIZE):
        return image, False
    resized = Image.fromarray(image).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
    return np.asarray(resized), True


def analyze(image) -> Analysis:
    """Background, object mask and count, position, size and colour of ``image``; never fails on content."""
    image, resized = as_image(image)
    pixels = image.astype(np.float64)
    background, model = _background_model(pixels)
    distance = np.min([np.linalg.norm(pixels - colour, axis=2) for colour in model], axis=0)

    labels, _ = ndimage.label(distance > OBJECT_DISTANCE, structure=np.ones((3, 3)))
    areas = np.bincount(labels.ravel())[1:]
    significant = np.flatnonzero(areas >= MIN_OBJECT_AREA) + 1
    if significant.size == 0:
        empty = np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)
        return Analysis(
            background, empty, 0, None, None, None, None, 0, None, None, empty.astype(float), resized
        )

    # World objects have no holes; filling also closes any gap a two-colour blend opens.
    main = ndimage.binary_fill_holes(labels == significant[np.argmax(areas[significant - 1])])
    ys, xs = np.nonzero(main)
    centroid = (float(xs.mean() + 0.5), float(ys.mean() + 0.5))
    radius = float(np.hypot(xs + 0.5 - centroid[0], ys + 0.5 - centroid[1]).max() + RADIUS_CORRECTION)
    colour, mean_lab = _object_colour(image, main)
    return Analysis(
        background=background,
        mask=main,
        n_objects=int(significant.size),
        position=_GRID_NAMES[(min(int(centroid[0] // CELL), 2), min(int(centroid[1] // CELL), 2))],
        size=_SIZE_NAMES[int(np.searchsorted(SIZE_THRESHOLDS, radius))],
        colour=colour,
        centroid=centroid,
        area=int(main.sum()),
        radius=radius,
        mean_lab=mean_lab,
        coverage=_coverage(pixels, main, model),
        resized=resized,
    )


def _border(pixels: np.ndarray) -> np.ndarray:
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def _background_model(pixels: np.ndarray) -> tuple[str, list[np.ndarray]]:
    """Nearest background prototype to the border, and the border's own colour(s) to segment against.

    The prototype with the smallest median border distance wins (the median
    ignores an object touching the border). The model is then the median of
    the border pixels nearest each prototype colour, so a generated image
    whose background drifted from the prototype still segments cleanly.
    """
    border = _border(pixels)
    scores = {}
    for name, colours in BACKGROUNDS.items():
        to_colours = np.linalg.norm(border[:, None, :] - np.array(colours, float)[None], axis=2)
        scores[name] = (np.median(to_colours.min(axis=1)), to_colours.argmin(axis=1))
    background = min(scores, key=lambda name: scores[name][0])
    nearest = scores[background][1]
    model = [
        np.median(border[nearest == k], axis=0) if np.any(nearest == k) else np.array(colour, float)
        for k, colour in enumerate(BACKGROUNDS[background])
    ]
    return background, model


def _coverage(pixels: np.ndarray, mask: np.ndarray, model: list[np.ndarray]) -> np.ndarray:
    """Sub-pixel coverage of the object: unmix each pixel as object colour + background colour.

    An edge pixel is taken to blend its nearest interior pixel's colour with its
    nearest background colour (exact for box-filtered renders), so outlines are
    located to a fraction of a pixel, which matters for small objects.
    """
    interior = ndimage.binary_erosion(mask, structure=np.ones((3, 3)))
    if interior.sum() < 4:
        return mask.astype(np.float64)
    _, (rows, columns) = ndimage.distance_transform_edt(~interior, return_indices=True)
    model = np.array(model)
    nearest_model = np.linalg.norm(pixels[:, :, None, :] - model, axis=3).argmin(axis=2)
    background = model[nearest_model]
    towards_object = pixels[rows, columns] - background
    length_squared = np.maximum((towards_object**2).sum(axis=2), 1e-9)
    fraction = ((pixels - background) * towards_object).sum(axis=2) / length_squared
    near_object = ndimage.binary_dilation(mask, structure=np.ones((3, 3)))
    return np.where(interior, 1.0, np.clip(fraction, 0.0, 1.0) * near_object)


def _object_colour(image: np.ndarray, mask: np.ndarray) -> tuple[str, tuple[float, float, float]]:
    """Named colour by majority vote of interior pixels, and their mean Lab.

    Each pixel votes for its nearest named colour or texture shade (both count
    for the name), so a two-shade texture still reads as one colour and a
    blob's minority second colour is outvoted. Edge pixels, blended with the
    background, are left out unless the object is too thin to have an interior.
    """
    interior = ndimage.binary_erosion(mask, structure=np.ones((3, 3)))
    if interior.sum() < 4:
        interior = mask
    lab = rgb2lab(image[interior].reshape(-1, 1, 3) / 255.0).reshape(-1, 3)
    votes = np.bincount(nearest_colour_names(lab), minlength=len(_COLOUR_NAMES))
    return _COLOUR_NAMES[int(votes.argmax())], tuple(float(c) for c in lab.mean(axis=0))


# ---------------------------------------------------------------- subject fidelity


def _analysis(image_or_analysis) -> Analysis:
    return image_or_analysis if isinstance(image_or_analysis, Analysis) else analyze(image_or_analysis)


def normalised_mask(analysis: Analysis, angle: float = 0.0) -> np.ndarray:
    """The main object's footprint, centred on its coverage centroid, turned by ``angle`` degrees.

    Sampled on a square grid in units of the equal-area radius.
    """
    coverage = analysis.coverage
    area = coverage.sum()
    rows, columns = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE] + 0.5
    centre_x, centre_y = (coverage * columns).sum() / area, (coverage * rows).sum() / area
    scale = np.sqrt(area / np.pi)
    grid = (np.arange(IOU_GRID) + 0.5) / IOU_GRID * 2 * IOU_SPAN - IOU_SPAN
    qx, qy = np.meshgrid(grid, grid)
    theta = np.deg2rad(angle)
    x = centre_x + scale * (np.cos(theta) * qx - np.sin(theta) * qy)
    y = centre_y + scale * (np.sin(theta) * qx + np.cos(theta) * qy)
    # Pixel centres sit at i + 0.5; bilinear coverage cut at one half traces the outline.
    sampled = ndimage.map_coordinates(coverage, [y - 0.5, x - 0.5], order=1, cval=0.0)
    return sampled >= 0.5


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


class Outline:
    """One analysed image's normalised footprint, each angle sampled once: a reference image shared by
    many comparisons (a subject's references) is turned through the angle search only once."""

    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self._masks: dict[float, np.ndarray] = {}

    def mask(self, angle: float = 0.0) -> np.ndarray:
        if angle not in self._masks:
            self._masks[angle] = normalised_mask(self.analysis, angle)
        return self._masks[angle]


def _outline(value) -> Outline:
    return value if isinstance(value, Outline) else Outline(_analysis(value))


def shape_iou(a, b) -> float:
    """Outline agreement of two images' main objects, invariant to position, scale and rotation.

    Both masks are centred on their centroids and scaled to equal area; the
    second is turned through 0-350 degrees in 10-degree steps, then refined to
    1 degree around the best, and the best IoU is returned (the world's rotation
    is a nuisance, mirror images are not searched: a mirrored subject is a
    different subject). NaN when either image has no object. Takes images,
    image paths, :class:`Analysis` or :class:`Outline` results.
    """
    a, b = _outline(a), _outline(b)
    if a.analysis.n_objects == 0 or b.analysis.n_objects == 0:
        return float("nan")
    reference = a.mask()
    coarse = {angle: _iou(reference, b.mask(angle)) for angle in range(0, 360, 10)}
    best = max(coarse, key=coarse.get)
    fine = {angle: _iou(reference, b.mask(angle)) for angle in range(best - 9, best + 10)}
    return max(fine.values())


def colour_error(a, b) -> float:
    """Delta E 2000 between the mean interior colours of two images' main objects; NaN if either has none."""
    a, b = _analysis(a), _analysis(b)
    if a.n_objects == 0 or b.n_objects == 0:
        return float("nan")
    return float(deltaE_ciede2000(np.array(a.mean_lab), np.array(b.mean_lab)))


# ---------------------------------------------------------------- validation

CORRUPTIONS = ("none", "blur", "noise")
BLUR_SIGMA = 0.7  # px
NOISE_SIGMA = 8.0  # uint8 units, i.e. 8/255


def corrupt(image: np.ndarray, corruption: str, rng: np.random.Generator) -> np.ndarray:
    """``image`` unchanged, Gaussian-blurred, or with Gaussian pixel noise."""
    if corruption == "none":
        return image
    if corruption == "blur":
        changed = ndimage.gaussian_filter(image.astype(np.float64), sigma=(BLUR_SIGMA, BLUR_SIGMA, 0))
    elif corruption == "noise":
        changed = image + rng.normal(0.0, NOISE_SIGMA, image.shape)
    else:
        raise ValueError(f"corruption {corruption!r}; expected one of {CORRUPTIONS}")
    return np.clip(np.round(changed), 0, 255).astype(np.uint8)


def validate(n: int = 500, seed: int = 0, corruption: str = "none") -> dict[str, float]:
    """Analyzer accuracy per attribute on ``n`` fresh test-split renders, optionally corrupted.

    Keys: background, position, size, colour, and n_objects (fraction read as exactly one).
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"corruption {corruption!r}; expected one of {CORRUPTIONS}")
    rng = np.random.default_rng([seed, CORRUPTIONS.index(corruption)])
    hits = {"background": 0, "position": 0, "size": 0, "colour": 0, "n_objects": 0}
    for index in range(n):
        scene = sample_scene(scene_rng("test", seed, index), "test")
        found = analyze(corrupt(render(scene), corruption, rng))
        hits["background"] += found.background == scene.background
        hits["position"] += found.position == scene.position
        hits["size"] += found.size == scene.size
        hits["colour"] += found.colour == scene.colour
        hits["n_objects"] += found.n_objects == 1
    return {name: count / n for name, count in hits.items()}
