"""Calibrated estimates of TV-to-uniform and entropy from a sample: empirical Bayes over the profile.

The plug-in TV of n replies is biased upward (a uniform sampler over 100 answers shows TV ≈ 0.27 at
n = 200) and the percentile bootstrap cannot see answers never drawn, so its interval rarely holds the
true TV at practical n. Here the support size k is known (the task's valid answers), so what is unknown
is only how the mass is spread, including over the answers not yet seen.

TV to uniform and entropy are symmetric: they depend on the multiset of probabilities, not on which answer
has which. So the estimate works from the sample's profile (how many answers were seen 0, 1, 2, … times),
the statistic of Orlitsky et al.'s profile maximum likelihood and Valiant & Valiant's unseen estimator:

    c_a ~ Poisson(λ_a),  λ_a ~ G  independently for the k valid answers     (n_valid = Σ c_a, p_a = λ_a / Σ λ)
    Ĝ = argmax_G Π_a Σ_λ G(λ) Pois(c_a; λ)     the nonparametric MLE of the mixing law (Kiefer–Wolfowitz),
                                                on a log grid of rates, by EM
    λ_a | c_a ~ Ĝ(λ) Pois(c_a; λ)              each answer's rate given its count (Robbins/Efron empirical Bayes)

Every draw gives the k rates, hence p, and

    TV_valid = ½ Σ_a |p_a − 1/k|,   TV_all = ½ (Σ_a |(1 − r) p_a − 1/k| + r),   H = −Σ_a p_a log₂ p_a,

with r ~ Beta(n_off + ½, n_valid + ½) the off-support (invalid) share (Jeffreys). Ĝ's own uncertainty is
carried by refitting it on `refits` bootstrap resamples of the k answers' counts (each refit keeps a 1/k
share spread over the whole grid so that every observed count stays possible). The estimate is the mean
of the draws. The interval starts from the draws' central 95% and is widened by the sampling noise and
the bootstrap bias of the estimate, and where replies are many per answer by the Jeffreys posterior
(`posterior_figures` gives the formula), with one boundary rule: when Pearson's χ² test does not reject
uniformity at 5%, the interval is extended to TV = 0 (entropy log₂ k), which a continuous posterior
never reaches exactly. How often the interval holds the truth over true distributions from uniform to a
near point mass is measured by `benchmarks/bench_ci_coverage.py` (BENCHMARKS.md), and
`in_calibrated_regime` names where that benchmark found it holds: that, not the construction, licenses "95%".
"""

from __future__ import annotations

from typing import Collection, Mapping

import numpy as np
from scipy import special

from respread.types import Estimate
from respread.metrics.uncertainty import chi2_uniformity_pvalue

__all__ = ["posterior_figures", "posterior_draws", "jeffreys_draws", "fit_mixing", "in_calibrated_regime", "ESTIMATOR"]

ESTIMATOR = "eb-profile"
GRID_POINTS = 120
FREQUENT = 10  # answers seen more often than this: own Gamma(c) rate (mean c), the data outweigh any prior
JEFFREYS_PER_ANSWER = 5  # from n_valid ≥ 5k the Jeffreys posterior's k/2 pseudo-replies are ≤ 10% of the data


def in_calibrated_regime(n_valid: int, k: int) -> bool:
    """Where `benchmarks/bench_ci_coverage.py` found the TV intervals cover: at least k valid replies.

    Below that (e.g. 50 replies over 1,000 answers) no estimator can pin TV to uniform (the minimax
    rate needs n ≫ k / log k), and the benchmark shows this one's intervals missing there too.
    """
    return n_valid >= k


def _profile(valid_counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct count values (0 included) and how many valid answers have each."""
    counts = np.r_[np.asarray(valid_counts, dtype=float), np.zeros(k - len(valid_counts))]
    values, multiplicity = np.unique(counts, return_counts=True)
    return values, multiplicity.astype(float)


def _rate_grid(values: np.ndarray, n_valid: float, k: int) -> np.ndarray:
    uniform_rate = max(n_valid, 1.0) / k
    return np.unique(np.r_[np.geomspace(uniform_rate * 1e-3, max(values.max() * 1.5, uniform_rate) + 10, GRID_POINTS), uniform_rate])


def fit_mixing(values: np.ndarray, multiplicity: np.ndarray, grid: np.ndarray, *, iterations: int = 300) -> np.ndarray:
    """NPMLE of the mixing weights over `grid` by EM, for each row of `multiplicity` (profiles × values).

    EM step: π_g ← π_g · Σ_j m_j Pois(v_j; λ_g) / Σ_h π_h Pois(v_j; λ_h) / Σ_j m_j.
    """
    log_lik = special.xlogy(values[:, None], grid[None, :]) - grid[None, :] - special.gammaln(values + 1)[:, None]
    lik = np.exp(log_lik - log_lik.max(axis=1, keepdims=True))  # a per-value scale cancels in EM
    multiplicity = np.ascontiguousarray(np.atleast_2d(multiplicity), dtype=float)  # the buffers below copy its layout
    weights = np.full((len(multiplicity), len(grid)), 1.0 / len(grid))
    total = multiplicity.sum(axis=1, keepdims=True)
    # The arrays are small and the loop runs 300 times per fit, so numpy's per-call cost dominates: every
    # step writes into buffers made once. A value absent from a bootstrap profile may have lost all its grid
    # mass: its ratio stays 0 (the buffer's zero, never written where the multiplicity is 0) instead of 0/0.
    seen = multiplicity > 0
    ratio = np.zeros_like(multiplicity)
    mixture = np.empty_like(multiplicity)
    update = np.empty_like(weights)
    lik_t = lik.T
    for _ in range(iterations):
        np.matmul(weights, lik_t, out=mixture)
        np.maximum(mixture, 1e-300, out=mixture)
        np.divide(multiplicity, mixture, out=ratio, where=seen)
        np.matmul(ratio, lik, out=update)
        weights *= update
        weights /= total
    return weights


def posterior_draws(
    counts: Mapping[str, float], support: Collection[str], *, draws: int = 1000, refits: int = 40, seed: int = 0
) -> dict[str, np.ndarray]:
    """Draws of TV_all, TV_valid and H (bits) for one task's answer counts (see the module doc)."""
    valid_counts = np.array([c for a, c in counts.items() if a in support and c > 0], dtype=float)
    n_off = float(sum(c for a, c in counts.items() if a not in support and c > 0))
    return _draws(valid_counts, n_off, len(support), np.random.default_rng(seed), draws, refits)


def _draws(
    valid_counts: np.ndarray, n_off: float, k: int, rng: np.random.Generator, draws: int, refits: int, fits: dict | None = None
) -> dict[str, np.ndarray]:
    """`fits` memoises `fit_mixing` by its inputs: bootstrap replicates with no valid reply all repeat them."""
    valid_counts = valid_counts[valid_counts > 0]
    n_valid = float(valid_counts.sum())
    values, multiplicity = _profile(valid_counts, k)
    grid = _rate_grid(values, n_valid, k)
    resampled = rng.multinomial(k, multiplicity / k, size=refits).astype(float)
    profiles = np.vstack([multiplicity, resampled])
    fits = {} if fits is None else fits
    key = (values.tobytes(), profiles.shape, profiles.tobytes(), grid.tobytes())
    if key not in fits:
        fits[key] = fit_mixing(values, profiles, grid)
    weights = fits[key][1:]
    weights = (1 - 1 / k) * weights + (1 / k) / len(grid)
    rare = values <= FREQUENT
    log_lik = special.xlogy(values[rare, None], grid[None, :]) - grid[None, :]
    per_refit = -(-draws // refits)
    rate_counts = np.zeros((refits, per_refit, len(grid)))
    for b in range(refits):
        post = np.log(weights[b])[None, :] + log_lik
        post = np.exp(post - post.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        for j, m in enumerate(multiplicity[rare]):
            rate_counts[b] += rng.multinomial(int(m), post[j], size=per_refit)
    rate_counts = rate_counts.reshape(-1, len(grid))[:draws]
    frequent = valid_counts[valid_counts > FREQUENT]
    frequent_rates = rng.gamma(frequent[None, :], size=(len(rate_counts), len(frequent)))
    total = rate_counts @ grid + frequent_rates.sum(axis=1)
    p = grid[None, :] / total[:, None]  # probability of one rare answer at each grid rate
    p_frequent = frequent_rates / total[:, None]
    off_share = rng.beta(n_off + 0.5, n_valid + 0.5, size=len(rate_counts))[:, None]
    on_share = 1 - off_share
    tv_valid = 0.5 * ((rate_counts * np.abs(p - 1 / k)).sum(axis=1) + np.abs(p_frequent - 1 / k).sum(axis=1))
    tv_all = 0.5 * (
        (rate_counts * np.abs(on_share * p - 1 / k)).sum(axis=1)
        + np.abs(on_share * p_frequent - 1 / k).sum(axis=1)
        + off_share[:, 0]
    )
    entropy_bits = -((rate_counts * special.xlogy(p, p)).sum(axis=1) + special.xlogy(p_frequent, p_frequent).sum(axis=1)) / np.log(2)
    if n_valid == 0:  # nothing valid seen: the among-valid figures have no evidence
        tv_valid[:] = np.nan
        entropy_bits[:] = np.nan
    return {"tv_all": tv_all, "tv_valid": tv_valid, "entropy_bits": entropy_bits}


def jeffreys_draws(valid_counts: np.ndarray, n_off: float, k: int, rng: np.random.Generator, draws: int) -> dict[str, np.ndarray]:
    """Draws of TV_all, TV_valid and H (bits) under p ~ Dirichlet(c + ½) over the k answers (unseen: c = 0)
    and r ~ Beta(n_off + ½, n_valid + ½), in chunks so that draws × k stays small."""
    alpha = np.r_[valid_counts, np.zeros(k - len(valid_counts))] + 0.5
    out = {"tv_all": [], "tv_valid": [], "entropy_bits": []}
    chunk = max(1, min(draws, 2**20 // k))
    for start in range(0, draws, chunk):
        p = rng.dirichlet(alpha, size=min(chunk, draws - start))
        off_share = rng.beta(n_off + 0.5, float(valid_counts.sum()) + 0.5, size=len(p))[:, None]
        out["tv_valid"].append(0.5 * np.abs(p - 1 / k).sum(axis=1))
        out["tv_all"].append(0.5 * (np.abs((1 - off_share) * p - 1 / k).sum(axis=1) + off_share[:, 0]))
        out["entropy_bits"].append(-special.xlogy(p, p).sum(axis=1) / np.log(2))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def posterior_figures(
    counts: Mapping[str, float],
    support: Collection[str],
    *,
    draws: int = 1000,
    replicates: int = 20,
    seed: int = 0,
    level: float = 0.95,
    uniformity_pvalue: float | None = None,
) -> dict[str, dict]:
    """Mean of the draws and an interval for TV_all, TV_valid and entropy (bits); see the module doc.

    interval = [min(q_lo, m − t·s, j_lo) − max(b, 0), max(q_hi, m + t·s, j_hi) + max(−b, 0)], where
    - q are the central `level` quantiles of the draws and m their mean (the estimate);
    - s is the standard deviation of m* over `replicates` bootstrap resamples of the n replies (m* the
      estimate from one resample) and t Student's quantile with replicates − 1 degrees of freedom;
    - b = mean(m*) − m, the bootstrap estimate of m's bias;
    - j are the central quantiles of the Jeffreys posterior (`jeffreys_draws`), only where
      n_valid ≥ 5k (elsewhere j_lo = +∞, j_hi = −∞).
    The draws carry the uncertainty about how the mass is spread given the profile. s carries the
    sampling noise of the profile itself, which the empirical-Bayes posterior alone understates. b widens
    the side the truth lies on when m is biased. m itself is not shifted: resamples of n replies hold fewer
    distinct answers than the truth, so where unseen answers matter b overstates the bias. j covers few answers seen many times: the empirical-Bayes law is
    learnt from k units, too few to be trusted at k = 4 or 10. Coverage with and without b and j:
    BENCHMARKS.md.

    >>> f = posterior_figures({"a": 500, "b": 500}, {"a", "b"})
    >>> f["tv_valid"]["low"], f["entropy_bits"]["high"]
    (0.0, 1.0)
    """
    k = len(support)
    rng = np.random.default_rng(seed)
    answers = [a for a, c in counts.items() if c > 0]
    observed = np.array([counts[a] for a in answers], dtype=float)
    valid = np.array([a in support for a in answers])
    samples = _draws(observed[valid], float(observed[~valid].sum()), k, rng, draws, 40)
    means = {name: [] for name in samples}
    n = int(round(observed.sum()))
    fits: dict = {}
    for replies in rng.multinomial(n, observed / observed.sum(), size=replicates) if n else []:
        for name, values in _draws(replies[valid].astype(float), float(replies[~valid].sum()), k, rng, 100, 4, fits).items():
            means[name].append(np.mean(values))
    n_valid = int(observed[valid].sum())
    regime = in_calibrated_regime(n_valid, k)
    jeffreys = None
    if n_valid >= JEFFREYS_PER_ANSWER * k:  # its own generator: the estimate and its other terms stay as they were
        jeffreys = jeffreys_draws(  # draws × k capped: a support of 100k answers would otherwise cost seconds
            observed[valid], float(observed[~valid].sum()), k, np.random.default_rng([seed, 1]), min(draws, max(200, 20_000_000 // k))
        )
    if uniformity_pvalue is None:  # a caller that already ran the test passes its p-value
        uniformity_pvalue = chi2_uniformity_pvalue(counts, support, seed=seed)
    uniform_plausible = not uniformity_pvalue < 1 - level  # NaN: plausible
    z = float(special.stdtrit(max(replicates - 1, 1), 0.5 + level / 2))  # s is itself estimated from few replicates
    tail = (1 - level) / 2 * 100
    figures = {}
    for name, values in samples.items():
        if np.all(np.isnan(values)):
            figures[name] = Estimate(float("nan"), float("nan"), float("nan"), ESTIMATOR, n, (("estimator", ESTIMATOR),)).as_dict()
            continue
        mean = float(values.mean())
        spread = float(np.nanstd(means[name], ddof=1)) if len(means[name]) > 1 else 0.0
        bias = float(np.nanmean(means[name]) - mean) if means[name] else 0.0
        bias = bias if np.isfinite(bias) else 0.0
        low, high = (float(v) for v in np.percentile(values, [tail, 100 - tail]))
        low, high = min(low, mean - z * spread), max(high, mean + z * spread)
        if jeffreys is not None:
            j_low, j_high = (float(v) for v in np.percentile(jeffreys[name], [tail, 100 - tail]))
            low, high = min(low, j_low), max(high, j_high)
        low, high = low - max(bias, 0.0), high + max(-bias, 0.0)
        if name == "entropy_bits":
            low, high = max(low, 0.0), min(high, float(np.log2(k)))
            high = float(np.log2(k)) if uniform_plausible else high
        else:
            low, high = max(low, 0.0), min(high, 1.0)
            low = 0.0 if uniform_plausible and name == "tv_valid" else low
        figures[name] = Estimate(mean, low, high, ESTIMATOR, n, (("estimator", ESTIMATOR), ("calibrated_regime", regime))).as_dict()
    return figures
