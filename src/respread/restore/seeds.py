"""Across training seeds: did an arm change a task's spread, and by how much, with an interval?

Each seed trains the arm afresh and is measured on the same prompts as the untrained model, so the change
Δ_s = TV_valid(after, seed s) − TV_valid(before) is paired. Over n seeds the table gives the mean change with a
95% Student-t interval, mean ± t_{0.975, n−1} · sd/√n (sd the sample standard deviation over seeds): an
interval for the arm's mean effect over training seeds, on the measured prompts, assuming the seeds' changes
are roughly normal. With exact figures each Δ_s has no sampling error of its own, so the interval is the
spread between seeds alone; with sampled figures it also carries each run's sampling noise.

A task is called `transferred` (or `trained: flatter` for the trained task) only where the whole interval is
below 0, `worse` only where it is above 0, and `no clear change` otherwise; one seed gives no interval.
"""

from __future__ import annotations

import math
from typing import Sequence

from respread.types import Estimate


def mean_interval(values: Sequence[float], level: float = 0.95) -> dict:
    """Mean of `values` with its Student-t interval; low/high are None for fewer than 2 values.

    >>> r = mean_interval([-0.3, -0.2, -0.1])
    >>> round(r["value"], 3), round(r["low"], 3), round(r["high"], 3), r["n"], r["method"]
    (-0.2, -0.448, 0.048, 3, 't')
    """
    from scipy.special import stdtrit

    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n if n else float("nan")
    if n < 2:
        return Estimate(mean, None, None, "t", n).as_dict()
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stdtrit(n - 1, 0.5 + level / 2)) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, "t", n).as_dict()


def verdict(interval: dict, trained: bool) -> str:
    """`transferred`/`worse`/`no clear change` (the trained task: `flatter`/`worse`/...) from a change's interval.

    >>> verdict({"low": -0.2, "high": -0.01}, trained=False)
    'transferred'
    >>> verdict({"low": -0.2, "high": 0.01}, trained=False)
    'no clear change'
    >>> verdict({"low": None, "high": None}, trained=True)
    'one seed: no interval'
    """
    if interval.get("low") is None:
        return "one seed: no interval"
    if interval["high"] < 0:
        return "flatter" if trained else "transferred"
    if interval["low"] > 0:
        return "worse"
    return "no clear change"


def seed_changes(table: list[dict], arm_conditions: dict[str, list[str]], before: str, figure: str = "tv_valid") -> list[dict]:
    """One row per task and arm: each seed's change of `figure` from `before`, their mean, interval and verdict.

    `table` is the study's table (rows with `task`, `trained` and `conditions` → figures); `arm_conditions`
    maps each arm to its conditions, one per seed. Seeds where a figure is missing (no valid answer) are left
    out and counted in `missing`.
    """
    rows = []
    for row in table:
        start = (row["conditions"].get(before) or {}).get(figure)
        for arm, conditions in arm_conditions.items():
            values = [(row["conditions"].get(c) or {}).get(figure) for c in conditions]
            changes = [v - start for v in values if v is not None and start is not None]
            interval = mean_interval(changes) if changes else Estimate(None, None, None, "t", 0).as_dict()
            rows.append({
                "task": row["task"], "trained": row["trained"], "arm": arm, "figure": figure, "before": start,
                "changes": changes, "missing": len(values) - len(changes), "change": interval,
                "verdict": verdict(interval, row["trained"]) if changes else "not measured",
            })
    return rows
