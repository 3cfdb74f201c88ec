"""Confidence intervals and paired tests over benchmark items.

Per-item metrics (LPIPS, CLIP scores) are bootstrapped as means over items. Set metrics (FID, KID)
are bootstrapped by resampling *items*: an item's samples (several seeds of one prompt/reference)
move together, since they are not independent of each other.

The reference set of a set metric is held fixed. Every method is scored against the same reference
images, so their sampling noise is shared by all methods and is not what separates them; the
intervals describe how much a score depends on which items (and seeds) were drawn. Note that
resampling with replacement duplicates rows, which lowers the apparent diversity of a set, so
bootstrap FID/KID values sit somewhat above the point estimate: read these intervals as spread,
and compare methods with the paired bootstrap, where that shift is common to both.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats as scipy_stats

SetStatistic = Callable[[np.ndarray, np.ndarray], float]


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def _per_item(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name}: need a non-empty 1-D array of per-item values, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return values


def bootstrap_mean_ci(per_item, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean over items."""
    values = _per_item(per_item, "per_item")
    rng = np.random.default_rng(seed)
    resampled_means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    return _percentile_interval(resampled_means, level)


def _check_groups(groups, name: str) -> list[np.ndarray]:
    groups = [np.asarray(group, dtype=np.float64) for group in groups]
    if len(groups) < 2:
        raise ValueError(f"{name}: need at least 2 items to bootstrap, got {len(groups)}")
    for index, group in enumerate(groups):
        if group.ndim != 2 or len(group) == 0:
            raise ValueError(f"{name}[{index}]: need a non-empty (samples, D) array, got shape {group.shape}")
    return groups


def _resampled_rows(groups: list[np.ndarray], items: np.ndarray) -> np.ndarray:
    return np.concatenate([groups[i] for i in items])


def bootstrap_set_ci(stat_fn: SetStatistic, groups_a, b, n_boot: int = 200, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float]:
    """Normal bootstrap interval of ``stat_fn(rows_a, b)``, resampling the items of a (b fixed).

    ``groups_a[i]`` holds the feature rows of item i (one per sample). The
    interval is the full-set value ± z·SD of the resampled values: for FID and
    KID the resampled values are shifted upwards (duplicated rows look less
    diverse), so a percentile interval can exclude the estimate itself; the
    bootstrap SD still measures how much the score depends on the items drawn.
    """
    groups_a = _check_groups(groups_a, "groups_a")
    b = np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(seed)
    values = np.array([
        stat_fn(_resampled_rows(groups_a, rng.integers(0, len(groups_a), len(groups_a))), b)
        for _ in range(n_boot)
    ])
    estimate = stat_fn(_resampled_rows(groups_a, np.arange(len(groups_a))), b)
    half = float(scipy_stats.norm.ppf(0.5 + level / 2) * values.std(ddof=1))
    return float(estimate - half), float(estimate + half)


def paired_test(per_item_a, per_item_b) -> dict:
    """Wilcoxon signed-rank test of a vs b on the same items (two-sided)."""
    a, b = _per_item(per_item_a, "per_item_a"), _per_item(per_item_b, "per_item_b")
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same items: {len(a)} vs {len(b)}")
    diff = a - b
    # scipy cannot rank all-zero differences; identical scores are no evidence of a difference.
    p_value = 1.0 if not diff.any() else float(scipy_stats.wilcoxon(a, b).pvalue)
    return {"mean_diff": float(diff.mean()), "p_value": p_value, "n": len(a), "test": "wilcoxon signed-rank"}


def paired_bootstrap_set(stat_fn: SetStatistic, groups_a, groups_b, ref, n_boot: int = 200, seed: int = 0,
                         level: float = 0.95) -> dict:
    """Paired bootstrap of ``stat_fn(a, ref) - stat_fn(b, ref)`` for a set metric.

    Methods a and b were run on the same items, so each resample draws one set of item indices
    and uses it for both. ``mean_diff`` is the difference on the full sets; ``ci`` the percentile
    interval of the resampled differences; ``p_value`` the two-sided bootstrap p-value for a zero
    difference (with the +1 correction, so it is never 0).
    """
    groups_a, groups_b = _check_groups(groups_a, "groups_a"), _check_groups(groups_b, "groups_b")
    if len(groups_a) != len(groups_b):
        raise ValueError(f"paired methods need the same items: {len(groups_a)} vs {len(groups_b)}")
    ref = np.asarray(ref, dtype=np.float64)
    everything = np.arange(len(groups_a))
    observed = (stat_fn(_resampled_rows(groups_a, everything), ref)
                - stat_fn(_resampled_rows(groups_b, everything), ref))
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for k in range(n_boot):
        items = rng.integers(0, len(groups_a), len(groups_a))
        diffs[k] = (stat_fn(_resampled_rows(groups_a, items), ref)
                    - stat_fn(_resampled_rows(groups_b, items), ref))
    below, above = (diffs <= 0).sum(), (diffs >= 0).sum()
    p_value = min(1.0, 2 * (min(below, above) + 1) / (n_boot + 1))
    return {"mean_diff": float(observed), "ci": _percentile_interval(diffs, level), "p_value": float(p_value),
            "n": len(groups_a), "test": "paired bootstrap"}
