"""Uncertainty for categorical figures: bootstrap CIs, the uniform noise floor, a uniformity test.

The noise floor matters because empirical TV is biased upward: even a perfectly uniform sampler over
100 answers shows TV ≈ 0.27 at n = 200. A figure is only evidence of collapse where it clears the floor.
"""

from __future__ import annotations

from typing import Callable, Collection, Mapping

import numpy as np
# scipy.special, not scipy.stats: the distribution functions used here are its, and scipy.stats adds 0.5 s of import
from scipy import special

from respread.metrics.categorical import as_arrays
from respread.types import Estimate

__all__ = ["expected_tv_uniform", "bootstrap_ci", "chi2_uniformity_pvalue", "Figure"]

Figure = dict  # an `Estimate` serialised: {"value", "low", "high", "method", "n", ...}


def expected_tv_uniform(k: int, n: int) -> float:
    """Expected TV to uniform of the empirical distribution of n draws from a uniform sampler over k answers.

    E[TV] = ½ · Σ_a E|X_a/n − 1/k| = (k/2) · Σ_{x=0}^{n} Binom(x; n, 1/k) · |x/n − 1/k|, computed exactly.
    It is the floor a collapsed-or-not judgement must clear at that n (→ 0 as n → ∞, → 1 − n/k for n ≪ k).

    >>> round(expected_tv_uniform(2, 2), 6)
    0.25
    >>> round(expected_tv_uniform(100, 200), 2)
    0.27
    """
    if n <= 0 or k <= 0:
        return float("nan")
    x = np.arange(n + 1)
    p = 1.0 / k
    log_pmf = special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1) + special.xlogy(x, p) + special.xlog1py(n - x, -p)
    pmf = np.exp(log_pmf)
    return float(0.5 * k * np.sum(pmf * np.abs(x / n - 1.0 / k)))


def clopper_pearson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval of a binomial rate: the Beta(x, n−x+1) quantile α/2 and the
    Beta(x+1, n−x) quantile 1 − α/2, with 0 at x = 0 and 1 at x = n. It never collapses to a point.

    >>> [round(v, 4) for v in clopper_pearson(0, 10)]
    [0.0, 0.3085]
    >>> [round(v, 4) for v in clopper_pearson(7, 10)]
    [0.3475, 0.9333]
    """
    tail = (1 - level) / 2
    low = float(special.betaincinv(successes, n - successes + 1, tail)) if successes > 0 else 0.0
    high = float(special.betaincinv(successes + 1, n - successes, 1 - tail)) if successes < n else 1.0
    return low, high


def bootstrap_ci(
    counts: Mapping[str, float],
    support: Collection[str],
    row_metric: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Figure:
    """Point value and percentile bootstrap CI of a row-wise metric, resampling replies with replacement.

    Each resample draws n replies from the observed answer distribution (a multinomial over the observed
    answers), so answers never seen are never drawn. The interval therefore says how far the plug-in
    figure would move on a rerun at the same n; it is not a confidence interval for the population
    value of a biased statistic. Plug-in TV is biased upward at small n (resamples are lumpier still,
    so the interval can even sit above the point value): compare runs at equal n and against the noise
    floor, which is the same plug-in statistic's expectation under a uniform sampler. `bias` is the
    bootstrap estimate of that bias, mean(resampled) − value.
    `row_metric(weights[B, m], valid[m]) -> values[B]`.
    """
    _, weights, valid = as_arrays(counts, support)
    n = int(round(weights.sum()))
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), "bootstrap", 0, (("bias", float("nan")),)).as_dict()
    value = float(row_metric(weights[None, :], valid)[0])
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, weights / weights.sum(), size=resamples).astype(float)
    values = row_metric(draws, valid)
    tail = (1 - level) / 2 * 100
    if np.all(np.isnan(values)):
        low = high = bias = float("nan")
    else:
        low, high = (float(v) for v in np.nanpercentile(values, [tail, 100 - tail]))
        bias = float(np.nanmean(values) - value)
    return Estimate(value, low, high, "bootstrap", n, (("bias", bias),)).as_dict()


def chi2_uniformity_pvalue(
    counts: Mapping[str, int], support: Collection[str], *, simulations: int = 2000, seed: int = 0
) -> float:
    """p-value of Pearson's χ² test that the valid answers are uniform over `support`.

    X² = Σ_{a ∈ support} (c_a − m/k)² / (m/k) over the m valid replies. With expected counts m/k ≥ 5
    the χ²(k−1) approximation is used; below that (most tasks at practical n) the p-value is Monte
    Carlo: the share of `simulations` uniform samples of size m with X² at least as large (+1 smoothing).
    X² depends on the counts only through Σ c², so a simulation costs O(m), not O(k). NaN if m < 2.

    >>> chi2_uniformity_pvalue({"a": 50, "b": 50}, {"a", "b"})
    1.0
    """
    k = len(support)
    valid_counts = np.array([c for a, c in counts.items() if a in support and c > 0], dtype=float)
    m = int(valid_counts.sum())
    if m < 2 or k < 2:
        return float("nan")
    if m / k >= 5:
        expected = m / k
        statistic = float(np.sum((valid_counts - expected) ** 2) / expected + (k - len(valid_counts)) * expected)
        return float(special.chdtrc(k - 1, statistic))
    observed_sum_sq = float(np.sum(valid_counts**2))
    rng = np.random.default_rng(seed)
    rows = max(1, 2**22 // m)  # simulations per block: a few arrays of 32 MB, whatever m is
    sums = np.concatenate([_sums_of_squared_counts(rng.integers(0, k, size=(min(rows, simulations - start), m)))
                           for start in range(0, simulations, rows)])
    return float((1 + np.sum(sums >= observed_sum_sq - 1e-9)) / (simulations + 1))


def _sums_of_squared_counts(draws: np.ndarray) -> np.ndarray:
    """Σ c² per row of answer draws, from the runs of the sorted rows: a run starts where the value changes
    or a row begins, and each run's length is one answer's count."""
    draws = np.sort(draws, axis=1)
    starts = np.ones(draws.shape, dtype=bool)
    starts[:, 1:] = draws[:, 1:] != draws[:, :-1]
    run_lengths = np.bincount(np.cumsum(starts.ravel()) - 1)
    return np.bincount(np.flatnonzero(starts.ravel()) // draws.shape[1], weights=run_lengths.astype(float) ** 2, minlength=len(draws))
