"""Figures of tasks with right and wrong answers: accuracy, pass@k, distinct answers, distinct paths.

Samples are grouped by prompt (n_i samples of prompt i, c_i of them correct). Every figure is a mean over
prompts, so a prompt with more samples does not weigh more, and its CI resamples prompts (the unit that
varies between benchmarks); accuracy and pass@k also take in an exact binomial interval (see
`correctness_figures`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from respread.types import Estimate

PASS_K = (1, 5, 10, 25, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021):

        pass@k = 1 − C(n−c, k) / C(n, k)

    the probability that k samples drawn without replacement from the n hold at least one correct one,
    computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i) to stay exact for large n. Needs k ≤ n.

    >>> [round(pass_at_k(10, c, k), 6) for c, k in [(1, 1), (3, 2), (0, 5), (6, 5)]]  # 1 − 21/45 for (3, 2)
    [0.1, 0.533333, 0.0, 1.0]
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _binomial_pass_at_k_ci(n: int, c: int, k: int) -> tuple[float, float]:
    """95% CI of 1 − (1 − p)^k from the Clopper–Pearson interval of p: exact, since the map is monotone."""
    from respread.metrics.uncertainty import clopper_pearson

    low, high = clopper_pearson(c, n)
    return 1 - (1 - low) ** k, 1 - (1 - high) ** k


def _prompt_bootstrap(values: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile 95% CI of the mean of per-prompt values, resampling prompts."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (resamples, values.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _estimate(values: Sequence[float], resamples: int, seed: int) -> dict:
    array = np.asarray(values, dtype=float)
    kept = array[~np.isnan(array)]
    if kept.size == 0:
        return Estimate(None, None, None, "bootstrap-prompts", 0, (("prompts", 0),)).as_dict()
    low, high = _prompt_bootstrap(kept, resamples, seed) if kept.size > 1 else (math.nan, math.nan)
    return Estimate(float(kept.mean()), low, high, "bootstrap-prompts", int(kept.size), (("prompts", int(kept.size)),)).as_dict()


def correctness_figures(groups: Sequence[Sequence[bool]], *, resamples: int = 1000, seed: int = 0) -> dict:
    """Accuracy (= pass@1) and pass@k for k in PASS_K up to the smallest n_i, each a mean over prompts.

    accuracy = mean_i c_i / n_i;  pass@k = mean_i pass_at_k(n_i, c_i, k).
    CIs: the pooled Clopper–Pearson interval of the correct rate p (for pass@k, its monotone image
    1 − (1 − p)^k), widened to cover the percentile bootstrap over prompts where there are several. The
    bootstrap sees the spread between prompts that pooling ignores; Clopper–Pearson stays honest where the
    bootstrap collapses (no prompt ever correct gives a bootstrap interval of [0, 0]).
    """
    groups = [list(g) for g in groups if len(g)]
    if not groups:
        return {"accuracy": Estimate(None, None, None, "bootstrap-prompts", 0, (("prompts", 0),)).as_dict(), "pass_at_k": {}}
    n_min = min(len(g) for g in groups)
    figures: dict = {"pass_at_k": {}}
    for k in [k for k in PASS_K if k <= n_min]:
        per_prompt = [pass_at_k(len(g), sum(g), k) for g in groups]
        estimate = _estimate(per_prompt, resamples, seed)
        low, high = _binomial_pass_at_k_ci(sum(len(g) for g in groups), sum(sum(g) for g in groups), k)
        if len(groups) > 1:
            low, high = min(low, estimate["low"]), max(high, estimate["high"])
        # At k = n the estimator is 0 or 1 whatever p is; the interval still holds the point it reports.
        estimate["low"], estimate["high"] = min(low, estimate["value"]), max(high, estimate["value"])
        figures["pass_at_k"][str(k)] = estimate
    figures["accuracy"] = figures["pass_at_k"]["1"]
    return figures


def path_figures(
    correct_paths: Sequence[Sequence[tuple]], *, resamples: int = 1000, seed: int = 0
) -> dict:
    """How many different ways the correct chains of each prompt took.

    For prompt i with m_i ≥ 1 correct chains whose calculation paths form the set P_i:
        distinct_paths            = mean_i |P_i|
        distinct_paths_per_correct = mean_i |P_i| / m_i   (1: every correct chain took its own path)
    Prompts with no correct chain do not count (they have no paths to compare); `prompts` says how many
    did. CIs: percentile bootstrap over those prompts (none with fewer than two).
    """
    usable = [list(paths) for paths in correct_paths if paths]
    distinct = [len(set(paths)) for paths in usable]
    return {
        "prompts_with_correct": len(usable),
        "correct_chains": sum(len(p) for p in usable),
        "distinct_paths": _estimate(distinct, resamples, seed),
        "distinct_paths_per_correct": _estimate([d / len(p) for d, p in zip(distinct, usable)], resamples, seed),
    }


def distinct_answers(answers_by_prompt: Sequence[Sequence[str | None]], *, resamples: int = 1000, seed: int = 0) -> dict:
    """mean_i |{final answers of prompt i}|, replies without an answer left out."""
    counts = [len({a for a in answers if a is not None}) for answers in answers_by_prompt if len(answers)]
    return _estimate(counts, resamples, seed)
