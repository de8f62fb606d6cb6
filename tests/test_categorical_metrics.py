"""Categorical metrics: hand-computed values, bounds, invariances, and the uniform noise floor."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from respread.measure.figures import exact_metrics, sampled_metrics
from respread.metrics import categorical as cat
from respread.metrics.uncertainty import bootstrap_ci, chi2_uniformity_pvalue, expected_tv_uniform

SUPPORT = frozenset("abcd")

counts_strategy = st.dictionaries(st.sampled_from(list("abcdxyz")), st.integers(1, 50), min_size=1, max_size=7)


def test_hand_computed_values_on_a_small_distribution():
    counts = {"a": 4, "b": 2, "c": 2, "junk": 2}  # n=10, 8 valid, k=4
    # TV all: ½(|.4-.25| + |.2-.25|·2 + |0-.25| + .2) = ½(.15+.1+.25+.2) = .35
    assert cat.tv_to_uniform(counts, SUPPORT) == pytest.approx(0.35)
    # valid only: p = (.5,.25,.25,0): ½(.25+0+0+.25) = .25
    assert cat.tv_to_uniform_valid(counts, SUPPORT) == pytest.approx(0.25)
    assert cat.entropy_bits(counts, SUPPORT) == pytest.approx(1.5)
    assert cat.effective_number(counts, SUPPORT) == pytest.approx(2 ** 1.5)
    assert cat.kl_to_uniform_bits(counts, SUPPORT) == pytest.approx(0.5)
    assert cat.normalized_entropy(counts, SUPPORT) == pytest.approx(0.75)
    assert cat.validity_rate(counts, SUPPORT) == pytest.approx(0.8)
    assert cat.distinct_count(counts, SUPPORT) == 3
    assert cat.coverage(counts, SUPPORT) == pytest.approx(0.75)
    assert cat.top_k(counts, 2) == [("a", 0.4), ("b", 0.2)]


def test_uniform_and_point_mass_are_the_extremes():
    uniform = {a: 5 for a in SUPPORT}
    assert cat.tv_to_uniform(uniform, SUPPORT) == 0
    assert cat.kl_to_uniform_bits(uniform, SUPPORT) == pytest.approx(0)
    assert cat.normalized_entropy(uniform, SUPPORT) == pytest.approx(1)
    point = {"a": 20}
    assert cat.tv_to_uniform(point, SUPPORT) == pytest.approx(0.75)  # 1 − 1/k
    assert cat.entropy_bits(point, SUPPORT) == 0
    assert cat.tv_to_uniform({"junk": 3}, SUPPORT) == 1.0
    assert math.isnan(cat.tv_to_uniform_valid({"junk": 3}, SUPPORT))


@given(counts_strategy)
@settings(max_examples=200, deadline=None)
def test_metrics_stay_in_bounds(counts):
    assert 0 <= cat.tv_to_uniform(counts, SUPPORT) <= 1
    assert 0 <= cat.validity_rate(counts, SUPPORT) <= 1
    if cat.validity_rate(counts, SUPPORT) > 0:
        assert 0 <= cat.tv_to_uniform_valid(counts, SUPPORT) <= 1 - 1 / len(SUPPORT) + 1e-12
        assert 0 <= cat.entropy_bits(counts, SUPPORT) <= math.log2(len(SUPPORT)) + 1e-12
        assert 1 - 1e-12 <= cat.effective_number(counts, SUPPORT) <= len(SUPPORT) + 1e-9
        assert cat.kl_to_uniform_bits(counts, SUPPORT) >= -1e-12
    # Off-support mass can only push TV up: TV_all ≥ TV_valid scaled by validity, and ≥ invalid share.
    assert cat.tv_to_uniform(counts, SUPPORT) >= 1 - cat.validity_rate(counts, SUPPORT) - 1e-12


@given(counts_strategy, st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_metrics_ignore_answer_order_and_relabelling_within_the_support(counts, rnd):
    items = list(counts.items())
    rnd.shuffle(items)
    shuffled = dict(items)
    relabel = dict(zip("abcd", rnd.sample("abcd", 4)))
    relabelled = {relabel.get(a, a): c for a, c in counts.items()}
    for metric in (cat.tv_to_uniform, cat.validity_rate):
        assert metric(shuffled, SUPPORT) == pytest.approx(metric(counts, SUPPORT))
        assert metric(relabelled, SUPPORT) == pytest.approx(metric(counts, SUPPORT))


@given(counts_strategy, st.integers(2, 5))
@settings(max_examples=100, deadline=None)
def test_scaling_all_counts_changes_no_distribution_metric(counts, factor):
    scaled = {a: c * factor for a, c in counts.items()}
    assert cat.tv_to_uniform(scaled, SUPPORT) == pytest.approx(cat.tv_to_uniform(counts, SUPPORT))
    if cat.validity_rate(counts, SUPPORT) > 0:
        assert cat.entropy_bits(scaled, SUPPORT) == pytest.approx(cat.entropy_bits(counts, SUPPORT))


def test_noise_floor_matches_the_measured_uniform_fact():
    # The brief's measurement: a uniform sampler over 100 values shows TV ≈ 0.27 at n=200.
    assert expected_tv_uniform(100, 200) == pytest.approx(0.27, abs=0.005)
    assert expected_tv_uniform(100, 100_000) < 0.02
    assert expected_tv_uniform(1000, 10) == pytest.approx(1 - 10 / 1000, abs=1e-4)  # n ≪ k: almost no collisions


@pytest.mark.parametrize("k,n", [(10, 50), (100, 200), (1000, 300)])
def test_a_uniform_sampler_shows_the_floor_on_average(k, n):
    rng = np.random.default_rng(k + n)
    support = frozenset(str(i) for i in range(k))
    tvs = [cat.tv_to_uniform(Counter(str(x) for x in rng.integers(0, k, n)), support) for _ in range(400)]
    floor = expected_tv_uniform(k, n)
    assert abs(np.mean(tvs) - floor) < 4 * np.std(tvs) / math.sqrt(len(tvs)) + 1e-3


def test_bootstrap_ci_contains_the_point_value_and_narrows_with_n():
    small = {"a": 6, "b": 2, "c": 1, "junk": 1}
    big = {a: c * 50 for a, c in small.items()}
    k = len(SUPPORT)
    est_small = bootstrap_ci(small, SUPPORT, lambda w, v: cat.tv_rows(w, v, k), seed=1)
    est_big = bootstrap_ci(big, SUPPORT, lambda w, v: cat.tv_rows(w, v, k), seed=1)
    for est in (est_small, est_big):
        assert est["low"] <= est["value"] <= est["high"]
    assert est_big["high"] - est_big["low"] < (est_small["high"] - est_small["low"]) / 3


def test_bootstrap_ci_covers_the_true_tv_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    probs = np.array([0.4, 0.3, 0.2, 0.05, 0.05])
    labels = ["a", "b", "c", "d", "junk"]
    true_tv = cat.tv_to_uniform(dict(zip(labels, probs)), SUPPORT)
    hits = 0
    for trial in range(200):
        draws = Counter(rng.choice(labels, size=300, p=probs))
        est = bootstrap_ci(draws, SUPPORT, lambda w, v: cat.tv_rows(w, v, 4), resamples=400, seed=trial)
        hits += est["low"] <= true_tv <= est["high"]
    assert 0.88 <= hits / 200 <= 0.99


def test_chi2_pvalue_is_uniform_ish_under_the_null_and_small_under_collapse():
    rng = np.random.default_rng(3)
    support = frozenset(str(i) for i in range(100))
    collapsed = Counter({"42": 150, "47": 50})
    assert chi2_uniformity_pvalue(collapsed, support) < 0.001
    null_p = [chi2_uniformity_pvalue(Counter(str(x) for x in rng.integers(0, 100, 200)), support, seed=s) for s in range(40)]
    assert 0.2 < np.mean(null_p) < 0.8  # Monte Carlo branch (expected count 2 < 5)
    big_null = Counter(str(x) for x in rng.integers(0, 10, 500))
    assert chi2_uniformity_pvalue(big_null, frozenset(str(i) for i in range(10))) > 0.001  # χ² branch


def test_sampled_metrics_report_floor_ci_and_top_picks():
    counts = Counter({"42": 30, "47": 10, "7": 5, "<no answer>": 155})
    support = frozenset(str(i) for i in range(1, 101))
    m = sampled_metrics(counts, support, resamples=200)
    assert m["n"] == 200 and m["n_valid"] == 45
    assert m["validity"]["value"] == pytest.approx(45 / 200)
    assert m["floor_tv_all"] == pytest.approx(expected_tv_uniform(100, 200))
    assert m["floor_tv_valid"] == pytest.approx(expected_tv_uniform(100, 45))
    assert m["tv_valid"]["value"] > m["floor_tv_valid"]  # genuinely collapsed, not noise
    assert m["top_valid"][0] == ["42", pytest.approx(30 / 45)]


def test_exact_metrics_treat_unscored_mass_as_off_support():
    support = frozenset("abcd")
    m = exact_metrics({"a": 0.1, "b": 0.1, "c": 0.1, "d": 0.1}, support, ["{answer}"])
    assert m["valid_mass"] == pytest.approx(0.4)
    assert m["tv_valid"] == pytest.approx(0.0)
    assert m["tv_all"] == pytest.approx(0.6)
