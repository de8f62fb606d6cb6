"""From records of free-text tasks to text-diversity figures, each on all outputs and on passing ones.

Every metric is computed per prompt over that prompt's outputs and averaged over prompts, so prompts
with different topics never count as "diverse" against each other. Each figure is reported on all
outputs and on the outputs that pass the task's quality check, beside the pass rate, with a 95% CI
from m-out-of-n subsampling of outputs within each prompt (plain resampling with replacement would
plant exact duplicates and bias every diversity metric low; see `bootstrap_text_metric`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from respread.types import Estimate
from respread.metrics import classes, lexical, semantic
from respread.metrics.bootstrap_text import bootstrap_text_metric
from respread.tasks import TaskSpec

MIN_GROUP = 4  # m-out-of-n subsampling needs 2 <= n/2 < n


@dataclass(frozen=True)
class TextMetric:
    name: str
    fn: Callable[[Sequence], float]
    uses_embeddings: bool
    more_diverse: str  # "higher" or "lower"
    bounds: tuple[float, float] = (-np.inf, np.inf)  # the metric's range; CIs are clipped to it


def _distinct(n: int) -> Callable[[Sequence[str]], float]:
    return lambda texts: lexical.distinct_n(texts, n)


def _classes(texts: Sequence[str]) -> float:
    """Share of outputs that open a new equivalence class (NoveltyBench distinct_k / k)."""
    return classes.distinct_k(classes.partition(list(texts), classes.unigram_overlap_judge())) / len(texts)


TEXT_METRICS: list[TextMetric] = [
    TextMetric("distinct_1", _distinct(1), False, "higher", (0, 1)),
    TextMetric("distinct_2", _distinct(2), False, "higher", (0, 1)),
    TextMetric("distinct_3", _distinct(3), False, "higher", (0, 1)),
    TextMetric("distinct_4", _distinct(4), False, "higher", (0, 1)),
    TextMetric("ead", lexical.expectation_adjusted_distinct, False, "higher", (0, np.inf)),
    TextMetric("ngram_diversity", lexical.ngram_diversity_score, False, "higher", (0, 4)),
    TextMetric("self_bleu", lexical.self_bleu, False, "lower", (0, 100)),
    TextMetric("compression_ratio", lexical.compression_ratio, False, "lower", (0, np.inf)),
    TextMetric("self_repetition", lexical.self_repetition, False, "lower", (0, np.inf)),
    TextMetric("homogenization_rouge_l", lexical.homogenization_rouge_l, False, "lower", (0, 1)),
    TextMetric("distinct_classes", _classes, False, "higher", (0, 1)),
    TextMetric("cosine_distance", lambda rows: semantic.mean_pairwise_cosine_distance(np.stack(rows)), True, "higher", (0, 2)),
    TextMetric("vendi", lambda rows: semantic.vendi_score(np.stack(rows)), True, "higher", (1, np.inf)),
    TextMetric("chamfer", lambda rows: semantic.chamfer_distance(np.stack(rows)), True, "higher", (0, 2)),
]


def nli_label_matrix(texts: Sequence[str], nli_model) -> np.ndarray:
    """+1 contradiction, −1 entailment, 0 neutral for every ordered pair (premise i, hypothesis j), i ≠ j.

    Scored once per prompt; every resample then reads the matrix instead of calling the model again.
    """
    n = len(texts)
    first, second = np.nonzero(~np.eye(n, dtype=bool))
    labels = nli_model([texts[i] for i in first], [texts[j] for j in second])
    matrix = np.zeros((n, n))
    matrix[first, second] = [{"contradiction": 1.0, "entailment": -1.0}.get(str(label).lower(), 0.0) for label in labels]
    return matrix


def _nli_metric(matrices: list[np.ndarray]) -> Callable[[Sequence[tuple[int, int]]], float]:
    """NLI diversity (contradiction − entailment rate) of the outputs named by (prompt, index) items."""

    def metric(items: Sequence[tuple[int, int]]) -> float:
        group, indices = items[0][0], np.array([i for _, i in items])
        m = len(indices)
        sub = matrices[group][np.ix_(indices, indices)]
        # Duplicated indices (never under subsampling) would pair an output with itself: excluded.
        off_diagonal = indices[:, None] != indices[None, :]
        return float(sub[off_diagonal].sum() / max(1, off_diagonal.sum())) if m > 1 else float("nan")

    return metric


def passes_quality(task: TaskSpec, record: dict) -> bool:
    """The task's quality check on one reply (see `TaskSpec.quality`)."""
    if not record["text"].strip():
        return False
    return bool(record.get("finished", True)) if task.quality == "finished" else True


def _estimate(metric: TextMetric, groups: list[list], resamples: int, seed: int) -> dict:
    groups = [g for g in groups if len(g) >= MIN_GROUP]
    if not groups:
        return Estimate(None, None, None, "subsampling", 0, (("prompts", 0),)).as_dict()
    ci = bootstrap_text_metric(metric.fn, groups, n_resamples=resamples, seed=seed, method="subsample")
    # The rescaled subsampling interval can spill past a metric's range near its edge (e.g. below 0).
    low, high = (float(np.clip(v, *metric.bounds)) for v in (ci.low, ci.high))
    return Estimate(ci.estimate, low, high, "subsampling", sum(len(g) for g in groups), (("prompts", len(groups)),)).as_dict()


def text_task_metrics(
    task: TaskSpec,
    records: list[dict],
    *,
    resamples: int = 200,
    seed: int = 0,
    embed_model=None,
    embed: bool = True,
    nli_model=None,
) -> dict:
    """All text metrics for one task's records, on all and on passing outputs, with CIs."""
    by_prompt: dict[int, list[dict]] = {}
    for record in sorted(records, key=lambda r: (r["prompt_index"], r["sample"])):
        by_prompt.setdefault(record["prompt_index"], []).append(record)
    prompt_ids = sorted(by_prompt)
    texts = [[r["text"] for r in by_prompt[p]] for p in prompt_ids]
    passing = [[passes_quality(task, r) for r in by_prompt[p]] for p in prompt_ids]
    n = sum(len(t) for t in texts)
    n_pass = sum(sum(p) for p in passing)
    pass_ci = bootstrap_text_metric(lambda flags: float(np.mean(flags)), passing, n_resamples=resamples, seed=seed)
    embeddings = None
    if embed:
        flat = semantic.embed_texts([t for group in texts for t in group], model=embed_model)
        bounds = np.cumsum([0] + [len(g) for g in texts])
        embeddings = [list(flat[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    result = {
        "task": task.name,
        "text": True,
        "prompts": len(prompt_ids),
        "n": n,
        "n_passing": n_pass,
        "quality": task.quality,
        "pass_rate": {"value": n_pass / n if n else None, "low": pass_ci.low, "high": pass_ci.high},
        "min_outputs_per_prompt": MIN_GROUP,
        "metrics": {},
    }
    for metric in TEXT_METRICS:
        if metric.uses_embeddings and embeddings is None:
            continue
        items = embeddings if metric.uses_embeddings else texts
        kept = [[x for x, ok in zip(group, flags) if ok] for group, flags in zip(items, passing)]
        result["metrics"][metric.name] = {
            "more_diverse": metric.more_diverse,
            "all": _estimate(metric, items, resamples, seed),
            "passing": _estimate(metric, kept, resamples, seed),
        }
    if nli_model is not None:
        matrices = [nli_label_matrix(group, nli_model) for group in texts]
        metric = TextMetric("nli_diversity", _nli_metric(matrices), False, "higher", (-1, 1))
        items = [[(g, i) for i in range(len(group))] for g, group in enumerate(texts)]
        kept = [[x for x, ok in zip(group, flags) if ok] for group, flags in zip(items, passing)]
        result["metrics"]["nli_diversity"] = {
            "more_diverse": "higher",
            "all": _estimate(metric, items, resamples, seed),
            "passing": _estimate(metric, kept, resamples, seed),
        }
    return result
