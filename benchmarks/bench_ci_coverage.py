"""How often respread's 95% intervals for TV-to-uniform and entropy contain the true value.

For each true distribution over k answers (uniform; Zipf, p_i ∝ 1/i; half the mass on 10 answers, or on
2 when k = 10; a near point mass, 0.9 on one answer and the rest uniform), k = 10, 100, 1000 and
n = 50, 200, 1000, it draws n replies `trials` times and counts how often each interval holds the truth:

- before: the plug-in figure with its percentile bootstrap interval (300 resamples), as in respread ≤ issue 14;
- after: the calibrated `eb-profile` estimate (`respread.metrics.posterior`), which the tables now use.

Also the mean of each point estimate against the truth (bias), for TV among valid answers, entropy
(bits), and TV over all replies when half of the replies are invalid (off-support).

Run: python benchmarks/bench_ci_coverage.py [trials]     (default 200: about 36 minutes on 2 cores; 50: 9)
     python benchmarks/bench_ci_coverage.py [trials] --small-support     (k = 4 and 10, replies piled on one answer)
"""

from __future__ import annotations

import sys
import time

import numpy as np

from respread.metrics import categorical as cat
from respread.metrics.posterior import in_calibrated_regime, posterior_figures
from respread.metrics.uncertainty import bootstrap_ci

INVALID = "<invalid>"


def distributions(k: int) -> dict[str, np.ndarray]:
    zipf = 1 / np.arange(1, k + 1)
    heavy = min(10, k // 5)
    half = np.r_[np.full(heavy, 0.5 / heavy), np.full(k - heavy, 0.5 / (k - heavy))]
    return {
        "uniform": np.full(k, 1 / k),
        "zipf": zipf / zipf.sum(),
        f"half on {heavy}": half,
        "point 0.9": point_mass(k, 0.9),
    }


def truth(probs: np.ndarray, k: int, invalid_share: float) -> dict[str, float]:
    q = probs
    return {
        "tv_valid": 0.5 * np.abs(q - 1 / k).sum(),
        "entropy_bits": float(-(q * np.log2(q)).sum()),
        "tv_all": 0.5 * (np.abs((1 - invalid_share) * q - 1 / k).sum() + invalid_share),
    }


def point_mass(k: int, top: float) -> np.ndarray:
    return np.r_[top, np.full(k - 1, (1 - top) / (k - 1))]


def grid_cells():
    for k in (10, 100, 1000):
        for dist_name, probs in distributions(k).items():
            for n in (50, 200, 1000):
                yield k, dist_name, probs, n


def small_support_cells():
    """Replies piled on one answer of a small support (a card suit, a weekday): few distinct answers seen."""
    for k, tops in ((4, (0.9, 0.97, 0.99)), (10, (0.97, 0.99))):
        for top in tops:
            for n in (20, 50, 200):
                yield k, f"point {top}", point_mass(k, top), n


def main(trials: int, cells) -> None:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    rows = []
    for k, dist_name, probs, n in cells:
        labels = [str(i) for i in range(k)]
        support = frozenset(labels)
        hits = {(m, e): 0 for m in ("tv_valid", "entropy_bits", "tv_all") for e in ("before", "after")}
        means = {key: [] for key in hits}
        widths = {key: [] for key in hits}
        true = truth(probs, k, 0.5)
        for trial in range(trials):
            counts = dict(zip(labels, rng.multinomial(n, probs)))
            # the same draws with half of the replies made invalid, for TV over all replies
            with_invalid = dict(zip(labels, rng.multinomial(n // 2, probs)))
            with_invalid[INVALID] = n - n // 2
            after = posterior_figures(counts, support, draws=1000, seed=trial)
            after_all = posterior_figures(with_invalid, support, draws=1000, seed=trial)["tv_all"]
            before = {
                "tv_valid": bootstrap_ci(counts, support, lambda w, v: cat.tv_valid_rows(w, v, k), resamples=300, seed=trial),
                "entropy_bits": bootstrap_ci(counts, support, cat.entropy_rows, resamples=300, seed=trial),
                "tv_all": bootstrap_ci(with_invalid, support, lambda w, v: cat.tv_rows(w, v, k), resamples=300, seed=trial),
            }
            for metric in ("tv_valid", "entropy_bits", "tv_all"):
                for estimator, est in (("before", before[metric]), ("after", after_all if metric == "tv_all" else after[metric])):
                    hits[(metric, estimator)] += est["low"] - 1e-12 <= true[metric] <= est["high"] + 1e-12
                    means[(metric, estimator)].append(est["value"])
                    widths[(metric, estimator)].append(est["high"] - est["low"])
        rows.append((k, dist_name, n, true, {key: hits[key] / trials for key in hits}, {key: np.mean(v) for key, v in means.items()},
                     {key: np.mean(v) for key, v in widths.items()}))
        print(f"  k={k} {dist_name} n={n} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    print(f"{trials} trials per cell; nominal 95%; cells where the 'after' interval covers < 90% marked ✗; "
          "'regime': the estimator claims calibration there (n_valid ≥ k; with half the replies invalid, n/2 ≥ k)\n")
    for metric, title in (("tv_valid", "TV among valid answers"), ("entropy_bits", "Entropy among valid answers (bits)"),
                          ("tv_all", "TV over all replies, half of them invalid")):
        print(f"### {title}\n")
        print("| k | true distribution | n | regime | truth | plug-in mean | coverage before | width before "
              "| calibrated mean | coverage after | width after |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        in_regime = []
        for k, dist_name, n, true, coverage, mean, width in rows:
            after = coverage[(metric, "after")]
            regime = in_calibrated_regime(n // 2 if metric == "tv_all" else n, k)
            if regime:
                in_regime.append(after)
            print(f"| {k} | {dist_name} | {n} | {'yes' if regime else 'no'} | {true[metric]:.3f} | {mean[(metric, 'before')]:.3f} "
                  f"| {coverage[(metric, 'before')]:.0%} | {width[(metric, 'before')]:.3f} | {mean[(metric, 'after')]:.3f} "
                  f"| {after:.0%}{'' if after >= 0.9 else ' ✗'} | {width[(metric, 'after')]:.3f} |")
        worst = min(c[(metric, "after")] for *_, c, _, _ in rows)
        print(f"\nlowest coverage after: {worst:.0%} in any cell, {min(in_regime):.0%} in the regime; "
              f"plug-in before: {min(c[(metric, 'before')] for *_, c, _, _ in rows):.0%}\n")
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--small-support"]
    main(int(arguments[0]) if arguments else 200, small_support_cells() if "--small-support" in sys.argv else grid_cells())
