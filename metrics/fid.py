"""FID and KID from feature matrices (float64 throughout), plus a feature cache format.

features -> statistics -> distance, as in clean-fid (and with its conventions).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
from scipy import linalg


def _as_features(features, name: str = "features") -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"{name}: need an (N, D) matrix with N >= 2 samples, got shape {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return features


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, N-1) covariance of an (N, D) feature matrix."""
    features = _as_features(features)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)), with clean-fid's conventions.

    Same computation as cleanfid.fid.frechet_distance (sqrtm of the product; on a non-finite root,
    eps added to both diagonals; an imaginary diagonal part above 1e-3 is an error), written here
    because clean-fid 0.1.35 calls sqrtm(..., disp=False), which SciPy 1.18 removed.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"statistics do not match: means {mu1.shape}, {mu2.shape}; "
                         f"covariances {sigma1.shape}, {sigma2.shape}")
    with warnings.catch_warnings():
        # With fewer samples than dimensions the product is singular by construction; sqrtm still
        # matches the exact trace (trace_sqrt_product) to ~1e-6 relative (tests/test_fid.py).
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(root).all():
            offset = np.eye(len(sigma1)) * eps
            root = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            imaginary = np.abs(root.imag).max()
            raise ValueError(f"sqrtm of the covariance product has an imaginary part {imaginary:.3g}")
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root))


def fid_from_features(features_a, features_b) -> float:
    """FID of two feature sets, computed exactly either way.

    When both sets have fewer samples than dimensions (every mini-world set: a few hundred images
    against Inception's 2048), the covariances are singular and the trace term comes from the
    small-n identity of :func:`trace_sqrt_product`, which equals clean-fid's sqrtm formula to about
    1e-7 relative (tests/test_fid.py) at a thousandth of the time; otherwise clean-fid's formula
    (:func:`fid_sqrtm`), which is cheaper for large sets such as FID-30k.
    """
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    if max(len(a), len(b)) < a.shape[1]:
        return fid_from_features_fast(a, b)
    return fid_sqrtm(a, b)


def fid_sqrtm(features_a, features_b) -> float:
    """clean-fid's FID: Fréchet distance of the two sets' float64 means and covariances, with sqrtm."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def trace_sqrt_product(features_a, features_b) -> float:
    """Exact Tr sqrt(Sigma_a Sigma_b) without a D x D matrix square root.

    With centred rows Xc, Yc: Sigma_a Sigma_b = Xc' (Xc Yc') Yc / ((na-1)(nb-1)), whose nonzero
    eigenvalues are those of M M' for M = Xc Yc' / sqrt((na-1)(nb-1)), i.e. the squared singular
    values of M. So the trace is the sum of M's singular values: an na x nb SVD, cheap when N < D.
    """
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    cross = centred_a @ centred_b.T / np.sqrt((len(a) - 1) * (len(b) - 1))
    return float(np.linalg.svd(cross, compute_uv=False).sum())


def fid_from_features_fast(features_a, features_b) -> float:
    """FID via trace_sqrt_product: exact, and fast for N < D (bootstrap resamples)."""
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    mean_gap = a.mean(axis=0) - b.mean(axis=0)
    trace_a = ((a - a.mean(axis=0)) ** 2).sum() / (len(a) - 1)
    trace_b = ((b - b.mean(axis=0)) ** 2).sum() / (len(b) - 1)
    return float(mean_gap @ mean_gap + trace_a + trace_b - 2 * trace_sqrt_product(a, b))


def _unbiased_poly_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the KID kernel k(u, v) = (u.v / d + 1)^3, for equal-size x and y."""
    m, dim = x.shape
    k_xx = (x @ x.T / dim + 1) ** 3
    k_yy = (y @ y.T / dim + 1) ** 3
    k_xy = (x @ y.T / dim + 1) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kid_from_features(features_a, features_b, num_subsets: int = 100, max_subset_size: int = 1000,
                      seed: int = 0) -> float:
    """KID as clean-fid's kernel_distance, but reproducible: subsets come from a local RNG.

    When both sets have exactly the subset size every subset is the whole set, so the
    MMD (invariant to row order) is computed once instead of ``num_subsets`` times.
    """
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if num_subsets < 1 or max_subset_size < 2:
        raise ValueError("need num_subsets >= 1 and max_subset_size >= 2")
    m = min(len(a), len(b), max_subset_size)
    if len(a) == m and len(b) == m:
        return _unbiased_poly_mmd(a, b)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        total += _unbiased_poly_mmd(a[rng.choice(len(a), m, replace=False)],
                                    b[rng.choice(len(b), m, replace=False)])
    return total / num_subsets


def save_features(path: str | os.PathLike, features, ids, info: dict) -> None:
    """Write features (float64, kept exact), their mean/covariance, ids and a JSON info dict atomically."""
    path = Path(path)
    features = np.asarray(features, dtype=np.float64)
    ids = np.asarray([str(i) for i in ids])
    if len(ids) != len(features):
        raise ValueError(f"{path}: {len(features)} feature rows but {len(ids)} ids")
    mu, sigma = feature_statistics(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, features=features, mu=mu, sigma=sigma, ids=ids,
                     info=np.asarray(json.dumps(info, sort_keys=True)))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_features(path: str | os.PathLike) -> dict:
    """dict(features, mu, sigma, ids: list[str], info: dict) as written by save_features."""
    with np.load(path, allow_pickle=False) as data:
        return {
            "features": data["features"],
            "mu": data["mu"],
            "sigma": data["sigma"],
            "ids": data["ids"].tolist(),
            "info": json.loads(str(data["info"])),
        }
