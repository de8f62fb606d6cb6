"""From records to figures: parse each reply, count answers, compute every categorical metric with CIs.

Parsing happens here, not at sampling time, so one set of records yields both the strict and the
lenient view, and a parser fix never needs a re-run.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from respread.types import Estimate
from respread.errors import RespreadError
from respread.measure.run import EXACT_FILE, SAMPLES_FILE, EvalConfig, read_run_file, settings_digest
from respread.metrics import categorical as cat
from respread.metrics.posterior import posterior_figures
from respread.metrics.uncertainty import bootstrap_ci, chi2_uniformity_pvalue, clopper_pearson, expected_tv_uniform
from respread.metrics.verifiable import correctness_figures, distinct_answers, path_figures
from respread.records import iter_records
from respread.tasks import AnswerParser, TaskSpec
from respread.tasks.parsing import PARSE_MODES

NO_ANSWER = "<no answer>"
OTHER_REPLIES = "<other replies>"


def parsed_answers(parser: AnswerParser, texts: list[str], mode: str) -> list[str]:
    """The canonical answer of each reply; a reply with nothing answer-like gives NO_ANSWER."""
    return [answer if (answer := parser.parse(text, mode).answer) is not None else NO_ANSWER for text in texts]


def answer_counts(parser: AnswerParser, texts: list[str], mode: str) -> Counter:
    """Counter of canonical answers; replies with nothing answer-like count under NO_ANSWER."""
    return Counter(parsed_answers(parser, texts, mode))


def pooled_exact(records: list[dict]) -> dict[str, float]:
    """The exact answer distribution of a task with several prompts: the mean of its prompts' distributions."""
    pooled: dict[str, float] = defaultdict(float)
    for record in records:
        for answer, p in record["probs"].items():
            pooled[answer] += p / len(records)
    return dict(pooled)


def sampled_metrics(
    counts: Counter, support: frozenset[str], *, resamples: int = 1000, seed: int = 0, calibrated: bool = True
) -> dict:
    """Every categorical figure for one task's sampled answers, with bootstrap CIs and noise floors.

    The plug-in TVs and entropy come with percentile-bootstrap intervals (the spread of the figure on a
    rerun at the same n); `calibrated` adds the bias-corrected estimates with intervals that hold the
    population value (`respread.metrics.posterior`; its coverage is in BENCHMARKS.md).
    """
    k = len(support)
    n = sum(counts.values())
    n_valid = sum(c for a, c in counts.items() if a in support)

    def ci(row_metric) -> dict:
        return bootstrap_ci(counts, support, row_metric, resamples=resamples, seed=seed)

    uniformity = chi2_uniformity_pvalue(counts, support, seed=seed)

    return {
        "n": n,
        "n_valid": n_valid,
        "support_size": k,
        "validity": _exact_binomial(n_valid, n),
        "tv_all": ci(lambda w, v: cat.tv_rows(w, v, k)),
        "tv_valid": ci(lambda w, v: cat.tv_valid_rows(w, v, k)),
        "floor_tv_all": expected_tv_uniform(k, n),
        "floor_tv_valid": expected_tv_uniform(k, n_valid),
        "entropy_bits": ci(cat.entropy_rows),
        "normalized_entropy": _nan_safe(cat.normalized_entropy(counts, support)) if n_valid else None,
        "effective_number": _nan_safe(cat.effective_number(counts, support)) if n_valid else None,
        "kl_to_uniform_bits": _nan_safe(cat.kl_to_uniform_bits(counts, support)) if n_valid else None,
        "distinct": ci(cat.distinct_rows),
        "coverage": cat.coverage(counts, support),
        "chi2_pvalue": _nan_safe(uniformity),
        "top": [[a, share] for a, share in cat.top_k(counts, 5)],
        "top_valid": [[a, share] for a, share in cat.top_k({a: c for a, c in counts.items() if a in support}, 5)]
        if n_valid
        else [],
        # A valid answer is a right one on constrained tasks: would k tries have found one? (prompts pooled)
        "pass_at_k": correctness_figures([[True] * n_valid + [False] * (n - n_valid)])["pass_at_k"] if n else {},
    } | ({"calibrated": posterior_figures(counts, support, seed=seed, uniformity_pvalue=uniformity)} if calibrated and n else {})


def _exact_binomial(successes: int, n: int) -> dict:
    """Rate with its Clopper–Pearson 95% interval: unlike a bootstrap, it stays honest at 0 or n successes."""
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), "clopper-pearson", 0).as_dict()
    low, high = clopper_pearson(successes, n)
    return Estimate(successes / n, low, high, "clopper-pearson", n).as_dict()


def exact_metrics(probs: dict[str, float], support: frozenset[str], forms: list[str]) -> dict:
    """Figures of the exact distribution: valid mass, TVs, entropy among valid answers; no sampling error."""
    mass = sum(probs.values())
    weights = dict(probs)
    weights[OTHER_REPLIES] = max(0.0, 1.0 - mass)  # replies not in the scored forms: off-support
    return {
        "forms": forms,
        "valid_mass": mass,
        "tv_all": cat.tv_to_uniform(weights, support),
        "tv_valid": cat.tv_to_uniform_valid(weights, support),
        "entropy_bits": cat.entropy_bits(weights, support),
        "effective_number": cat.effective_number(weights, support),
        "top_valid": [[a, share] for a, share in cat.top_k(probs, 5)],
    }


def verifiable_task_metrics(task: TaskSpec, records: list[dict], *, resamples: int, seed: int) -> dict:
    """Accuracy, pass@k, distinct final answers and distinct calculation paths among correct chains.

    Each under both parses: strict reads only an answer the reply states ("The answer is 18", "#### 18",
    or a bare number); lenient also takes the last number of the reply.
    """
    from respread.tasks.verifiable import calculation_path

    parser = AnswerParser(task)
    by_prompt: dict[int, list[dict]] = defaultdict(list)
    for record in records:
        by_prompt[record["prompt_index"]].append(record)
    prompts = sorted(by_prompt)
    result: dict = {"task": task.name, "verifiable": True, "prompts": len(prompts), "n": len(records), "parse": {}}
    result["samples_per_prompt"] = min((len(g) for g in by_prompt.values()), default=0)
    result["finished"] = float(np.mean([bool(r.get("finished")) for r in records])) if records else None
    for mode in PARSE_MODES:
        parsed = {p: [parser.parse(r["text"], mode, p) for r in by_prompt[p]] for p in prompts}
        correct_paths = [
            [calculation_path(r["text"], task.prompts[p]) for r, x in zip(by_prompt[p], parsed[p]) if x.valid]
            for p in prompts
        ]
        figures = correctness_figures([[x.valid for x in parsed[p]] for p in prompts], resamples=resamples, seed=seed)
        result["parse"][mode] = {
            **figures,
            "answered": float(np.mean([x.answer is not None for p in prompts for x in parsed[p]])) if records else None,
            "distinct_answers": distinct_answers([[x.answer for x in parsed[p]] for p in prompts], resamples=resamples, seed=seed),
            "paths": path_figures(correct_paths, resamples=resamples, seed=seed),
        }
    return result


def task_metrics(task: TaskSpec, texts: list[str], exact: list[dict], *, resamples: int, seed: int) -> dict:
    parser = AnswerParser(task)
    support = frozenset(parser.support)
    result: dict = {"task": task.name, "closed": task.is_closed, "prompts": len(task.prompts)}
    result["parse"] = {
        mode: sampled_metrics(answer_counts(parser, texts, mode), support, resamples=resamples, seed=seed)
        for mode in PARSE_MODES
    }
    result["empty_replies"] = sum(1 for t in texts if not t.strip())
    if exact:
        result["exact"] = exact_metrics(pooled_exact(exact), support, exact[0]["forms"])
    return result


def own_records(out_dir: Path, config: EvalConfig) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """Sample and exact records of `config` in `out_dir`, by task.

    Only records of this configuration count (same settings digest, sample index below --samples), so
    a directory that once held a longer run or an edited prompt reports exactly what was asked for.
    """
    wanted = {
        f"{task.name}|p{prompt_index}|{settings_digest(task, prompt_index, config.params_for(task), config)}"
        for task in config.tasks
        for prompt_index in range(len(task.prompts))
    }

    def own(record: dict) -> bool:
        return f"{record['task']}|p{record['prompt_index']}|{record['key'].rsplit('|', 1)[-1]}" in wanted

    records: dict[str, list[dict]] = defaultdict(list)
    for record in iter_records(out_dir / SAMPLES_FILE):
        if own(record) and record["sample"] < config.samples:
            records[record["task"]].append(record)
    exact: dict[str, list[dict]] = defaultdict(list)
    for record in iter_records(out_dir / EXACT_FILE):
        if own(record):
            exact[record["task"]].append(record)
    return records, exact


UNCAPPED = 2**62  # a --samples no run reaches: every sample index counts


def own_run(run_dir: Path) -> tuple[dict[str, TaskSpec], dict[str, list[dict]], dict[str, list[dict]]]:
    """A run's tasks, and the sample and exact records by task that its own settings (run.json) report.

    A folder keeps every record written to it; `respread eval` reports only those of its settings digest
    (`own_records`) and below the --samples of the last finished call that ran the task (`run.json`). The
    gate compares the same ones. Folders written before run.json kept each task's --samples fall back on the
    last call's (`metrics.json`), and their tasks of earlier calls keep all their records of that digest.
    """
    state = read_run_file(run_dir)
    if not state.get("tasks"):
        return {}, {}, {}
    config = config_like(run_dir, state.get("identity", {}).get("model", ""), samples=UNCAPPED)
    records, exact = own_records(run_dir, config)
    for name, cap in _finished_samples(run_dir, state).items():
        if name in records:
            records[name] = [r for r in records[name] if r["sample"] < cap]
    return {task.name: task for task in config.tasks}, records, exact


def _finished_samples(run_dir: Path, state: dict) -> dict[str, int]:
    """Each task's --samples in the last finished call that ran it: run.json's `samples_by_task`; a folder
    written before run.json kept them has only its last call's, in metrics.json (a malformed entry counts as absent)."""
    caps: dict[str, int] = {}
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        caps = {name: int(metrics["samples_per_prompt"]) for name in metrics.get("tasks", {})}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no finished call yet, or a file from elsewhere
    recorded = state.get("samples_by_task")
    if isinstance(recorded, dict):
        caps |= {name: cap for name, cap in recorded.items() if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0}
    return caps


def config_like(old_dir: Path, model: str, *, samples: int | None = None, model_options=None):
    """The `EvalConfig` that re-runs `old_dir`'s tasks and settings with another model (seed kept).

    `samples`: per prompt; by default the most --samples any of its tasks was last finished with
    (`_finished_samples`), else its highest sample index + 1.
    """
    state = read_run_file(old_dir)
    identity = state.get("identity", {})
    tasks = [TaskSpec.model_validate(spec) for spec in state.get("tasks", {}).values()]
    if not tasks:
        raise RespreadError(f"{old_dir} holds no tasks to re-run")
    finished = _finished_samples(old_dir, state)
    if samples is None and finished:  # one --samples for every task: the most any of them was run with
        samples = max(finished.values())
    elif samples is None:
        samples = 1 + max((r["sample"] for r in iter_records(old_dir / SAMPLES_FILE)), default=0)
    sampling = identity.get("sampling", {})
    return EvalConfig(
        model=model,
        tasks=tasks,  # as the old run stored them, chain-of-thought format already applied
        samples=samples,
        temperature=sampling.get("temperature", 1.0),
        top_p=sampling.get("top_p", 1.0),
        top_k=sampling.get("top_k", 0),
        min_p=sampling.get("min_p", 0.0),
        # as stored: an int bias written as 2 must stay 2, not 2.0, or the settings digest would differ
        logit_bias=tuple((int(token), bias) for token, bias in sampling.get("logit_bias", {}).items()),
        max_new_tokens=identity.get("max_new_tokens"),
        seed=identity.get("seed", 0),
        cot=identity.get("cot", "task"),  # re-applying a format to tasks already in it changes nothing
        **({"model_options": model_options} if model_options is not None else {}),
        exact=any(True for _ in iter_records(old_dir / EXACT_FILE)),
    )


def run_metrics(
    out_dir: Path,
    config: EvalConfig,
    *,
    resamples: int = 1000,
    text_resamples: int = 200,
    embed: bool = True,
    embed_model=None,
    nli_model=None,
) -> dict:
    """Metrics for each task of `config` from the records in `out_dir` (only its own: see `own_records`)."""
    records, exact = own_records(out_dir, config)
    per_task = {}
    for task in config.tasks:
        if not records.get(task.name) and not exact.get(task.name):
            continue
        if task.answer_type == "verifiable":
            per_task[task.name] = verifiable_task_metrics(task, records[task.name], resamples=resamples, seed=config.seed)
        elif task.answer_type == "text":
            from respread.measure.text import text_task_metrics  # scipy.linalg and the text metrics: only for text tasks

            per_task[task.name] = text_task_metrics(
                task,
                records[task.name],
                resamples=text_resamples,
                seed=config.seed,
                embed=embed,
                embed_model=embed_model,
                nli_model=nli_model,
            )
        else:
            texts = [r["text"] for r in records[task.name]]
            per_task[task.name] = task_metrics(task, texts, exact.get(task.name, []), resamples=resamples, seed=config.seed)
    return {
        "model": config.model,
        "seed": config.seed,
        "samples_per_prompt": config.samples,
        "sampling": config.params_for(None).as_dict() | {"max_new_tokens": config.max_new_tokens or "per task"},
        "resamples": resamples,
        "text_resamples": text_resamples,
        "tasks": per_task,
    }


def _nan_safe(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def jsonable(obj):
    """NaN -> None recursively, so metrics.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


HEADLINE = ("valid", "tv_all", "tv_valid", "entropy_bits")


def headline_figures(task_metrics: dict, parse: str) -> dict:
    """Valid mass, TV all, TV among valid and entropy of one task in one run: exact where it was scored so.

    Each figure's value sits under its name (what tables print); `estimates` holds each as an `Estimate`
    (exact: no interval; sampled: Clopper–Pearson for validity, percentile bootstrap for the others).
    """
    exact = task_metrics.get("exact")
    sampled = task_metrics["parse"][parse]
    if exact:
        values = {"valid": exact["valid_mass"], "tv_all": exact["tv_all"], "tv_valid": exact["tv_valid"], "entropy_bits": exact["entropy_bits"]}
        return {"source": "exact", **values, "top_valid": exact["top_valid"],
                "estimates": {k: Estimate.exact(v).as_dict() for k, v in values.items()}}
    estimates = {"valid": sampled["validity"], "tv_all": sampled["tv_all"], "tv_valid": sampled["tv_valid"], "entropy_bits": sampled["entropy_bits"]}
    return {
        "source": f"sampled n={sampled['n']} ({sampled['n_valid']} valid, {parse}; plug-in)",
        **{k: e["value"] for k, e in estimates.items()},
        "floor_tv_valid": sampled["floor_tv_valid"],
        "calibrated": sampled.get("calibrated"),  # the eb-profile estimate beside the plug-in, where computed
        "top_valid": sampled["top_valid"],
        "estimates": estimates,
    }


def interval(figures: dict, key: str) -> tuple[float | None, float | None]:
    """(low, high) of a headline figure: from its `Estimate`, or the `<key>_ci` pair files written before had."""
    estimate = (figures.get("estimates") or {}).get(key)
    if estimate is not None:
        return estimate.get("low"), estimate.get("high")
    pair = figures.get(f"{key}_ci") or [None, None]
    return pair[0], pair[1]
