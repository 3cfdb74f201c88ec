"""clean-fid's PIL bicubic resize as matrix products (metrics/resize.py) against PIL and clean-fid themselves."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from cleanfid.resize import make_resizer
from PIL import Image

from metrics import fid, inception
from metrics.images import load_rgb
from metrics.resize import bicubic_weights, resize_batch

# Two float32 steps at 255 (2^-16 each): what a different float64 summation order could move a value by.
ATOL = 2.0 ** -15
SHAPES = [(64, 64), (256, 256), (512, 512), (300, 200), (200, 300), (37, 1000), (600, 500), (299, 512)]


@pytest.mark.parametrize("in_size,out_size", [(64, 299), (512, 299), (37, 299), (1000, 299), (299, 64)])
def test_weights_are_pils_impulse_responses(in_size, out_size):
    # Resizing a unit impulse at column j through PIL gives column j of the pass's matrix (as float32).
    impulses = np.eye(in_size, dtype=np.float32)
    columns = [np.asarray(Image.fromarray(impulses[j:j + 1], mode="F").resize((out_size, 1), Image.BICUBIC))[0]
               for j in range(in_size)]
    weights = bicubic_weights(in_size, out_size)
    np.testing.assert_array_equal(weights.astype(np.float32), np.stack(columns, axis=1))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("height,width", SHAPES)
def test_resize_equals_cleanfid(height, width):
    images = np.random.default_rng(height * 1000 + width).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    resizer = make_resizer("PIL", False, "bicubic", (299, 299))
    expected = np.stack([resizer(image) for image in images]).transpose(0, 3, 1, 2)
    ours = resize_batch(torch.from_numpy(images), 299)
    assert ours.dtype == torch.float32 and ours.shape == (2, 3, 299, 299)
    if max(height, width) < 299:  # upscaled noise overshoots: the clip to [0, 255] is exercised
        assert expected.min() == 0 and expected.max() == 255
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=ATOL)


def test_network_input_of_mixed_sizes_equals_preprocess():
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, shape + (3,), dtype=np.uint8) for shape in [(40, 48), (64, 64), (40, 48)]]
    ours = inception.preprocess_on([torch.from_numpy(image) for image in images], torch.device("cpu"))
    expected = torch.stack([inception.preprocess(image) for image in images])
    torch.testing.assert_close(ours, expected, rtol=0, atol=ATOL / 128)


def test_resize_rejects_float_input():
    with pytest.raises(ValueError, match="uint8"):
        resize_batch(torch.zeros((1, 8, 8, 3)), 299)


@pytest.fixture(scope="module")
def png_sets(tmp_path_factory):
    """Two sets of 4 PNGs: A all 64 px (one batch tensor), B of mixed sizes (a list per batch)."""
    folder = tmp_path_factory.mktemp("resize_sets")
    rng = np.random.default_rng(5)
    sets = {"a": [(64, 64)] * 4, "b": [(64, 64), (48, 80), (96, 96), (64, 64)]}
    paths = {}
    for name, shapes in sets.items():
        paths[name] = []
        for index, (height, width) in enumerate(shapes):
            base = rng.integers(0, 256, 3) if name == "a" else np.array([40, 180, 90])
            pixels = np.clip(base + rng.normal(0, 50, (height, width, 3)), 0, 255).astype(np.uint8)
            path = folder / f"{name}{index}.png"
            Image.fromarray(pixels).save(path)
            paths[name].append(path)
    return paths


@pytest.mark.slow
def test_features_and_fid_equal_the_pil_path(png_sets):
    model = inception.load_inception("cpu")
    paths = png_sets["a"] + png_sets["b"]
    pil = inception.extract_features_with_report(paths, "cpu", batch_size=4, model=model)[0]
    matrix = inception.extract_features_with_report(paths, "cpu", batch_size=4, model=model,
                                                    resize_on_device=True)[0]
    assert np.abs(matrix - pil).max() <= 1e-5 * np.abs(pil).max()
    expected = fid.fid_from_features(pil[:4], pil[4:])
    assert expected > 1.0
    assert fid.fid_from_features(matrix[:4], matrix[4:]) == pytest.approx(expected, rel=1e-4)


def test_decoded_pixels_reach_the_device_unresized(png_sets):
    # The loader's matrix-path items are the decoded uint8 images themselves.
    files = inception._ImageFiles(png_sets["b"][:2], resize=False)
    pixels, mode = files[1]
    assert pixels.dtype == torch.uint8 and mode == ""
    np.testing.assert_array_equal(pixels.numpy(), load_rgb(png_sets["b"][1]).array)
