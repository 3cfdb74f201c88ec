"""FID/KID math against independent references; the real Inception pipeline against clean-fid/torchmetrics."""
from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest
import scipy
import torch
from cleanfid.fid import kernel_distance
from cleanfid.resize import make_resizer
from cleanfid.utils import ResizeDataset
from PIL import Image
from scipy import linalg
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from metrics import fid, inception
from metrics.images import ImageError, load_rgb
from metrics.weights import WeightsError


def reference_frechet(features_a, features_b) -> float:
    """Textbook FID, with Tr sqrt(S_a S_b) as the sum of square roots of the product's eigenvalues."""
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    cov_a, cov_b = np.cov(features_a.T), np.cov(features_b.T)
    trace_root = np.sqrt(np.linalg.eigvals(cov_a @ cov_b).astype(complex)).real.sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def cleanfid_frechet(features_a, features_b) -> float:
    """clean-fid's own function (it calls sqrtm(disp=...), which SciPy >= 1.18 no longer accepts)."""
    if tuple(int(part) for part in scipy.__version__.split(".")[:2]) >= (1, 18):
        pytest.skip("clean-fid 0.1.35 cannot run on SciPy >= 1.18")
    from cleanfid.fid import frechet_distance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(frechet_distance(features_a.mean(0), np.cov(features_a.T), features_b.mean(0),
                                      np.cov(features_b.T)))


def correlated_features(rng, n, dim, shift):
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return rng.normal(size=(n, dim)) @ mixing + shift


# ---------------------------------------------------------------- Fréchet distance


@pytest.mark.parametrize("dim,n", [(16, 200), (64, 300)])
def test_fid_matches_textbook_formula(dim, n):
    rng = np.random.default_rng(dim)
    a = correlated_features(rng, n, dim, 0.0)
    b = correlated_features(rng, n + 17, dim, 0.3)
    expected = reference_frechet(a, b)
    assert expected > 1.0
    assert fid.fid_from_features(a, b) == pytest.approx(expected, rel=1e-9)
    assert fid.fid_from_features_fast(a, b) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_equals_cleanfid():
    rng = np.random.default_rng(12)
    a = correlated_features(rng, 80, 24, 0.0)
    b = correlated_features(rng, 9, 24, 0.2)  # singular covariance too
    assert fid.fid_from_features(a, b) == pytest.approx(cleanfid_frechet(a, b), rel=1e-12)


def test_fast_fid_on_rank_deficient_covariances():
    # n < d: the covariances are singular, the case the fast path exists for.
    rng = np.random.default_rng(1)
    a = correlated_features(rng, 9, 48, 0.0)
    b = correlated_features(rng, 12, 48, 0.5)
    expected_trace = np.trace(linalg.sqrtm(np.cov(a.T) @ np.cov(b.T))).real  # independent of the SVD route
    assert fid.trace_sqrt_product(a, b) == pytest.approx(expected_trace, rel=1e-6)
    assert fid.fid_from_features_fast(a, b) == pytest.approx(reference_frechet(a, b), rel=1e-6)
    assert fid.fid_from_features_fast(a, b) == pytest.approx(fid.fid_from_features(a, b), rel=1e-6)


def test_fid_takes_the_exact_identity_only_for_sets_smaller_than_the_dimension(monkeypatch):
    """Both routes are exact; fid_from_features picks the cheap one and equals clean-fid's formula."""
    rng = np.random.default_rng(3)
    small_a, small_b = correlated_features(rng, 20, 48, 0.0), correlated_features(rng, 30, 48, 0.4)
    assert fid.fid_from_features(small_a, small_b) == pytest.approx(cleanfid_frechet(small_a, small_b), rel=1e-6)
    calls = []
    monkeypatch.setattr(fid, "fid_sqrtm", lambda a, b: calls.append(len(a)) or 0.0)
    fid.fid_from_features(small_a, small_b)
    assert calls == []  # n < d: the small-n identity
    fid.fid_from_features(correlated_features(rng, 60, 48, 0.0), small_b)
    assert calls == [60]  # n >= d: clean-fid's sqrtm formula


def test_fid_of_a_set_with_itself_is_zero():
    a = correlated_features(np.random.default_rng(2), 40, 16, 0.0)
    assert fid.fid_from_features_fast(a, a) == pytest.approx(0.0, abs=1e-9)
    assert fid.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_rejects_too_few_samples():
    with pytest.raises(ValueError, match="N >= 2"):
        fid.fid_from_features(np.ones((1, 8)), np.ones((5, 8)))


# ---------------------------------------------------------------- KID


def test_kid_equals_cleanfid_when_subsets_are_the_full_sets():
    rng = np.random.default_rng(3)
    a = correlated_features(rng, 30, 32, 0.0)
    b = correlated_features(rng, 30, 32, 0.4)
    expected = kernel_distance(a, b, num_subsets=5, max_subset_size=1000)
    assert fid.kid_from_features(a, b) == pytest.approx(expected, rel=1e-12)
    assert fid.kid_from_features(a, b, max_subset_size=30) == pytest.approx(expected, rel=1e-12)


KID_BUFFER_WARNING = "ignore:Metric `Kernel Inception Distance` will save"


@pytest.mark.filterwarnings(KID_BUFFER_WARNING)
def test_kid_equals_torchmetrics_on_full_sets():
    rng = np.random.default_rng(4)
    a = correlated_features(rng, 25, 24, 0.0)
    b = correlated_features(rng, 25, 24, 0.3)
    metric = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=3, subset_size=25)
    metric.update(torch.from_numpy(a), real=True)
    metric.update(torch.from_numpy(b), real=False)
    expected = float(metric.compute()[0])
    assert fid.kid_from_features(a, b, max_subset_size=25) == pytest.approx(expected, rel=1e-10)


@pytest.mark.filterwarnings(KID_BUFFER_WARNING)
def test_kid_with_subsets_agrees_with_torchmetrics_statistically():
    rng = np.random.default_rng(5)
    a = correlated_features(rng, 60, 16, 0.0)
    b = correlated_features(rng, 50, 16, 0.5)
    subsets, size = 400, 20
    torch.manual_seed(0)
    metric = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=subsets, subset_size=size)
    metric.update(torch.from_numpy(a), real=True)
    metric.update(torch.from_numpy(b), real=False)
    mean, std = (float(v) for v in metric.compute())
    ours = fid.kid_from_features(a, b, num_subsets=subsets, max_subset_size=size, seed=0)
    standard_error = std / np.sqrt(subsets)
    assert mean > 10 * standard_error  # the test separates a real difference from noise
    assert abs(ours - mean) < 5 * np.sqrt(2) * standard_error


def test_kid_is_reproducible_per_seed():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(40, 8)), rng.normal(size=(30, 8))
    first = fid.kid_from_features(a, b, num_subsets=10, max_subset_size=10, seed=1)
    assert fid.kid_from_features(a, b, num_subsets=10, max_subset_size=10, seed=1) == first
    assert fid.kid_from_features(a, b, num_subsets=10, max_subset_size=10, seed=2) != first


# ---------------------------------------------------------------- feature files


def test_save_load_features_roundtrip(tmp_path):
    rng = np.random.default_rng(7)
    features = rng.normal(size=(5, 6))
    path = tmp_path / "sub" / "feats.npz"
    info = {"backbone": inception.INCEPTION, "n": 5, "converted": ["x.png (L)"]}
    fid.save_features(path, features, ["a", "b", "c", "d", "e"], info)
    loaded = fid.load_features(path)
    assert loaded["features"].dtype == np.float64
    np.testing.assert_array_equal(loaded["features"], features)
    np.testing.assert_allclose(loaded["mu"], features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(loaded["sigma"], np.cov(features.T), rtol=1e-12)
    assert loaded["ids"] == ["a", "b", "c", "d", "e"]
    assert loaded["info"] == info
    assert [p.name for p in path.parent.iterdir()] == ["feats.npz"]  # no temporary left behind


def test_save_features_checks_ids(tmp_path):
    with pytest.raises(ValueError, match="3 feature rows but 2 ids"):
        fid.save_features(tmp_path / "f.npz", np.zeros((3, 4)), ["a", "b"], {})


# ---------------------------------------------------------------- weights


def test_wrong_weights_hash_names_file_and_hashes(tmp_path, monkeypatch):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the inception network")
    monkeypatch.setattr(inception, "inception_path", lambda: fake)
    with pytest.raises(WeightsError) as err:
        inception.load_inception("cpu")
    message = str(err.value)
    assert str(fake) in message and inception.INCEPTION_SHA1 in message
    assert hashlib.sha1(fake.read_bytes()).hexdigest() in message


def test_missing_weights_package_points_to_setup(monkeypatch):
    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match="scripts/setup.sh"):
        inception.inception_path()


# ---------------------------------------------------------------- preprocessing and the real network


def write_image(path, rng, size, mode="RGB", base=None, spread=40):
    h, w = size
    base = rng.integers(0, 256, 3) if base is None else np.asarray(base)
    pixels = np.clip(base + rng.normal(0, spread, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory):
    """Two small sets of differently sized images; set A holds one L and one RGBA file."""
    folder = tmp_path_factory.mktemp("inception_images")
    rng = np.random.default_rng(8)
    modes = ["RGB", "L", "RGB", "RGBA", "RGB", "RGB"]
    set_a = [write_image(folder / f"a{i}.png", rng, (20 + 5 * i, 44 - 3 * i), modes[i]) for i in range(6)]
    set_b = [write_image(folder / f"b{i}.png", rng, (32, 24 + 4 * i), base=(30, 200, 90), spread=80)
             for i in range(6)]
    return set_a, set_b


@pytest.fixture(scope="module")
def network_features(image_sets):
    set_a, set_b = image_sets
    return inception.extract_features_with_report(set_a + set_b, device="cpu", batch_size=3)


def test_preprocessing_equals_cleanfid_dataset(image_sets):
    set_a, _ = image_sets
    for path in set_a[:4]:  # RGB, L, RGB, RGBA
        expected = (ResizeDataset([str(path)], mode="clean")[0] - 128) / 128
        ours = inception.preprocess(load_rgb(path).array)
        assert ours.shape == (3, 299, 299) and ours.dtype == torch.float32
        torch.testing.assert_close(ours, expected, rtol=0, atol=0)


@pytest.mark.slow
def test_converted_files_are_reported(image_sets, network_features):
    set_a, _ = image_sets
    features, converted = network_features
    assert features.shape == (12, 2048) and features.dtype == np.float64
    assert [entry.split(" (")[0] for entry in converted] == [str(set_a[1]), str(set_a[3])]
    assert "(L: expanded to RGB)" in converted[0] and "(RGBA: alpha dropped" in converted[1]


@pytest.mark.slow
def test_features_do_not_depend_on_batch_size(image_sets, network_features):
    set_a, _ = image_sets
    one_by_one = inception.extract_features(set_a[:4], device="cpu", batch_size=1)
    batched = network_features[0][:4]
    # Bit-identical on 2 cores; oneDNN's blocking differs with batch size elsewhere (5e-7 on 16 cores).
    assert np.abs(one_by_one - batched).max() <= 1e-5 * np.abs(batched).max()


class CleanFidInception(torch.nn.Module):
    """Reference extractor for torchmetrics: uint8 NCHW -> clean-fid resize -> the same TorchScript net."""

    def __init__(self):
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            self.net = torch.jit.load(str(inception.inception_path()), map_location="cpu").eval()
        self.resize = make_resizer("PIL", False, "bicubic", (299, 299))

    def forward(self, images):
        resized = [torch.from_numpy(self.resize(image.permute(1, 2, 0).numpy())) for image in images]
        scaled = (torch.stack(resized).permute(0, 3, 1, 2) - 128) / 128
        with torch.no_grad():
            return self.net(scaled).double()


@pytest.mark.slow
def test_fid_on_real_network_matches_torchmetrics(image_sets, network_features):
    set_a, set_b = image_sets
    metric = FrechetInceptionDistance(feature=CleanFidInception(), input_img_size=(3, 32, 32))
    for real, paths in ((True, set_a), (False, set_b)):
        for path in paths:  # one image per update: sizes differ
            pixels = np.array(Image.open(path).convert("RGB"))
            metric.update(torch.from_numpy(pixels).permute(2, 0, 1)[None], real=real)
    expected = float(metric.compute())
    features = network_features[0]
    assert expected > 1.0
    assert fid.fid_from_features(features[:6], features[6:]) == pytest.approx(expected, rel=1e-6)
    assert fid.fid_from_features_fast(features[:6], features[6:]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("workers", [0, 1])
def test_bad_file_is_named_without_worker_traceback(tmp_path, image_sets, workers):
    broken = tmp_path / "broken.png"
    broken.write_bytes(image_sets[0][0].read_bytes()[:60])
    with pytest.raises(ImageError) as err:
        inception.extract_features([image_sets[0][0], broken], device="cpu", batch_size=2,
                                   num_workers=workers)
    assert str(broken) in str(err.value)
    assert "Traceback" not in str(err.value)
