"""Known answers for decoding every image mode to uint8 RGB: converted correctly or refused, never invented."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from metrics.images import ImageError, load_rgb


def _save(tmp_path, image, name="x.png", **options):
    path = tmp_path / name
    image.save(path, **options)
    return path


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32768], [55000, 65280, 65535]], dtype=np.uint16)
    path = _save(tmp_path, Image.fromarray(values))
    loaded = load_rgb(path)
    expected = np.round(values / 257).astype(np.uint8)
    assert np.array_equal(loaded.array[..., 0], expected) and np.array_equal(loaded.array[..., 2], expected)
    assert loaded.array.mean() < 255 and "16-bit" in loaded.converted_from


def test_rgb_is_read_as_is(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    loaded = load_rgb(_save(tmp_path, Image.fromarray(pixels)))
    assert np.array_equal(loaded.array, pixels) and loaded.converted_from is None


def test_grey_and_palette_expand_to_rgb(tmp_path):
    grey = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    loaded = load_rgb(_save(tmp_path, Image.fromarray(grey, "L")))
    assert np.array_equal(loaded.array, np.repeat(grey[..., None], 3, 2)) and loaded.converted_from.startswith("L")
    palette = Image.fromarray(np.array([[0, 1]], dtype=np.uint8), "P")
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    loaded = load_rgb(_save(tmp_path, palette, "p.png"))
    assert loaded.array[0, 0].tolist() == [255, 0, 0] and loaded.array[0, 1].tolist() == [0, 0, 255]


def test_alpha_is_dropped_as_clean_fid_reads_it_and_the_report_says_how_much_it_hid(tmp_path):
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[0, 0] = [200, 0, 0, 255]
    rgba[0, 1] = [0, 10, 20, 0]  # fully transparent
    path = _save(tmp_path, Image.fromarray(rgba, "RGBA"))
    loaded = load_rgb(path)
    assert np.array_equal(loaded.array, np.asarray(Image.open(path).convert("RGB")))  # clean-fid's reading
    assert loaded.array[0, 1].tolist() == [0, 10, 20]
    assert "alpha dropped" in loaded.converted_from and "50.0% of pixels not opaque" in loaded.converted_from


def test_cmyk_is_converted_and_said_so(tmp_path):
    path = _save(tmp_path, Image.new("CMYK", (2, 2), (0, 255, 255, 0)), "c.jpg", quality=100)
    loaded = load_rgb(path)
    red = loaded.array[0, 0].astype(int)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60 and "CMYK" in loaded.converted_from


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)
    pixels[0, 0] = 255  # top-left white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # stored rotated: display is 90 degrees clockwise
    path = _save(tmp_path, image, "r.jpg", exif=exif, quality=100)
    loaded = load_rgb(path)
    assert loaded.array.shape == (3, 2, 3)  # width and height swapped
    assert loaded.array[0, 1].mean() > 200  # top-left moved to top-right
    assert "EXIF orientation 6" in loaded.converted_from


def test_float_images_are_refused_with_the_reason(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(np.full((2, 2), 0.5, dtype=np.float32), "F").save(path)
    with pytest.raises(ImageError, match=r"f.tif: .*mode F .*no defined value range"):
        load_rgb(path)
