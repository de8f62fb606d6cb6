"""Across-seed aggregation of a study's changes, on constructed tables with known values."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from respread.restore.seeds import mean_interval, seed_changes


def row(task, trained, before, afters):
    conditions = {"before": {"tv_valid": before}}
    conditions |= {f"after-a{'' if i == 0 else f'-seed{i}'}": {"tv_valid": v} for i, v in enumerate(afters)}
    return {"task": task, "trained": trained, "conditions": conditions}


ARMS = {"a": ["after-a", "after-a-seed1", "after-a-seed2"]}


def test_the_interval_is_students_t_over_seeds():
    values = [-0.31, -0.22, -0.40, -0.28]
    got = mean_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=stats.sem(values))
    assert got["value"] == pytest.approx(-0.3025) and got["low"] == pytest.approx(low) and got["high"] == pytest.approx(high)
    assert mean_interval([0.1])["low"] is None  # one seed has no spread to speak of


def test_verdicts_follow_the_interval_and_the_trained_task_is_marked():
    table = [
        row("trained_task", True, 0.60, [0.10, 0.12, 0.08]),
        row("moved", False, 0.50, [0.40, 0.41, 0.39]),  # −0.10 every seed: transferred
        row("mixed", False, 0.50, [0.30, 0.70, 0.50]),  # −0.2, +0.2, 0: no clear change
        row("worse", False, 0.30, [0.40, 0.42, 0.41]),
        row("never_valid", False, None, [None, 0.2, None]),
    ]
    out = {r["task"]: r for r in seed_changes(table, ARMS, "before")}
    assert out["trained_task"]["trained"] and out["trained_task"]["verdict"] == "flatter"
    assert out["trained_task"]["changes"] == pytest.approx([-0.50, -0.48, -0.52])
    assert out["trained_task"]["change"]["value"] == pytest.approx(-0.50)
    assert out["moved"]["verdict"] == "transferred" and out["moved"]["change"]["high"] < 0
    assert out["mixed"]["verdict"] == "no clear change" and out["mixed"]["change"]["low"] < 0 < out["mixed"]["change"]["high"]
    assert out["worse"]["verdict"] == "worse"
    assert out["never_valid"]["verdict"] == "not measured" and out["never_valid"]["missing"] == 3


def test_a_seed_without_a_figure_is_left_out_and_counted():
    table = [row("t", False, 0.5, [0.4, None, 0.3])]
    (out,) = seed_changes(table, ARMS, "before")
    assert out["changes"] == pytest.approx([-0.1, -0.2]) and out["missing"] == 1
    assert out["change"]["n"] == 2 and not math.isnan(out["change"]["low"])
