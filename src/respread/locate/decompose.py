"""Split a diversity loss between a reference and a target run into quality control and narrowing.

For a task whose outputs each pass or fail a correctness check (validity for categorical tasks, the
reference answer for verifiable ones, whose outputs are their calculation paths; the task's quality
check for free-text tasks), with D(run, S) the diversity metric of run's outputs in
subset S (per prompt, averaged over prompts):

    total drop          Δ   = D(ref, all) − D(tgt, all)
    quality control     QC  = [D(ref, all) − D(ref, correct)] − [D(tgt, all) − D(tgt, correct)]
    residual            R   = D(ref, correct) − D(tgt, correct)
                        Δ   = QC + R   (exactly)

D(run, all) − D(run, correct) is the diversity a run owes to its incorrect outputs; QC is how much of
that the target lost (diversity removed along with wrong answers), R the drop in diversity among
correct outputs (genuine narrowing). Shares are QC/Δ and R/Δ (undefined when Δ = 0). Only prompts
with at least one correct output in both runs count, so all four terms use the same prompts.

CIs: percentile bootstrap, resampling outputs within each prompt of each run independently and
recomputing all four terms per replicate. Resampling with replacement duplicates outputs and lowers
every D, but it does so in all four terms alike and the components are differences, so the bias
largely cancels; the point values use the data as given.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from respread.types import Estimate
from respread.measure.figures import own_run
from respread.errors import RespreadError
from respread.metrics import lexical
from respread.tasks import AnswerParser, TaskSpec
from respread.measure.text import passes_quality

GroupMetric = Callable[[Sequence[str]], float]


def answer_entropy_bits(items: Sequence[str]) -> float:
    """Plug-in Shannon entropy (bits) of the items as categories.

    >>> answer_entropy_bits(["a", "a", "b", "b"])
    1.0
    """
    counts = np.array(list(Counter(items).values()), dtype=float)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


METRICS: dict[str, GroupMetric] = {
    "entropy": answer_entropy_bits,
    "distinct_answers": lambda items: float(len(set(items))),
    "ead": lexical.expectation_adjusted_distinct,
    "distinct_2": lambda texts: lexical.distinct_n(texts, 2),
}


@dataclass(frozen=True)
class Output:
    prompt: int
    item: str  # the canonical answer (categorical) or the reply text (free text)
    correct: bool


def task_outputs(task: TaskSpec, records: list[dict], parse: str = "strict") -> list[Output]:
    """Outputs with their correctness: categorical replies parsed (invalid ones keep their own text);
    verifiable chains as their calculation paths, correct when the final answer matches the reference."""
    if task.answer_type == "text":
        return [Output(r["prompt_index"], r["text"], passes_quality(task, r)) for r in records]
    parser = AnswerParser(task)
    if task.answer_type == "verifiable":
        from respread.tasks.verifiable import calculation_path

        return [
            Output(
                r["prompt_index"],
                " → ".join(calculation_path(r["text"], task.prompts[r["prompt_index"]])) or "(no computed number)",
                parser.parse(r["text"], parse, r["prompt_index"]).valid,
            )
            for r in records
        ]
    outputs = []
    for r in records:
        parsed = parser.parse(r["text"], parse)
        # An invalid reply is its own category, named by its normalised text, so two different wrong
        # replies are never merged into one "invalid" answer.
        item = parsed.answer if parsed.valid else "✗ " + " ".join(r["text"].split()).casefold()
        outputs.append(Output(r["prompt_index"], item, parsed.valid))
    return outputs


def _terms(ref: dict[int, list[Output]], tgt: dict[int, list[Output]], metric: GroupMetric) -> np.ndarray:
    """[D(ref, all), D(ref, correct), D(tgt, all), D(tgt, correct)] over prompts usable in both."""
    prompts = [p for p in ref if p in tgt and any(o.correct for o in ref[p]) and any(o.correct for o in tgt[p])]
    if not prompts:
        return np.full(4, np.nan)
    values = []
    for run in (ref, tgt):
        values.append(np.mean([metric([o.item for o in run[p]]) for p in prompts]))
        values.append(np.mean([metric([o.item for o in run[p] if o.correct]) for p in prompts]))
    return np.array(values)


def _components(terms: np.ndarray) -> np.ndarray:
    ref_all, ref_ok, tgt_all, tgt_ok = terms[..., 0], terms[..., 1], terms[..., 2], terms[..., 3]
    total = ref_all - tgt_all
    quality_control = (ref_all - ref_ok) - (tgt_all - tgt_ok)
    residual = ref_ok - tgt_ok
    return np.stack([total, quality_control, residual], axis=-1)


def decompose_outputs(
    ref: list[Output], tgt: list[Output], metric: GroupMetric, *, resamples: int = 200, seed: int = 0
) -> dict:
    """Δ, QC and R with bootstrap CIs, plus the four D terms and the correct rates."""
    ref_groups = _by_prompt(ref)
    tgt_groups = _by_prompt(tgt)
    terms = _terms(ref_groups, tgt_groups, metric)
    point = _components(terms)
    rng = np.random.default_rng(seed)
    replicates = []
    if not np.isnan(point).any():
        for _ in range(resamples):
            replicates.append(_components(_terms(_resample(ref_groups, rng), _resample(tgt_groups, rng), metric)))
    replicates = np.array(replicates) if replicates else np.full((1, 3), np.nan)
    names = ["total_drop", "quality_control", "residual"]
    result = {
        "terms": dict(zip(["ref_all", "ref_correct", "tgt_all", "tgt_correct"], map(float, terms))),
        "ref_correct_rate": float(np.mean([o.correct for o in ref])) if ref else math.nan,
        "tgt_correct_rate": float(np.mean([o.correct for o in tgt])) if tgt else math.nan,
        "n_ref": len(ref),
        "n_tgt": len(tgt),
    }
    for i, name in enumerate(names):
        column = replicates[:, i]
        column = column[~np.isnan(column)]
        low, high = np.percentile(column, [2.5, 97.5]) if column.size else (math.nan, math.nan)
        result[name] = Estimate(float(point[i]), float(low), float(high), "bootstrap").as_dict()
    total = point[0]
    for name in ("quality_control", "residual"):
        result[name]["share"] = float(result[name]["value"] / total) if total and not math.isnan(total) else None
    return result


def _by_prompt(outputs: list[Output]) -> dict[int, list[Output]]:
    groups: dict[int, list[Output]] = {}
    for o in outputs:
        groups.setdefault(o.prompt, []).append(o)
    return groups


def _resample(groups: dict[int, list[Output]], rng: np.random.Generator) -> dict[int, list[Output]]:
    return {p: [g[i] for i in rng.integers(0, len(g), len(g))] for p, g in groups.items()}


def load_run(run_dir: Path) -> tuple[dict[str, TaskSpec], dict[str, list[dict]]]:
    """A run's tasks and its own sample records: a rerun with other prompts (another GSM8K subset) leaves the
    old records in the file, and their references would not match (`analysis.own_run` says which count)."""
    tasks, records, _ = own_run(run_dir)
    return tasks, {name: found for name, found in records.items() if found}


def decompose_runs(
    ref_dir: Path,
    tgt_dir: Path,
    *,
    tasks: list[str] | None = None,
    metric: str = "auto",
    parse: str = "strict",
    resamples: int = 200,
    seed: int = 0,
) -> dict:
    """Decompose the diversity drop from `ref_dir` to `tgt_dir` for every task both runs hold."""
    if metric != "auto" and metric not in METRICS:
        raise RespreadError(f"unknown metric '{metric}'; choose auto or one of {', '.join(METRICS)}")
    ref_tasks, ref_records = load_run(ref_dir)
    tgt_tasks, tgt_records = load_run(tgt_dir)
    shared = [name for name in ref_tasks if name in tgt_tasks and ref_records.get(name) and tgt_records.get(name)]
    if tasks:
        missing = [t for t in tasks if t not in shared]
        if missing:
            raise RespreadError(f"task '{missing[0]}' is not in both runs; shared tasks: {', '.join(shared) or 'none'}")
        shared = tasks
    if not shared:
        raise RespreadError(f"{ref_dir} and {tgt_dir} share no task with samples")
    out = {"reference": str(ref_dir), "target": str(tgt_dir), "parse": parse, "resamples": resamples, "tasks": {}}
    for name in shared:
        task = ref_tasks[name]
        chosen = metric if metric != "auto" else ("ead" if task.answer_type == "text" else "entropy")
        result = decompose_outputs(
            task_outputs(task, ref_records[name], parse),
            task_outputs(tgt_tasks[name], tgt_records[name], parse),
            METRICS[chosen],
            resamples=resamples,
            seed=seed,
        )
        out["tasks"][name] = {"metric": chosen, **result}
    return out
