"""A collapse regression gate: did diversity drop from an old run to a new one, beyond a threshold?

Every figure is oriented so that a positive drop means the new run is less diverse, in units where one
threshold reads about the same everywhere (shares and TVs in [0, 1]; EAD near 1 for diverse text):

    categorical  tv_all      TV to uniform over all replies (invalid ones count as off-support)   drop = new − old
                 tv_valid    TV to uniform among valid answers                                   drop = new − old
                 entropy     H / log₂ k among valid answers                                      drop = old − new
    verifiable   distinct    distinct final answers per prompt / replies to it, mean over prompts  drop = old − new
    text         ead         expectation-adjusted distinct n-grams (n = 1..5) per prompt, mean     drop = old − new
                 distinct_2  distinct bigrams / bigrams per prompt, mean over prompts            drop = old − new

Values: exact where both runs scored the task's exact distribution (no sampling error, no test: the drop
is the drop); otherwise categorical figures use the calibrated estimate (`metrics.posterior`), text and
verifiable ones the figure as computed. Significance: a one-sided permutation test of "both runs'
replies come from one distribution" against the drop's direction, permuting replies between the runs
(within each prompt, for per-prompt figures). It needs no distributional assumption and keeps each run's
n, so the plug-in statistic's n-dependent bias is the same under every permutation. For categorical
tasks Pearson's χ² test of homogeneity of the answer tables is reported beside it (any change at all).

A figure fails when drop > max_drop AND its Holm-adjusted p-value < alpha (Holm over every tested figure
of the check, so the chance that two runs of one distribution fail anywhere stays ≤ alpha). An exact
figure fails on drop > max_drop alone.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from respread.measure.figures import exact_metrics, jsonable, own_run, parsed_answers, pooled_exact
from respread.errors import RespreadError
from respread.records import write_artifact
from respread.measure.run import read_run_file
from respread.metrics import categorical as cat
from respread.metrics import lexical
from respread.metrics.posterior import posterior_figures
from respread.tasks import AnswerParser, TaskSpec

FIGURES = ("tv_all", "tv_valid", "entropy", "distinct", "ead", "distinct_2")
DEFAULT_MAX_DROP = 0.05


@dataclass
class GateConfig:
    parse: str = "strict"
    max_drop: dict[str, float] = field(default_factory=dict)  # per figure; missing: DEFAULT_MAX_DROP
    alpha: float = 0.05
    permutations: int = 2000
    seed: int = 0
    tasks: list[str] | None = None

    def __post_init__(self) -> None:
        if self.parse not in ("strict", "lenient"):
            raise RespreadError(f"--parse must be strict or lenient (got {self.parse!r})")
        unknown = [name for name in self.max_drop if name not in FIGURES]
        if unknown:
            raise RespreadError(f"--max-drop names unknown figure '{unknown[0]}'; figures: {', '.join(FIGURES)}")
        if any(not 0 <= v <= 1 for v in self.max_drop.values()):
            raise RespreadError("--max-drop values are in figure units, between 0 and 1")
        if not 0 < self.alpha < 1:
            raise RespreadError(f"--alpha must be between 0 and 1 (got {self.alpha})")
        if self.permutations < 99:
            raise RespreadError(f"--permutations must be at least 99 (got {self.permutations})")

    def threshold(self, figure: str) -> float:
        return self.max_drop.get(figure, DEFAULT_MAX_DROP)


def parse_max_drop(items: Sequence[str]) -> dict[str, float]:
    """`0.05` (every figure) or `figure=value` items, e.g. `tv_valid=0.03 entropy=0.1`."""
    limits: dict[str, float] = {}
    for item in items:
        name, _, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise RespreadError(f"--max-drop '{item}' is not a number or figure=number (e.g. tv_valid=0.05)") from None
        for figure in [name] if name else FIGURES:
            limits[figure] = number
    return limits


# ---------------------------------------------------------------- one-sided permutation tests
def permutation_pvalue_counts(
    old: np.ndarray, new: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], *, categories: int, permutations: int, seed: int
) -> float:
    """One-sided p-value that statistic(new) − statistic(old) is as large as observed under exchangeability.

    `old`, `new`: answer indices (0..categories−1), one per reply; `statistic(counts[R, categories]) -> values[R]`.
    p = (1 + #{perm: Δ* ≥ Δ}) / (permutations + 1).
    """
    pooled = np.r_[old, new]
    m = categories

    def counts_of(labels: np.ndarray) -> np.ndarray:
        rows = np.repeat(np.arange(len(labels)), labels.shape[1])
        return np.bincount(rows * m + labels.ravel(), minlength=len(labels) * m).reshape(len(labels), m).astype(float)

    observed = statistic(counts_of(new[None, :]))[0] - statistic(counts_of(old[None, :]))[0]
    if np.isnan(observed):
        return float("nan")
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, permutations, 200):  # blocks: permutations × replies indices stay small
        order = np.argsort(rng.random((min(200, permutations - start), len(pooled))), axis=1)
        shuffled = pooled[order]
        deltas = statistic(counts_of(shuffled[:, len(old):])) - statistic(counts_of(shuffled[:, : len(old)]))
        # a permutation whose figure is undefined (no valid answer in one half) counts against the drop
        exceed += int(np.sum(np.nan_to_num(deltas, nan=np.inf) >= observed - 1e-12))
    return float((1 + exceed) / (permutations + 1))


def permutation_pvalue_groups(
    old: list[list], new: list[list], per_group: Callable[[list], float], *, permutations: int, seed: int
) -> float:
    """One-sided p-value that mean_g f(old_g) − mean_g f(new_g) is as large as observed, permuting within groups.

    Groups are prompts: each permutation reshuffles the replies to one prompt between the two runs.
    """
    def statistic(pairs: list[tuple[list, list]]) -> float:
        return float(np.mean([per_group(o) - per_group(n) for o, n in pairs]))

    observed = statistic(list(zip(old, new)))
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(permutations):
        pairs = []
        for o, n in zip(old, new):
            pooled = o + n
            order = rng.permutation(len(pooled))
            pairs.append(([pooled[i] for i in order[: len(o)]], [pooled[i] for i in order[len(o):]]))
        exceed += statistic(pairs) >= observed - 1e-12
    return (1 + exceed) / (permutations + 1)


def holm(pvalues: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (NaN stays NaN).

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    indexed = sorted((p, i) for i, p in enumerate(pvalues) if p == p)
    adjusted = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = round(running, 12)
    return adjusted


# ---------------------------------------------------------------- figures per task type
def _categorical_rows(task: TaskSpec, old: list[dict], new: list[dict], config: GateConfig) -> list[dict]:
    from scipy.stats import chi2_contingency

    parser = AnswerParser(task)
    support = frozenset(parser.support)
    k = len(support)
    old_answers = parsed_answers(parser, [r["text"] for r in old], config.parse)
    new_answers = parsed_answers(parser, [r["text"] for r in new], config.parse)
    labels = sorted(set(old_answers) | set(new_answers))
    index = {a: i for i, a in enumerate(labels)}
    valid = np.array([a in support for a in labels])
    old_idx = np.array([index[a] for a in old_answers])
    new_idx = np.array([index[a] for a in new_answers])
    estimates = {
        run: posterior_figures(Counter(answers), support, seed=config.seed)
        for run, answers in (("old", old_answers), ("new", new_answers))
    }
    table = np.array([np.bincount(old_idx, minlength=len(labels)), np.bincount(new_idx, minlength=len(labels))])
    table = table[:, table.sum(axis=0) > 0]
    chi2_p = float(chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
    log_k = np.log2(k) if k > 1 else 1.0
    kernels = {
        "tv_all": (lambda c: cat.tv_rows(c, valid, k), 1),
        "tv_valid": (lambda c: cat.tv_valid_rows(c, valid, k), 1),
        "entropy": (lambda c: cat.entropy_rows(c, valid) / log_k, -1),
    }
    rows = []
    for figure, (kernel, sign) in kernels.items():
        source = "tv_all" if figure == "tv_all" else "tv_valid" if figure == "tv_valid" else "entropy_bits"
        scale = 1 / log_k if figure == "entropy" else 1
        old_est, new_est = (_scaled(estimates[run][source], scale) for run in ("old", "new"))
        def oriented(c, kernel=kernel, sign=sign):
            return sign * kernel(c)

        p = permutation_pvalue_counts(old_idx, new_idx, oriented, categories=len(labels), permutations=config.permutations, seed=config.seed)
        rows.append(_row(task.name, figure, old_est, new_est, sign, p, "permutation", f"sampled n={len(old)}/{len(new)}", chi2_p))
    return rows


def _scaled(estimate: dict, scale: float) -> dict:
    return {key: (v * scale if isinstance(v, float) else v) for key, v in estimate.items()}


def _exact_rows(name: str, old: dict, new: dict, k: int) -> list[dict]:
    log_k = np.log2(k) if k > 1 else 1.0
    rows = []
    for figure, key, sign, scale in (("tv_all", "tv_all", 1, 1), ("tv_valid", "tv_valid", 1, 1), ("entropy", "entropy_bits", -1, 1 / log_k)):
        o, n = old[key], new[key]
        old_est = {"value": o * scale if o is not None else None, "estimator": "exact"}
        new_est = {"value": n * scale if n is not None else None, "estimator": "exact"}
        rows.append(_row(name, figure, old_est, new_est, sign, None, "exact", "exact", None))
    return rows


def _grouped_rows(task: TaskSpec, old: list[dict], new: list[dict], config: GateConfig) -> list[dict]:
    """Per-prompt figures (text and verifiable tasks), over the prompts both runs answered."""
    def by_prompt(records: list[dict]) -> dict[int, list[dict]]:
        groups: dict[int, list[dict]] = defaultdict(list)
        for record in records:
            groups[record["prompt_index"]].append(record)
        return groups

    old_groups, new_groups = by_prompt(old), by_prompt(new)
    prompts = sorted(p for p in old_groups if len(old_groups[p]) > 1 and len(new_groups.get(p, [])) > 1)
    if task.answer_type == "verifiable":
        parser = AnswerParser(task)

        def distinct_share(records: list[dict]) -> float:
            answers = [parser.parse(r["text"], config.parse, r["prompt_index"]).answer for r in records]
            return len({a for a in answers if a is not None}) / len(records)

        figures = {"distinct": distinct_share}
    else:
        figures = {
            "ead": lambda records: lexical.expectation_adjusted_distinct([r["text"] for r in records]),
            "distinct_2": lambda records: lexical.distinct_n([r["text"] for r in records], 2),
        }
    rows = []
    permutations = min(config.permutations, 500)  # each permutation recomputes text figures per prompt
    for figure, per_group in figures.items():
        old_lists = [old_groups[p] for p in prompts]
        new_lists = [new_groups[p] for p in prompts]
        old_value = float(np.mean([per_group(g) for g in old_lists])) if prompts else float("nan")
        new_value = float(np.mean([per_group(g) for g in new_lists])) if prompts else float("nan")
        p = (
            permutation_pvalue_groups(old_lists, new_lists, per_group, permutations=permutations, seed=config.seed)
            if prompts
            else float("nan")
        )
        rows.append(_row(task.name, figure, {"value": old_value}, {"value": new_value}, -1, p, "permutation within prompts",
                         f"sampled {len(prompts)} prompts", None))
    return rows


def _row(task: str, figure: str, old: dict, new: dict, sign: int, p: float | None, test: str, source: str, chi2_p: float | None) -> dict:
    o, n = old.get("value"), new.get("value")
    drop = None if o is None or n is None or o != o or n != n else sign * (n - o)
    return {"task": task, "figure": figure, "old": old, "new": new, "drop": drop, "p": p, "test": test, "source": source, "chi2_p": chi2_p}


# ---------------------------------------------------------------- the gate
def _exact_figures(records: list[dict], task: TaskSpec) -> dict | None:
    by_prompt = {r["prompt_index"]: r for r in records}  # one per prompt: the digest names its settings
    if set(by_prompt) != set(range(len(task.prompts))):
        return None
    return exact_metrics(pooled_exact(list(by_prompt.values())), frozenset(AnswerParser(task).support), records[0]["forms"])


def settings_differences(old_dir: Path, new_dir: Path) -> list[str]:
    """Run settings (besides model and seed) that differ between the two runs, as `name: old → new`."""
    old, new = read_run_file(old_dir).get("identity", {}), read_run_file(new_dir).get("identity", {})
    flat = lambda d: {**{k: v for k, v in d.items() if k != "sampling"}, **d.get("sampling", {})}  # noqa: E731
    old, new = flat(old), flat(new)
    return [f"{k}: {old.get(k)} → {new.get(k)}" for k in sorted(set(old) | set(new)) if k not in ("model", "seed") and old.get(k) != new.get(k)]


def check_runs(new_dir: Path, old_dir: Path, config: GateConfig, log: Callable[[str], None] = print) -> dict:
    """Compare every task both runs hold; return the verdict (see the module doc for the rule)."""
    old_tasks, old_records, old_exact_records = own_run(old_dir)
    new_tasks, new_records, new_exact_records = own_run(new_dir)
    shared = [name for name in old_tasks if name in new_tasks]
    if config.tasks:
        missing = [t for t in config.tasks if t not in shared]
        if missing:
            raise RespreadError(f"task '{missing[0]}' is not in both runs; shared tasks: {', '.join(shared) or 'none'}")
        shared = list(config.tasks)
    rows: list[dict] = []
    skipped: list[str] = []
    for name in shared:
        old_task, new_task = old_tasks[name], new_tasks[name]
        if old_task.model_dump() != new_task.model_dump():
            skipped.append(f"{name}: the task's spec differs between the runs")
            continue
        log(f"[check] {name}")
        if old_task.is_categorical:
            old_exact = _exact_figures(old_exact_records.get(name, []), old_task)
            new_exact = _exact_figures(new_exact_records.get(name, []), new_task)
            if old_exact and new_exact:
                rows += _exact_rows(name, old_exact, new_exact, len(AnswerParser(old_task).support))
                continue
        old_list, new_list = old_records.get(name, []), new_records.get(name, [])
        if not old_list or not new_list:
            skipped.append(f"{name}: no samples in {'the old run' if not old_list else 'the new run'} and no exact distribution in both")
            continue
        if old_task.is_categorical:
            rows += _categorical_rows(old_task, old_list, new_list, config)
        else:
            rows += _grouped_rows(old_task, old_list, new_list, config)
    if not rows:
        raise RespreadError(f"{old_dir} and {new_dir} share no task both can be compared on" + (f" ({'; '.join(skipped)})" if skipped else ""))
    tested = [i for i, r in enumerate(rows) if r["p"] is not None]
    for i, adjusted in zip(tested, holm([rows[i]["p"] for i in tested])):
        rows[i]["p_holm"] = adjusted
    for row in rows:
        limit = config.threshold(row["figure"])
        significant = row["test"] == "exact" or (row.get("p_holm") is not None and row["p_holm"] == row["p_holm"] and row["p_holm"] < config.alpha)
        row["max_drop"] = limit
        row["failed"] = bool(row["drop"] is not None and row["drop"] > limit and significant)
    failures = [f"{r['task']}.{r['figure']}" for r in rows if r["failed"]]
    return {
        "passed": not failures,
        "failures": failures,
        "old": str(old_dir),
        "new": str(new_dir),
        "parse": config.parse,
        "alpha": config.alpha,
        "permutations": config.permutations,
        "settings_differ": settings_differences(old_dir, new_dir),
        "skipped": skipped,
        "figures": rows,
    }


def write_verdict(verdict: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_artifact(path, "check", jsonable(verdict))
