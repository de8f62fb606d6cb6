"""`respread baselines`: every fix that needs no training, on the same tasks and statistics as `respread eval`.

Methods, each written as ordinary run folders (samples.jsonl, exact.jsonl, run.json, metrics.json) inside
the output directory, and skipped when already complete, so a run killed at any point resumes:

- `sweep/<setting>/`: temperature × {plain, top-p, min-p} cells. Closed tasks are scored exactly (the
  warping is applied per token and renormalised over the vocabulary at each step, as the sampler does),
  so only open tasks are sampled and a cell costs little;
- `logit-bias/`: a token-level bias fitted on one closed task (`logit_bias.json`, reusable), applied to every
  task at T=1;
- `verbalized/raw/` (the model's replies to "give k answers with probabilities") and `verbalized/` (one
  answer drawn per reply from the stated distribution, parsed like any reply);
- `seeded/`: one prompt per sample carrying "Random seed: dddd", at T=1.

`baselines.json`, `baselines.md` and `pareto.png` put every cell side by side: diversity beside validity,
the Pareto frontier, and the best fix without training per task.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from respread.backends.options import ModelOptions
from respread.errors import RespreadError
from respread.models import DEFAULT_MODEL

BASELINES_FILE = "baselines.json"
METHODS = ("sweep", "logit-bias", "verbalized", "seeded")
Log = Callable[[str], None]


@dataclass
class BaselinesConfig:
    model: str = DEFAULT_MODEL
    panel: str = "categorical"
    samples: int = 100  # per task (per prompt) for every sampled figure
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    temperatures: list[float] = field(default_factory=lambda: [0.7, 1.0, 1.5, 2.0])
    top_ps: list[float] = field(default_factory=lambda: [0.9])  # each at every temperature
    min_ps: list[float] = field(default_factory=lambda: [0.1])  # each at every temperature
    fit_task: str = "integer_1_100"
    logit_bias_file: str | None = None  # apply this saved bias instead of fitting one
    verbalized_k: int = 5
    verbalized_max_tokens: int = 192
    verbalized_samples: int | None = None  # replies per task; default `samples` (each reply is ~10x longer)
    seed: int = 0
    parse: str = "strict"
    resamples: int = 1000
    task_files: list[str] = field(default_factory=list)
    model_options: ModelOptions = field(default_factory=ModelOptions)

    def validate(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise RespreadError(f"unknown method '{unknown[0] if unknown else ''}'; choose from {', '.join(METHODS)}")
        if self.samples < 1:
            raise RespreadError(f"--samples must be at least 1 (got {self.samples})")
        if "sweep" in self.methods and not self.temperatures:
            raise RespreadError("the sweep needs at least one temperature")
        bad = [t for t in self.temperatures if not t > 0]
        if bad:
            raise RespreadError(f"sweep temperatures must be above 0 (got {bad[0]}); greedy decoding has no spread to measure")
        if any(not 0 < p <= 1 for p in self.top_ps) or any(not 0 <= p < 1 for p in self.min_ps):
            raise RespreadError("top-p values must be in (0, 1] and min-p values in [0, 1)")
        if self.verbalized_samples is not None and self.verbalized_samples < 1:
            raise RespreadError(f"--verbalized-samples must be at least 1 (got {self.verbalized_samples})")
        if self.verbalized_k < 2:
            raise RespreadError(f"--verbalized-k must be at least 2 (got {self.verbalized_k})")
        if self.parse not in ("strict", "lenient"):
            raise RespreadError(f"--parse must be strict or lenient (got {self.parse!r})")

    def sweep_cells(self) -> list[dict]:
        """(label, folder, sampling settings) of every sweep cell, plain cells first."""
        cells = []
        for t in self.temperatures:
            cells.append({"setting": f"T={t:g}", "folder": f"t{t:g}", "temperature": t})
            cells += [{"setting": f"T={t:g} top-p {p:g}", "folder": f"t{t:g}-top_p{p:g}", "temperature": t, "top_p": p} for p in self.top_ps if p < 1]
            cells += [{"setting": f"T={t:g} min-p {p:g}", "folder": f"t{t:g}-min_p{p:g}", "temperature": t, "min_p": p} for p in self.min_ps if p > 0]
        return cells


class _SharedBackend:
    """One model for every cell, loaded on first use (a finished run loads nothing)."""

    def __init__(self, model: str, log: Log, options: ModelOptions | None = None) -> None:
        self.model, self.log, self.backend, self.options = model, log, None, options

    def __call__(self):
        if self.backend is None:
            from respread.backends import load_backend

            self.log(f"[baselines] loading {self.model}")
            self.backend = load_backend(self.model, options=self.options)
        return self.backend


def run_baselines(config: BaselinesConfig, out_dir: Path, log: Log = print) -> dict:
    from respread.tasks import registry, select_tasks

    config.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = select_tasks(config.panel, config.task_files)
    if any(not t.is_categorical for t in tasks):
        raise RespreadError("`respread baselines` takes categorical tasks; sweep text and verifiable tasks with `respread eval --temperature`")
    if "logit-bias" in config.methods and not config.logit_bias_file:
        fit = registry(config.task_files).get(config.fit_task)
        if fit is None or not fit.is_closed:
            raise RespreadError(f"--fit-task '{config.fit_task}' must be a closed task (integers, or a choice task with closed: true)")
    backend = _SharedBackend(config.model, log, config.model_options)
    started = time.time()
    cells: list[dict] = []
    if "sweep" in config.methods:
        cells += _sweep(config, tasks, out_dir, backend, log)
    if "logit-bias" in config.methods:
        cells.append(_logit_bias(config, tasks, out_dir, backend, log))
    if "verbalized" in config.methods:
        cells.append(_verbalized(config, tasks, out_dir, backend, log))
    if "seeded" in config.methods:
        cells.append(_seeded(config, tasks, out_dir, backend, log))

    from respread.report.baselines import baselines_markdown, plot_pareto

    result = {
        "config": asdict(config),
        "model": config.model,
        "reference": "T=1" if any(c["setting"] == "T=1" for c in cells) else None,
        "cells": cells,
        "per_task": pareto_by_task(cells, [t.name for t in tasks]),
        "wall_seconds": round(time.time() - started, 1),
    }
    png = plot_pareto(result, out_dir / "pareto.png")
    result["pareto_plot"] = str(png) if png else None
    from respread.records import write_artifact

    write_artifact(out_dir / BASELINES_FILE, "baselines", result)
    (out_dir / "baselines.md").write_text(baselines_markdown(result), encoding="utf-8")
    return result


# ------------------------------------------------------------------------------------------- methods
def _timed_cell(folder: Path, work: Callable[[], dict]) -> tuple[dict, float]:
    """Run `work` unless the folder is complete; the seconds of the run that completed it are kept."""
    timing = folder / "timing.json"
    t0 = time.time()
    metrics = work()
    if timing.is_file():
        seconds = json.loads(timing.read_text(encoding="utf-8"))["seconds"]
    else:
        seconds = round(time.time() - t0, 1)
        folder.mkdir(parents=True, exist_ok=True)
        timing.write_text(json.dumps({"seconds": seconds}), encoding="utf-8")
    return metrics, seconds


def _cell(method: str, setting: str, folder: Path, metrics: dict, seconds: float, parse: str, **extra) -> dict:
    from respread.measure.figures import headline_figures

    return {
        "method": method,
        "setting": setting,
        "folder": str(folder),
        "seconds": seconds,
        "figures": {name: headline_figures(m, parse) for name, m in metrics["tasks"].items()},
        **extra,
    }


def _sweep(config: BaselinesConfig, tasks, out_dir: Path, backend, log: Log) -> list[dict]:
    from respread.workflows.eval import evaluate_into
    from respread.measure.run import EvalConfig

    cells = []
    for spec in config.sweep_cells():
        eval_config = EvalConfig(
            model=config.model, tasks=tasks, samples=config.samples, temperature=spec["temperature"],
            top_p=spec.get("top_p", 1.0), min_p=spec.get("min_p", 0.0), seed=config.seed, exact=True, sample_closed=False,
            model_options=config.model_options,
        )
        folder = out_dir / "sweep" / spec["folder"]
        log(f"[baselines] sweep {spec['setting']}")
        metrics, seconds = _timed_cell(folder, lambda: evaluate_into(eval_config, folder, config.parse, log, backend, "baselines"))
        cells.append(_cell("sweep", spec["setting"], folder, metrics, seconds, config.parse))
    return cells


def _logit_bias(config: BaselinesConfig, tasks, out_dir: Path, backend, log: Log) -> dict:
    from respread.workflows.eval import evaluate_into
    from respread.measure.run import EvalConfig
    from respread.restore.baselines.logit_bias import LogitBias, fit_logit_bias
    from respread.tasks import registry

    folder = out_dir / "logit-bias"
    bias_file = Path(config.logit_bias_file) if config.logit_bias_file else out_dir / "logit_bias.json"
    t0 = time.time()
    if bias_file.is_file():
        bias = LogitBias.load(bias_file)
        log(f"[baselines] logit bias: {bias_file} (fitted on {bias.task}), {len(bias.bias)} tokens")
    else:
        log(f"[baselines] logit bias: fitting on {config.fit_task}")
        bias = fit_logit_bias(backend(), registry(config.task_files)[config.fit_task], log=log)
        bias.save(bias_file)
    fit_seconds = round(time.time() - t0, 1)
    eval_config = EvalConfig(
        model=config.model, tasks=tasks, samples=config.samples, temperature=bias.temperature, seed=config.seed, model_options=config.model_options,
        exact=True, sample_closed=False, logit_bias=bias.as_pairs(),
    )
    metrics, seconds = _timed_cell(folder, lambda: evaluate_into(eval_config, folder, config.parse, log, backend, "baselines"))
    return _cell(
        "logit-bias", f"fitted on {bias.task}", folder, metrics, seconds, config.parse,
        fitted_task=bias.task, bias_file=str(bias_file), fit=bias.fit, fit_seconds=fit_seconds,
    )


def _seeded(config: BaselinesConfig, tasks, out_dir: Path, backend, log: Log) -> dict:
    from respread.workflows.eval import evaluate_into
    from respread.measure.run import EvalConfig
    from respread.restore.baselines.seeded import seeded_task

    folder = out_dir / "seeded"
    eval_config = EvalConfig(
        model=config.model, tasks=[seeded_task(t, config.samples, seed=config.seed) for t in tasks], samples=1,
        temperature=1.0, seed=config.seed, model_options=config.model_options,
    )
    log(f"[baselines] seeded prompts: {config.samples} per task, each with its own seed line")
    metrics, seconds = _timed_cell(folder, lambda: evaluate_into(eval_config, folder, config.parse, log, backend, "baselines"))
    return _cell("seeded", "T=1, 'Random seed: dddd' line", folder, metrics, seconds, config.parse)


def _verbalized(config: BaselinesConfig, tasks, out_dir: Path, backend, log: Log) -> dict:
    from respread.measure.figures import jsonable, task_metrics
    from respread.measure.run import SAMPLES_FILE, EvalConfig, run_eval, settings_digest
    from respread.records import iter_records, write_artifact
    from respread.restore.baselines.verbalized import parse_verbalized, pick_answer, summarise_statuses, verbalized_prompt

    folder = out_dir / "verbalized"
    raw_tasks = [
        t.model_copy(update={"prompts": [verbalized_prompt(p, config.verbalized_k) for p in t.prompts], "max_new_tokens": config.verbalized_max_tokens})
        for t in tasks
    ]
    n = config.verbalized_samples or config.samples
    raw_config = EvalConfig(model=config.model, tasks=raw_tasks, samples=n, temperature=1.0, seed=config.seed, model_options=config.model_options)
    log(f"[baselines] verbalized sampling: k={config.verbalized_k}, {n} replies per task")

    def work() -> dict:
        done = folder / "metrics.json"
        if done.is_file() and json.loads(done.read_text(encoding="utf-8")).get("samples_per_prompt") == n:
            return json.loads(done.read_text(encoding="utf-8"))

        def progress(task: str, done: int, wanted: int) -> None:
            if done == wanted:
                log(f"[baselines]   {task}: {wanted} replies")

        run_eval(raw_config, folder / "raw", backend, progress)
        wanted = {}
        for task in raw_tasks:
            params = raw_config.params_for(task)
            for i in range(len(task.prompts)):
                wanted[f"{task.name}|p{i}|{settings_digest(task, i, params, raw_config)}"] = task.name
        picks: dict[str, list[dict]] = {t.name: [] for t in tasks}
        replies: dict[str, list] = {t.name: [] for t in tasks}
        for record in iter_records(folder / "raw" / SAMPLES_FILE):
            digest = record["key"].rsplit("|", 1)[-1]
            if wanted.get(f"{record['task']}|p{record['prompt_index']}|{digest}") and record["sample"] < n:
                reply = parse_verbalized(record["text"])
                replies[record["task"]].append(reply)
                picks[record["task"]].append(
                    {
                        "key": record["key"], "task": record["task"], "sample": record["sample"], "seed": record["seed"],
                        "status": reply.status, "stated": [list(r) for r in reply.responses], "source": reply.source,
                        "text": pick_answer(reply, record["seed"]) or "",
                    }
                )
        per_task, statuses = {}, {}
        for task in tasks:
            rows = sorted(picks[task.name], key=lambda r: r["sample"])
            per_task[task.name] = task_metrics(task, [r["text"] for r in rows], [], resamples=config.resamples, seed=config.seed)
            statuses[task.name] = summarise_statuses(replies[task.name])
        with (folder / SAMPLES_FILE).open("w", encoding="utf-8") as f:
            for task in tasks:
                for row in sorted(picks[task.name], key=lambda r: r["sample"]):
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        metrics = jsonable({"model": config.model, "seed": config.seed, "method": "verbalized", "k": config.verbalized_k, "samples_per_prompt": n,
                            "tasks": per_task, "reply_status": statuses, "parse": config.parse})
        write_artifact(folder / "metrics.json", "eval", metrics)
        return metrics

    metrics, seconds = _timed_cell(folder, work)
    return _cell(
        "verbalized", f"k={config.verbalized_k}, T=1, n={n}", folder, metrics, seconds, config.parse, reply_status=metrics["reply_status"]
    )


# -------------------------------------------------------------------------------------------- pareto
def pareto_by_task(cells: list[dict], task_names: list[str]) -> dict:
    """Per task: the cells on the validity-vs-spread Pareto frontier and the best fix without training.

    A cell is on the frontier when no other cell has validity ≥ and TV among valid ≤ with one strict
    (cells with no valid answer have no TV among valid and are left out). The best fix is the cell with the
    lowest TV to uniform over all replies (invalid ones counted as off-support), the one figure that asks
    for both: only a model that answers validly *and* evenly gets near 0.
    """
    result = {}
    for name in task_names:
        points = [(i, c["figures"][name]) for i, c in enumerate(cells) if name in c["figures"]]
        scored = [(i, f) for i, f in points if f.get("tv_valid") is not None and f.get("valid") is not None]
        frontier = [
            i for i, f in scored
            if not any(
                g["valid"] >= f["valid"] and g["tv_valid"] <= f["tv_valid"] and (g["valid"] > f["valid"] or g["tv_valid"] < f["tv_valid"])
                for j, g in scored if j != i
            )
        ]
        ranked = sorted((i for i, f in points if f.get("tv_all") is not None), key=lambda i: (cells[i]["figures"][name]["tv_all"], -cells[i]["figures"][name]["valid"]))
        result[name] = {"frontier": frontier, "best": ranked[0] if ranked else None}
    return result
