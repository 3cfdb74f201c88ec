"""The mini world's analyzers, checked against the renderer's ground-truth records."""
import dataclasses

import numpy as np
import pytest
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

from ipbench.world import analyze as analyzer
from ipbench.world.analyze import analyze, colour_error, shape_iou, validate
from ipbench.world.render import (
    BACKGROUNDS, COLOURS, SHAPES, Scene, blob_palette, render, sample_scene, scene_rng,
)
from metrics.images import ImageError

ATTRIBUTES = ("background", "position", "size", "colour")


def large(shape, **change):
    return render(dataclasses.replace(Scene(shape, "red", "plain", "large", "center", "white"), **change))


def test_reads_back_attributes_of_fresh_renders():
    scenes = [sample_scene(scene_rng("test", 20260, i), "test") for i in range(200)]
    hits = dict.fromkeys(ATTRIBUTES, 0)
    for scene in scenes:
        found = analyze(render(scene))
        assert found.n_objects == 1 and not found.resized
        for attribute in ATTRIBUTES:
            hits[attribute] += getattr(found, attribute) == getattr(scene, attribute)
        assert np.hypot(found.centroid[0] - scene.center[0], found.centroid[1] - scene.center[1]) < 1.0
    accuracy = {attribute: count / len(scenes) for attribute, count in hits.items()}
    assert min(accuracy.values()) >= 0.99, accuracy


@pytest.mark.parametrize("corruption", ["blur", "noise"])
def test_validate_under_mild_corruption(corruption):
    accuracy = validate(n=120, seed=4, corruption=corruption)
    assert set(accuracy) == {*ATTRIBUTES, "n_objects"}
    assert min(accuracy.values()) >= 0.97, accuracy


def test_corruptions_change_the_image():
    image = render(Scene("star", "blue", "dotted", "medium", "center", "sky"))
    rng = np.random.default_rng(0)
    for corruption in ("blur", "noise"):
        assert not np.array_equal(analyzer.corrupt(image, corruption, rng), image)
    with pytest.raises(ValueError, match="corruption"):
        validate(n=1, corruption="jpeg")


def test_other_sizes_are_resized(tmp_path):
    scene = Scene("hexagon", "green", "striped", "medium", "bottom left", "sand", rotation=10.0)
    big = np.asarray(Image.fromarray(render(scene)).resize((160, 160), Image.NEAREST))
    found = analyze(big)
    assert found.resized and found.mask.shape == (64, 64)
    read = (found.background, found.position, found.size, found.colour)
    assert read == ("sand", "bottom left", "medium", "green")
    path = tmp_path / "scene.png"
    Image.fromarray(render(scene)).save(path)
    from_file = analyze(path)
    assert not from_file.resized and from_file.colour == "green"


@pytest.mark.parametrize("bad", [[[1, 2, 3]], np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.float32),
                                 np.zeros((64, 64, 4), np.uint8), np.zeros((0, 64, 3), np.uint8)])
def test_non_images_are_refused_clearly(bad):
    with pytest.raises(ImageError, match="HxWx3"):
        analyze(bad)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ImageError, match="nothing.png"):
        analyze(tmp_path / "nothing.png")


def bare(background):
    """A background with nothing on it: one colour, or 8-px checker cells of two."""
    colours = np.array(BACKGROUNDS[background], np.uint8)
    cells = (np.arange(64) // 8)[:, None] + (np.arange(64) // 8)[None, :]
    return colours[cells % len(colours)]


@pytest.mark.parametrize("background", list(BACKGROUNDS))
def test_empty_background_has_no_object(background):
    found = analyze(bare(background))
    assert found.n_objects == 0 and found.background == background
    assert found.position is None and found.size is None and found.colour is None and not found.mask.any()
    assert np.isnan(shape_iou(bare(background), large("star")))
    assert np.isnan(colour_error(large("star"), bare(background)))


def test_two_objects_are_counted():
    first = render(Scene("star", "red", "plain", "medium", "top left", "grass"))
    second = render(Scene("circle", "blue", "checkered", "small", "bottom right", "grass"))
    both = np.where((second != bare("grass")).any(axis=2, keepdims=True), second, first)
    found = analyze(both)
    assert found.n_objects == 2
    assert found.position == "top left" and found.colour == "red"  # the main object is the larger one


def test_specks_are_not_objects():
    image = render(Scene("square", "yellow", "plain", "medium", "center", "slate"))
    image[2:4, 60:62] = (250, 0, 0)  # a 4-pixel speck in a corner
    assert analyze(image).n_objects == 1


def iou_of_centred_circle_and_square():
    """Equal-area circle and square on one centre, worked out on paper: circle minus four caps."""
    radius = 1.0
    half_side = np.sqrt(np.pi) / 2 * radius
    cap = radius**2 * np.arccos(half_side / radius) - half_side * np.sqrt(radius**2 - half_side**2)
    intersection = np.pi * radius**2 - 4 * cap
    return intersection / (2 * np.pi * radius**2 - intersection)


def test_shape_iou_matches_geometry():
    expected = iou_of_centred_circle_and_square()
    assert shape_iou(large("circle"), large("square")) == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize("shape", SHAPES)
def test_shape_iou_ignores_position_scale_rotation_and_colour(shape):
    reference = analyze(large(shape))
    moved = render(Scene(shape, "cyan", "striped", "medium", "top right", "slate", rotation=130.0,
                         jitter_x=1.5))
    same = shape_iou(reference, moved)
    assert same > 0.9
    others = [shape_iou(reference, large(other, rotation=25.0)) for other in SHAPES if other != shape]
    assert max(others) < same


def test_shape_iou_tells_blobs_apart():
    def blob(seed, **change):
        scene = Scene("blob", blob_palette(seed)[0], None, "large", "center", "white", blob_seed=seed)
        return render(dataclasses.replace(scene, **change))

    for seed in (3, 4, 5):
        same = shape_iou(blob(seed), blob(seed, size="medium", position="bottom", rotation=200.0))
        assert same > 0.9
        assert shape_iou(blob(seed), blob(seed + 100)) < same


def lab_of(rgb):
    return rgb2lab(np.array(rgb, float).reshape(1, 1, 3) / 255.0).reshape(3)


def test_colour_error_is_delta_e_2000_of_the_object_colours():
    red_on_sand = render(Scene("circle", "red", "plain", "large", "left", "sand"))
    blue_on_sky = render(Scene("square", "blue", "plain", "medium", "top", "sky"))
    expected = deltaE_ciede2000(lab_of(COLOURS["red"]), lab_of(COLOURS["blue"]))
    assert colour_error(red_on_sand, blue_on_sky) == pytest.approx(expected, abs=0.5)
    red_elsewhere = render(Scene("star", "red", "plain", "small", "bottom right", "slate", rotation=9.0))
    assert colour_error(red_on_sand, red_elsewhere) < 1.0


def test_odd_generated_content_never_crashes():
    rng = np.random.default_rng(1)
    odd = [
        rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),  # pure noise
        np.zeros((64, 64, 3), np.uint8),  # black, no background of ours
        np.full((64, 64, 3), COLOURS["red"], np.uint8),  # all object colour
        np.full((1, 1, 3), 200, np.uint8),  # a single pixel
    ]
    for image in odd:
        found = analyze(image)
        assert found.n_objects >= 0 and found.mask.shape == (64, 64) and found.background in BACKGROUNDS
