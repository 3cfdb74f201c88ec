"""The mini world: one object on a background, 64x64 RGB, every attribute known.

A :class:`Scene` record fixes an image completely. :func:`render` draws it at
4x (256x256) and box-filters down, so the same record gives the same bytes.

Geometry conventions (all in 64-px image units, pixel ``i`` spans ``[i, i+1]``):

* ``size`` is the object's bounding radius: the largest distance from its area
  centroid to its outline (7 / 10 / 14 px), whatever the shape.
* ``position`` is the 3x3 cell holding the area centroid; the centroid sits at a
  cell anchor (16, 32 or 48 px) plus a jitter of at most 2 px per axis, so it
  stays >= 2.8 px inside its cell and even a large object stays on the canvas.
* ``rotation`` is a nuisance angle in degrees (counter-clockwise on screen).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab
from skimage.draw import polygon as draw_polygon

IMAGE_SIZE = 64
SUPERSAMPLE = 4
CANVAS = IMAGE_SIZE * SUPERSAMPLE

SHAPES = ("circle", "square", "triangle", "star", "heart", "cross", "hexagon", "crescent")
BLOB = "blob"
ALL_SHAPES = SHAPES + (BLOB,)

# Saturated hues; min pairwise Delta E 2000 is 24.1 (blue/purple). Every object
# colour and its texture shade is >= 84 RGB units (Delta E 2000 >= 18.7) from
# every background colour, so "far from the background" is a safe mask.
COLOURS = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 215, 30),
    "green": (40, 170, 60),
    "cyan": (20, 190, 205),
    "blue": (40, 100, 230),
    "purple": (160, 30, 190),
    "pink": (250, 130, 180),
}
SHADE_FACTOR = 0.55  # a texture's second colour: the object colour 45% darker

TEXTURES = ("plain", "striped", "dotted", "checkered")
SIZES = {"small": 7.0, "medium": 10.0, "large": 14.0}

POSITIONS = {
    "top left": (0, 0), "top": (1, 0), "top right": (2, 0),
    "left": (0, 1), "center": (1, 1), "right": (2, 1),
    "bottom left": (0, 2), "bottom": (1, 2), "bottom right": (2, 2),
}  # name -> (column, row)
CELL_ANCHORS = (16.0, 32.0, 48.0)
MAX_JITTER = 2.0

# Pale or neutral colours, far from every object colour (see COLOURS).
BACKGROUNDS = {
    "sand": ((226, 210, 172),),
    "sky": ((198, 222, 242),),
    "grass": ((170, 200, 150),),
    "slate": ((136, 142, 162),),
    "white": ((246, 246, 246),),
    "checker-grey": ((184, 184, 184), (198, 198, 198)),
}
CHECKER_CELL = 8  # px; aligned to the pixel grid so every pixel stays one pure grey

ATTRIBUTES = ("size", "colour", "texture", "shape", "background", "position")
SPLITS = ("train", "val", "test")
# Blob geometry seeds: each split and the held-out subjects own a disjoint range.
BLOB_SEED_RANGES = {
    "train": (0, 10**9),
    "val": (10**9, 2 * 10**9),
    "test": (2 * 10**9, 3 * 10**9),
    "subjects": (3 * 10**9, 3 * 10**9 + 10**6),
}
# RGB units; the named colours' blends with their texture shades come as close as 72.9.
MIN_BLOB_BACKGROUND_DISTANCE = 72.0


@dataclass(frozen=True)
class Scene:
    """Everything that decides one image. ``blob_seed`` only for blobs, ``texture`` None for them."""

    shape: str
    colour: str
    texture: str | None
    size: str
    position: str
    background: str
    rotation: float = 0.0
    jitter_x: float = 0.0
    jitter_y: float = 0.0
    blob_seed: int | None = None

    def __post_init__(self):
        for field, value, allowed in (
            ("shape", self.shape, ALL_SHAPES), ("colour", self.colour, COLOURS), ("size", self.size, SIZES),
            ("position", self.position, POSITIONS), ("background", self.background, BACKGROUNDS),
        ):
            if value not in allowed:
                raise ValueError(f"Scene.{field}={value!r}; expected one of {sorted(allowed)}")
        if max(abs(self.jitter_x), abs(self.jitter_y)) > MAX_JITTER:
            raise ValueError(f"Scene jitter ({self.jitter_x}, {self.jitter_y}) exceeds {MAX_JITTER} px")
        if self.shape == BLOB:
            if self.blob_seed is None or self.texture is not None:
                raise ValueError("a blob Scene needs blob_seed, and texture=None (blobs have their own)")
            named = blob_palette(self.blob_seed)[0]
            if self.colour != named:
                raise ValueError(f"blob {self.blob_seed} is {named}, not {self.colour}")
        elif self.blob_seed is not None or self.texture not in TEXTURES:
            raise ValueError(f"a {self.shape} Scene needs blob_seed=None and texture in {TEXTURES}")

    @property
    def center(self) -> tuple[float, float]:
        """Area centroid (x, y) in image pixels."""
        column, row = POSITIONS[self.position]
        return CELL_ANCHORS[column] + self.jitter_x, CELL_ANCHORS[row] + self.jitter_y

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: dict) -> Scene:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(record) - names
        if unknown:
            raise ValueError(f"unknown Scene fields {sorted(unknown)}")
        return cls(**record)


# ---------------------------------------------------------------- colours


def _lab(rgb) -> np.ndarray:
    """CIE Lab of uint8-range RGB values, any leading shape."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb2lab(rgb.reshape(-1, 1, 3) / 255.0).reshape(rgb.shape)


def shade(rgb) -> tuple[int, int, int]:
    return tuple(int(round(SHADE_FACTOR * c)) for c in rgb)


# Reference colours for naming: each named colour, then each texture shade.
REFERENCE_LAB = _lab([*COLOURS.values(), *(shade(c) for c in COLOURS.values())])


def nearest_colour_names(lab: np.ndarray) -> np.ndarray:
    """Index into ``COLOURS`` of the nearest reference (a colour or its shade), Delta E 2000, per Lab row."""
    distances = deltaE_ciede2000(np.asarray(lab)[:, None, :], REFERENCE_LAB[None, :, :])
    return distances.argmin(axis=1) % len(COLOURS)


def _background_distance(rgb) -> float:
    colours = np.array([c for group in BACKGROUNDS.values() for c in group], dtype=float)
    return float(np.linalg.norm(colours - np.asarray(rgb, float), axis=1).min())


@functools.lru_cache(maxsize=4096)
def blob_palette(blob_seed: int) -> tuple[str, tuple[int, int, int], tuple[int, int, int]]:
    """(colour name, main RGB, second RGB) of a blob.

    The main colour is a named colour moved a little in Lab and must still be
    nearest to that name, so a caption can name it; the second colour is a
    different named hue, moved likewise. Every blend of the two (edge pixels
    between them) stays far from every background, so the blob segments whole.
    """
    rng = np.random.default_rng([blob_seed, 1])
    main_index = int(rng.integers(len(COLOURS)))
    main = _nudged_colour(main_index, rng)
    while True:
        second = _nudged_colour(int(rng.choice([k for k in range(len(COLOURS)) if k != main_index])), rng)
        blends = np.linspace(0, 1, 11)[:, None] * (np.subtract(second, main)) + main
        if min(_background_distance(blend) for blend in blends) >= MIN_BLOB_BACKGROUND_DISTANCE:
            return tuple(COLOURS)[main_index], main, second


def _nudged_colour(index: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """Named colour ``index`` moved <= 8 Lab units per axis, still nearest its name, far from backgrounds."""
    base_lab = _lab(tuple(COLOURS.values())[index])
    while True:
        rgb = np.clip(_rgb_from_lab(base_lab + rng.uniform(-8.0, 8.0, size=3)), 0, 255).round().astype(int)
        named = nearest_colour_names(_lab(rgb)[None])[0]
        if named == index and _background_distance(rgb) >= MIN_BLOB_BACKGROUND_DISTANCE:
            return tuple(int(c) for c in rgb)


def _rgb_from_lab(lab) -> np.ndarray:
    return lab2rgb(np.asarray(lab, float).reshape(1, 1, 3)).reshape(3) * 255.0


# ---------------------------------------------------------------- outlines


def _polygon_centroid(points: np.ndarray) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    x_next, y_next = np.roll(x, -1), np.roll(y, -1)
    cross = x * y_next - x_next * y
    area = cross.sum() / 2.0
    return np.array([((x + x_next) * cross).sum(), ((y + y_next) * cross).sum()]) / (6.0 * area)


def _normalise(points: np.ndarray) -> np.ndarray:
    """Move the area centroid to 0 and scale so the farthest vertex is at distance 1."""
    points = points - _polygon_centroid(points)
    return points / np.linalg.norm(points, axis=1).max()


def _read_only(array: np.ndarray) -> np.ndarray:
    """Cached arrays are shared, so nobody may change them."""
    array.flags.writeable = False
    return array


def _regular(n_vertices: int, radii=(1.0,), start=-np.pi / 2) -> np.ndarray:
    """Polygon with vertices cycling through ``radii`` (a star for two radii), first vertex pointing up."""
    angles = start + np.arange(n_vertices) * 2 * np.pi / n_vertices
    radius = np.resize(np.asarray(radii, float), n_vertices)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _crescent(offset=0.45, inner_radius=0.78, n=48) -> np.ndarray:
    """Unit disc minus a disc of ``inner_radius`` shifted right by ``offset``."""
    x_cut = (1 + offset**2 - inner_radius**2) / (2 * offset)
    y_cut = np.sqrt(1 - x_cut**2)
    outer_start = np.arctan2(y_cut, x_cut)
    inner_start = np.arctan2(y_cut, x_cut - offset)
    outer = np.linspace(outer_start, 2 * np.pi - outer_start, n)
    inner = np.linspace(2 * np.pi - inner_start, inner_start, n)[1:-1]
    return np.concatenate([
        np.stack([np.cos(outer), np.sin(outer)], axis=1),
        np.stack([offset + inner_radius * np.cos(inner), inner_radius * np.sin(inner)], axis=1),
    ])


def _heart(n=96) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return np.stack([x, -y], axis=1)  # image y points down


def _cross(arm_half_width=0.35) -> np.ndarray:
    w = arm_half_width
    corners = [(w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
               (-w, -w), (-w, -1)]
    return np.array(corners, float)


@functools.lru_cache(maxsize=None)
def shape_outline(shape: str) -> np.ndarray:
    """Unit outline (N x 2, x right / y down): area centroid at 0, bounding radius 1."""
    builders = {
        "circle": lambda: _regular(64),
        "square": lambda: _regular(4, start=-np.pi / 4),
        "triangle": lambda: _regular(3),
        "star": lambda: _regular(10, radii=(1.0, 0.5)),
        "heart": _heart,
        "cross": _cross,
        "hexagon": lambda: _regular(6),
        "crescent": _crescent,
    }
    return _read_only(_normalise(builders[shape]()))


@functools.lru_cache(maxsize=4096)
def blob_outline(blob_seed: int, n=96) -> np.ndarray:
    """Star-convex outline r(theta) = 1 + a few random Fourier terms, normalised like the shapes."""
    rng = np.random.default_rng([blob_seed, 0])
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = np.ones(n)
    for k in (2, 3, 4, 5):
        radius += rng.uniform(0.05, 0.3) * 2 / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    radius = np.maximum(radius, 0.45)  # no needle-thin waist
    return _read_only(_normalise(np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)))


# ---------------------------------------------------------------- textures
# Patterns live in the object's own frame (unit = bounding radius), so they
# rotate and scale with it. Each returns True where the second colour goes.


def _texture_mask(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if texture == "plain":
        return np.zeros(u.shape, bool)
    if texture == "striped":
        return np.floor(u / 0.25) % 2 == 1
    if texture == "dotted":
        period, radius = 0.5, 0.16
        du = (u + period / 2) % period - period / 2
        dv = (v + period / 2) % period - period / 2
        return du**2 + dv**2 < radius**2
    if texture == "checkered":
        return (np.floor(u / 0.3) + np.floor(v / 0.3)) % 2 == 1
    raise ValueError(f"unknown texture {texture!r}")


@functools.lru_cache(maxsize=4096)
def _blob_pattern(blob_seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Two random plane waves and the threshold that gives the second colour ~30% of the blob."""
    rng = np.random.default_rng([blob_seed, 2])
    angles = rng.uniform(0, np.pi, size=2)
    frequencies = rng.uniform(1.0, 2.2, size=2)  # cycles per bounding radius
    waves = np.stack([np.cos(angles), np.sin(angles)], axis=1) * frequencies[:, None]
    phases = rng.uniform(0, 2 * np.pi, size=2)
    # Threshold from the blob's own canonical footprint, so every render of it matches.
    outline = (blob_outline(blob_seed) + 1.0) * 64.0 - 0.5  # unit square -> 128 px, centres at integers
    rows, columns = draw_polygon(outline[:, 1], outline[:, 0], (128, 128))
    values = _wave_sum(waves, phases, (columns + 0.5) / 64.0 - 1.0, (rows + 0.5) / 64.0 - 1.0)
    return waves, phases, float(np.quantile(values, 0.7))


def _wave_sum(waves, phases, u, v):
    return sum(np.cos(2 * np.pi * (w[0] * u + w[1] * v) + p) for w, p in zip(waves, phases))


# ---------------------------------------------------------------- drawing


@functools.lru_cache(maxsize=None)
def _background_canvas(background: str) -> np.ndarray:
    """The background at 4x, uint8 (CANVAS, CANVAS, 3); read-only, shared."""
    colours = np.array(BACKGROUNDS[background], np.uint8)
    cells = np.arange(CANVAS) // (CHECKER_CELL * SUPERSAMPLE)
    index = (cells[:, None] + cells[None, :]) % len(colours)
    return _read_only(colours[index])


def scene_outline(scene: Scene) -> np.ndarray:
    """The object's outline in image pixels (N x 2, x/y)."""
    unit = blob_outline(scene.blob_seed) if scene.shape == BLOB else shape_outline(scene.shape)
    angle = np.deg2rad(scene.rotation)
    # Counter-clockwise on screen, where y points down.
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    return unit @ rotation.T * SIZES[scene.size] + np.array(scene.center)


def render(scene: Scene) -> np.ndarray:
    """The 64x64x3 uint8 image of ``scene``."""
    outline = scene_outline(scene) * SUPERSAMPLE
    # Work only on the whole 64-px pixels the object touches.
    x0, y0 = np.clip(np.floor(outline.min(axis=0) / SUPERSAMPLE).astype(int), 0, IMAGE_SIZE)
    x1, y1 = np.clip(np.ceil(outline.max(axis=0) / SUPERSAMPLE).astype(int) + 1, 0, IMAGE_SIZE)
    left, top = x0 * SUPERSAMPLE, y0 * SUPERSAMPLE
    width, height = (x1 - x0) * SUPERSAMPLE, (y1 - y0) * SUPERSAMPLE

    # A 4x pixel belongs to the object when its centre does; skimage puts pixel centres
    # at integer coordinates, ours are at +0.5. (PIL's polygon fill overshoots the
    # outline by up to half a pixel, which would bias area and size.)
    rows, columns = draw_polygon(outline[:, 1] - top - 0.5, outline[:, 0] - left - 0.5, (height, width))
    inside = np.zeros((height, width), bool)
    inside[rows, columns] = True

    u, v = _object_frame(scene, left, top, width, height)
    if scene.shape == BLOB:
        _, main, second = blob_palette(scene.blob_seed)
        waves, phases, threshold = _blob_pattern(scene.blob_seed)
        second_colour = _wave_sum(waves, phases, u, v) > threshold
    else:
        main, second = COLOURS[scene.colour], shade(COLOURS[scene.colour])
        second_colour = _texture_mask(scene.texture, u, v)

    canvas = _background_canvas(scene.background)
    patch = canvas[top:top + height, left:left + width].copy()
    patch[inside & ~second_colour] = main
    patch[inside & second_colour] = second

    image = canvas[::SUPERSAMPLE, ::SUPERSAMPLE].copy()  # background pixels are uniform blocks
    blocks = patch.reshape(height // SUPERSAMPLE, SUPERSAMPLE, width // SUPERSAMPLE, SUPERSAMPLE, 3)
    total = blocks.sum(axis=(1, 3), dtype=np.int32)
    image[y0:y1, x0:x1] = (total + SUPERSAMPLE**2 // 2) // SUPERSAMPLE**2
    return image


def _object_frame(scene: Scene, left: int, top: int, width: int, height: int):
    """Object-frame (u, v) of a patch's 4x pixel centres: rotation undone, unit = bounding radius."""
    xs = (left + np.arange(width) + 0.5) / SUPERSAMPLE - scene.center[0]
    ys = (top + np.arange(height) + 0.5) / SUPERSAMPLE - scene.center[1]
    dx, dy = np.meshgrid(xs, ys)
    angle = np.deg2rad(scene.rotation)
    radius = SIZES[scene.size]
    u = (np.cos(angle) * dx - np.sin(angle) * dy) / radius
    v = (np.sin(angle) * dx + np.cos(angle) * dy) / radius
    return u, v


# ---------------------------------------------------------------- captions


def caption(scene: Scene, drop=frozenset()) -> str:
    """Templated English, e.g. "a small red striped star on a sand background, top left".

    ``drop`` names attributes (from ``ATTRIBUTES``) to leave out; a dropped
    shape becomes "object". Blobs never mention texture (or any geometry).
    """
    unknown = set(drop) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"cannot drop {sorted(unknown)}; attributes are {ATTRIBUTES}")
    words = [scene.size] if "size" not in drop else []
    if "colour" not in drop:
        words.append(scene.colour)
    if "texture" not in drop and scene.shape != BLOB:
        words.append(scene.texture)
    words.append("object" if "shape" in drop else scene.shape)
    article = "an" if words[0][0] in "aeiou" else "a"
    text = f"{article} {' '.join(words)}"
    if "background" not in drop:
        text += f" on a {scene.background} background"
    if "position" not in drop:
        text += f", {scene.position}"
    return text


def random_caption(scene: Scene, rng: np.random.Generator, p_drop: float) -> str:
    """:func:`caption` with each attribute dropped independently with probability ``p_drop``."""
    draws = rng.random(len(ATTRIBUTES))  # always the same number of draws, whatever p_drop
    return caption(scene, {name for name, draw in zip(ATTRIBUTES, draws) if draw < p_drop})


# ---------------------------------------------------------------- sampling


def scene_rng(split: str, seed: int, index: int) -> np.random.Generator:
    """The generator for scene ``index`` of a ``split`` dataset drawn with ``seed``.

    The split is part of the seed material, so train, val and test never share
    a random stream, whatever ``seed`` and ``index`` are.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r}; expected one of {SPLITS}")
    return np.random.default_rng([SPLITS.index(split), seed, index])


def sample_scene(rng: np.random.Generator, split: str) -> Scene:
    """A uniformly random scene; blob geometry comes from ``split``'s own seed range."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}; expected one of {SPLITS}")
    shape = str(rng.choice(ALL_SHAPES))
    if shape == BLOB:
        low, high = BLOB_SEED_RANGES[split]
        blob_seed = int(rng.integers(low, high))
        colour, texture = blob_palette(blob_seed)[0], None
    else:
        blob_seed, colour, texture = None, str(rng.choice(list(COLOURS))), str(rng.choice(TEXTURES))
    return Scene(
        shape=shape,
        colour=colour,
        texture=texture,
        size=str(rng.choice(list(SIZES))),
        position=str(rng.choice(list(POSITIONS))),
        background=str(rng.choice(list(BACKGROUNDS))),
        # Rounded so a CSV round trip gives back the very same record.
        rotation=round(float(rng.uniform(0, 360)), 2),
        jitter_x=round(float(rng.uniform(-MAX_JITTER, MAX_JITTER)), 2),
        jitter_y=round(float(rng.uniform(-MAX_JITTER, MAX_JITTER)), 2),
        blob_seed=blob_seed,
    )


def held_out_scenes(n: int, seed: int = 0) -> list[Scene]:
    """The first ``n`` test-split scenes: what every model's validation numbers are measured on."""
    return [sample_scene(scene_rng("test", seed, index), "test") for index in range(n)]


# ---------------------------------------------------------------- held-out subjects


@dataclass(frozen=True)
class SubjectPrompt:
    text: str
    target: dict  # attribute -> value a generated image should show


@dataclass(frozen=True)
class Subject:
    """A blob never seen in training, its reference scenes and its prompts."""

    subject_id: str
    blob_seed: int
    colour: str
    references: tuple[Scene, ...]
    prompts: tuple[SubjectPrompt, ...]


N_COMBINED_PROMPTS = 6


def subject_set(n_subjects: int = 20, n_refs: int = 4) -> list[Subject]:
    """DreamBench-style held-out subjects: fresh blobs, each with ``n_refs`` references and its prompts.

    References differ in background and position (all distinct) and cycle
    through the sizes. Prompts name the subject only as "blob" (its colour and
    outline must come from the image prompt) and ask for one background,
    position or size each (6 + 9 + 3 prompts), then for all three at once
    (6 more); ``target`` lists what the image should show, subject included.
    """
    if not 1 <= n_refs <= len(BACKGROUNDS):
        raise ValueError(f"n_refs={n_refs}; references need distinct backgrounds, so 1..{len(BACKGROUNDS)}")
    low, high = BLOB_SEED_RANGES["subjects"]
    if not 0 <= n_subjects <= high - low:
        raise ValueError(f"n_subjects={n_subjects}; at most {high - low}")
    return [_subject(low + index, index, n_refs) for index in range(n_subjects)]


def _subject(blob_seed: int, index: int, n_refs: int) -> Subject:
    rng = np.random.default_rng([blob_seed, 3])
    colour = blob_palette(blob_seed)[0]

    def scene(size, position, background):
        return Scene(
            BLOB, colour, None, str(size), str(position), str(background),
            rotation=round(float(rng.uniform(0, 360)), 2),
            jitter_x=round(float(rng.uniform(-MAX_JITTER, MAX_JITTER)), 2),
            jitter_y=round(float(rng.uniform(-MAX_JITTER, MAX_JITTER)), 2),
            blob_seed=blob_seed,
        )

    backgrounds = rng.permutation(list(BACKGROUNDS))[:n_refs]
    positions = rng.permutation(list(POSITIONS))[:n_refs]
    first_size = int(rng.integers(len(SIZES)))
    sizes = [list(SIZES)[(first_size + k) % len(SIZES)] for k in range(n_refs)]
    references = tuple(scene(*attributes) for attributes in zip(sizes, positions, backgrounds))

    asks = [{"background": b} for b in BACKGROUNDS] + [{"position": p} for p in POSITIONS]
    asks += [{"size": s} for s in SIZES]
    asks += [
        {"size": str(rng.choice(list(SIZES))), "position": str(rng.choice(list(POSITIONS))),
         "background": str(rng.choice(list(BACKGROUNDS)))}
        for _ in range(N_COMBINED_PROMPTS)
    ]
    filler = references[0]  # supplies the attributes a prompt leaves open; they are dropped from its text
    prompts = []
    for ask in asks:
        target_scene = dataclasses.replace(filler, **ask)
        text = caption(target_scene, drop=set(ATTRIBUTES) - set(ask) - {"shape"})
        prompts.append(SubjectPrompt(text, {"shape": BLOB, "colour": colour, **ask}))
    return Subject(f"subject{index:02d}", blob_seed, colour, references, tuple(prompts))
