"""Bootstrap intervals and paired tests against scipy and against known truths."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from metrics import fid, stats


def test_mean_ci_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 1.5, size=60)
    ours = stats.bootstrap_mean_ci(values, n_boot=4000, seed=1)
    reference = scipy_stats.bootstrap((values,), np.mean, n_resamples=4000, method="percentile",
                                      confidence_level=0.95, rng=np.random.default_rng(2)).confidence_interval
    # Two independent Monte Carlo runs: endpoints agree to a small fraction of the interval width.
    width = reference.high - reference.low
    assert ours[0] == pytest.approx(reference.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(reference.high, abs=0.05 * width)


def test_mean_ci_is_reproducible_and_brackets_the_mean():
    values = np.random.default_rng(3).normal(size=30)
    lo, hi = stats.bootstrap_mean_ci(values, n_boot=500, seed=7)
    assert stats.bootstrap_mean_ci(values, n_boot=500, seed=7) == (lo, hi)
    assert lo < values.mean() < hi


def test_mean_ci_coverage_is_near_nominal():
    # 200 samples of N(1, 1), n=40: the 95% interval should contain the true mean ~95% of the time.
    rng = np.random.default_rng(4)
    covered = 0
    for trial in range(200):
        lo, hi = stats.bootstrap_mean_ci(rng.normal(1.0, 1.0, size=40), n_boot=400, seed=trial)
        covered += lo <= 1.0 <= hi
    assert 0.88 <= covered / 200 <= 0.99  # percentile bootstrap under-covers slightly at n=40


def test_mean_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        stats.bootstrap_mean_ci([])
    with pytest.raises(ValueError, match="NaN"):
        stats.bootstrap_mean_ci([1.0, np.nan])


def test_set_ci_resamples_whole_items():
    # stat = number of distinct rows of a: only whole-item resampling keeps it a multiple of 2.
    groups = [np.array([[i, 0.0], [i, 1.0]]) for i in range(6)]
    seen = []

    distinct = []

    def distinct_rows(rows, reference):
        assert reference.shape == (3, 2)  # b is passed through unchanged
        seen.append(len(rows))
        distinct.append(len(np.unique(rows, axis=0)))
        return float(distinct[-1])

    lo, hi = stats.bootstrap_set_ci(distinct_rows, groups, np.zeros((3, 2)), n_boot=50, seed=0)
    assert set(seen) == {12}
    assert all(count % 2 == 0 for count in distinct) and len(set(distinct)) > 1
    assert lo < 12 < hi  # centred on the full-set value


def test_set_ci_is_the_normal_bootstrap_interval():
    # One row per item and stat = mean: estimate ± z * SD of the item-bootstrap means, computed here by hand.
    values = np.random.default_rng(5).normal(size=25)
    groups = [np.array([[v]]) for v in values]
    ci = stats.bootstrap_set_ci(lambda rows, _: float(rows.mean()), groups, np.zeros((1, 1)),
                                n_boot=300, seed=9)
    rng = np.random.default_rng(9)
    means = [values[rng.integers(0, 25, 25)].mean() for _ in range(300)]
    half = scipy_stats.norm.ppf(0.975) * np.std(means, ddof=1)
    assert ci == pytest.approx((values.mean() - half, values.mean() + half), rel=1e-12)


def test_paired_test_detects_a_shift():
    rng = np.random.default_rng(6)
    a = rng.normal(size=40)
    b = a + 0.5 + rng.normal(0, 0.2, size=40)
    result = stats.paired_test(b, a)
    assert result["p_value"] < 1e-4
    assert result["p_value"] == pytest.approx(scipy_stats.wilcoxon(b - a).pvalue, rel=1e-12)
    assert result["mean_diff"] == pytest.approx((b - a).mean(), rel=1e-12)
    assert result["test"] == "wilcoxon signed-rank"


def test_paired_test_identical_scores_give_p_one():
    a = np.random.default_rng(7).normal(size=10)
    assert stats.paired_test(a, a.copy()) == {"mean_diff": 0.0, "p_value": 1.0, "n": 10,
                                              "test": "wilcoxon signed-rank"}


def test_paired_test_no_shift_gives_large_p():
    rng = np.random.default_rng(8)
    assert stats.paired_test(rng.normal(size=50), rng.normal(size=50))["p_value"] > 0.05


def features_by_item(rng, items, samples, dim, shift):
    return [rng.normal(size=(samples, dim)) + shift for _ in range(items)]


def test_paired_bootstrap_set_identical_methods():
    rng = np.random.default_rng(9)
    groups = features_by_item(rng, 8, 2, 4, 0.0)
    ref = rng.normal(size=(20, 4))
    result = stats.paired_bootstrap_set(fid.fid_from_features_fast, groups, [g.copy() for g in groups], ref,
                                        n_boot=50, seed=0)
    assert result["mean_diff"] == 0.0 and result["p_value"] == 1.0 and result["ci"] == (0.0, 0.0)
    assert result["test"] == "paired bootstrap"


def test_paired_bootstrap_set_detects_a_worse_method():
    rng = np.random.default_rng(10)
    ref = rng.normal(size=(60, 4))
    close = features_by_item(rng, 30, 2, 4, 0.0)
    far = [g + 1.0 for g in close]  # same items, shifted away from the reference
    result = stats.paired_bootstrap_set(fid.fid_from_features_fast, far, close, ref, n_boot=200, seed=0)
    expected = fid.fid_from_features_fast(np.concatenate(far), ref) - fid.fid_from_features_fast(
        np.concatenate(close), ref)
    assert result["mean_diff"] == pytest.approx(expected, rel=1e-12)
    assert result["mean_diff"] > 2 and result["ci"][0] > 0
    assert result["p_value"] == pytest.approx(2 / 201)  # no resample crossed zero


def test_paired_bootstrap_set_needs_the_same_items():
    rng = np.random.default_rng(11)
    with pytest.raises(ValueError, match="same items"):
        stats.paired_bootstrap_set(fid.fid_from_features_fast, features_by_item(rng, 3, 1, 2, 0),
                                   features_by_item(rng, 4, 1, 2, 0), rng.normal(size=(5, 2)))
