"""The mini world's renderer, captions, sampling, subjects and dataset writer."""
import dataclasses
import hashlib
import io
import itertools
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

from ipbench.world import render as world
from ipbench.world.datasets import read_scenes, write_dataset
from ipbench.world.render import (
    ALL_SHAPES, BACKGROUNDS, BLOB_SEED_RANGES, COLOURS, POSITIONS, SHAPES, SIZES, TEXTURES, Scene, caption,
    random_caption, render, sample_scene, scene_outline, scene_rng, subject_set,
)

RED_STAR = Scene("star", "red", "striped", "small", "top left", "sand", rotation=12.5, jitter_x=1.0,
                 jitter_y=-0.5)


def png_sha1(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return hashlib.sha1(buffer.getvalue()).hexdigest()


def lab(rgb):
    return rgb2lab(np.asarray(rgb, float).reshape(-1, 1, 3) / 255.0).reshape(-1, 3)


def test_same_record_gives_identical_bytes():
    first, second = render(RED_STAR), render(Scene.from_dict(json.loads(json.dumps(RED_STAR.to_dict()))))
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(first, second)
    assert png_sha1(first) == png_sha1(second)


@pytest.mark.parametrize("change", [
    {"shape": "heart"}, {"colour": "blue"}, {"texture": "dotted"}, {"size": "large"}, {"position": "center"},
    {"background": "checker-grey"}, {"rotation": 40.0}, {"jitter_x": -1.0},
])
def test_changing_any_field_changes_the_image(change):
    assert not np.array_equal(render(RED_STAR), render(dataclasses.replace(RED_STAR, **change)))


def test_invalid_records_are_rejected():
    with pytest.raises(ValueError, match="colour"):
        Scene("star", "beige", "plain", "small", "top", "sand")
    with pytest.raises(ValueError, match="jitter"):
        dataclasses.replace(RED_STAR, jitter_x=3.0)
    with pytest.raises(ValueError, match="blob_seed"):
        Scene("blob", "red", None, "small", "top", "sand")
    with pytest.raises(ValueError, match="unknown"):
        Scene.from_dict({**RED_STAR.to_dict(), "hue": 3})
    blob_colour = world.blob_palette(7)[0]
    other = next(name for name in COLOURS if name != blob_colour)
    with pytest.raises(ValueError, match="blob 7"):
        Scene("blob", other, None, "small", "top", "sand", blob_seed=7)


def polygon_area_and_centroid(points):
    """Shoelace formulas, written out independently of the renderer."""
    x, y = points[:, 0], points[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    return abs(area), np.array([cx, cy])


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_outline_matches_the_record(shape):
    """Bounding radius is the size, the area centroid is the position, for every shape."""
    for size, rotation in (("small", 0.0), ("large", 77.0)):
        if shape == "blob":
            scene = Scene(shape, world.blob_palette(11)[0], None, size, "bottom right", "white",
                          rotation=rotation, jitter_x=-2.0, blob_seed=11)
        else:
            scene = Scene(shape, "green", "plain", size, "bottom right", "white", rotation=rotation,
                          jitter_x=-2.0)
        outline = scene_outline(scene)
        _, centroid = polygon_area_and_centroid(outline)
        np.testing.assert_allclose(centroid, scene.center, atol=1e-9)
        assert np.linalg.norm(outline - scene.center, axis=1).max() == pytest.approx(SIZES[size])


@pytest.mark.parametrize("shape", SHAPES)
def test_anti_aliased_pixels_match_ideal_geometry(shape):
    """Coverage read back from plain-coloured pixels equals the exact polygon's area and centroid."""
    scene = Scene(shape, "blue", "plain", "medium", "top", "white", rotation=33.0, jitter_y=1.5)
    image = render(scene).astype(float)
    background, colour = np.array(BACKGROUNDS["white"][0], float), np.array(COLOURS["blue"], float)
    # Box filtering mixes linearly, so each pixel's coverage is its position between the two colours.
    direction = colour - background
    coverage = ((image - background) @ direction) / (direction @ direction)
    area, centroid = polygon_area_and_centroid(scene_outline(scene))
    assert coverage.sum() == pytest.approx(area, rel=0.03)
    rows, columns = np.mgrid[:64, :64] + 0.5
    measured = np.array([(coverage * columns).sum(), (coverage * rows).sum()]) / coverage.sum()
    np.testing.assert_allclose(measured, centroid, atol=0.25)


def test_objects_stay_on_canvas_and_inside_their_cell():
    for shape, position, jitter in itertools.product(SHAPES, ["top left", "bottom right"], (-2.0, 2.0)):
        scene = Scene(shape, "red", "plain", "large", position, "white", rotation=45.0, jitter_x=jitter,
                      jitter_y=jitter)
        outline = scene_outline(scene)
        assert outline.min() >= 0 and outline.max() <= 64
        column, row = POSITIONS[position]
        cx, cy = scene.center
        assert int(cx // (64 / 3)) == column and int(cy // (64 / 3)) == row


def test_attributes_are_separable():
    """Named colours differ clearly, and every object colour, shade and blend is far from every background."""
    colour_lab = lab(list(COLOURS.values()))
    pairs = itertools.combinations(range(8), 2)
    pairwise = [deltaE_ciede2000(colour_lab[i], colour_lab[j]) for i, j in pairs]
    assert min(pairwise) > 20
    backgrounds = np.array([c for group in BACKGROUNDS.values() for c in group], float)
    for rgb in COLOURS.values():
        dark = np.round(0.55 * np.array(rgb, float))
        for t in np.linspace(0, 1, 11):
            blend = (1 - t) * np.array(rgb, float) + t * dark
            assert np.linalg.norm(backgrounds - blend, axis=1).min() > 70
    prototypes = [np.mean(group, axis=0) for group in BACKGROUNDS.values()]
    assert min(np.linalg.norm(a - b) for a, b in itertools.combinations(prototypes, 2)) > 35
    radii = sorted(SIZES.values())
    assert min(b - a for a, b in zip(radii, radii[1:])) >= 3


def test_textures_mix_the_colour_with_a_darker_shade():
    plain = render(Scene("square", "orange", "plain", "large", "center", "white"))
    for texture in ("striped", "dotted", "checkered"):
        image = render(Scene("square", "orange", texture, "large", "center", "white"))
        centre = image[26:38, 26:38].reshape(-1, 3).astype(int)
        assert (centre == COLOURS["orange"]).all(axis=1).any()
        dark = np.round(0.55 * np.array(COLOURS["orange"]))
        assert (np.abs(centre - dark).max(axis=1) <= 1).any(), texture
        assert not np.array_equal(image, plain)


def test_captions():
    assert caption(RED_STAR) == "a small red striped star on a sand background, top left"
    assert caption(RED_STAR, drop={"size", "texture", "background", "position"}) == "a red star"
    sky_star = dataclasses.replace(RED_STAR, background="sky")
    assert caption(sky_star, drop={"size", "colour", "texture", "position"}) == "a star on a sky background"
    orange = dataclasses.replace(RED_STAR, colour="orange")
    assert caption(orange, drop={"size"}).startswith("an orange striped star")
    assert caption(RED_STAR, drop=set(world.ATTRIBUTES)) == "an object"
    blob = Scene("blob", world.blob_palette(5)[0], None, "large", "center", "grass", blob_seed=5)
    assert caption(blob) == f"a large {blob.colour} blob on a grass background, center"
    with pytest.raises(ValueError, match="hue"):
        caption(RED_STAR, drop={"hue"})
    rng = np.random.default_rng(0)
    assert random_caption(RED_STAR, rng, 0.0) == caption(RED_STAR)
    assert random_caption(RED_STAR, rng, 1.0) == "an object"
    some = {random_caption(RED_STAR, rng, 0.5) for _ in range(50)}
    assert len(some) > 10


def test_splits_are_disjoint():
    scenes = {s: [sample_scene(scene_rng(s, 0, i), s) for i in range(300)] for s in world.SPLITS}
    for a, b in itertools.combinations(world.SPLITS, 2):
        assert not set(scenes[a]) & set(scenes[b])
    for split, drawn in scenes.items():
        low, high = BLOB_SEED_RANGES[split]
        seeds = [s.blob_seed for s in drawn if s.shape == "blob"]
        assert seeds and all(low <= seed < high for seed in seeds)
    # Every attribute value turns up in a few hundred draws.
    train = scenes["train"]
    assert {s.shape for s in train} == set(ALL_SHAPES)
    assert {s.texture for s in train} == set(TEXTURES) | {None}
    assert {s.background for s in train} == set(BACKGROUNDS)
    assert {s.position for s in train} == set(POSITIONS)
    with pytest.raises(ValueError, match="split"):
        scene_rng("holdout", 0, 0)


def test_subject_set():
    subjects = subject_set(n_subjects=5, n_refs=4)
    assert subject_set(n_subjects=5, n_refs=4) == subjects  # deterministic
    low, high = BLOB_SEED_RANGES["subjects"]
    training = BLOB_SEED_RANGES["train"]
    for subject in subjects:
        assert low <= subject.blob_seed < high and not training[0] <= subject.blob_seed < training[1]
        refs = subject.references
        assert len(refs) == 4
        assert all(r.blob_seed == subject.blob_seed and r.colour == subject.colour for r in refs)
        assert len({r.background for r in refs}) == 4 and len({r.position for r in refs}) == 4
        assert {r.size for r in refs} == set(SIZES)
        assert len(subject.prompts) == 6 + 9 + 3 + 6
        for prompt in subject.prompts:
            assert prompt.target["shape"] == "blob" and prompt.target["colour"] == subject.colour
            assert "blob" in prompt.text and subject.colour not in prompt.text
            for attribute in ("background", "position", "size"):
                if attribute in prompt.target:
                    assert prompt.target[attribute] in prompt.text
    assert len({s.blob_seed for s in subjects}) == 5
    with pytest.raises(ValueError):
        subject_set(n_refs=7)


def test_write_dataset(tmp_path):
    out = write_dataset(tmp_path / "train", "train", 12, seed=3, p_drop=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]  # no staging folder left behind
    scenes = read_scenes(out)
    assert scenes == [sample_scene(scene_rng("train", 3, i), "train") for i in range(12)]
    for index, scene in enumerate(scenes):
        with Image.open(out / f"{index:06d}.png") as png:
            assert np.array_equal(np.asarray(png), render(scene))
    again = write_dataset(tmp_path / "again", "train", 12, seed=3, p_drop=0.0)
    for index in range(12):
        name = f"{index:06d}.png"
        assert (out / name).read_bytes() == (again / name).read_bytes()
    full = pd.read_csv(again / "attributes.csv")["caption"].tolist()
    assert full == [caption(s) for s in scenes]
    with pytest.raises(FileExistsError):
        write_dataset(out, "train", 1, seed=0)
