"""Where in a lineage was diversity lost? The same tasks, seeds and settings across ordered stages.

A stage is a model (alias, path, hub id: evaluated here into `OUT/stages/NN-label`) or a run directory
`respread eval` already wrote (read as it is; its own settings stand, and the table says so). For every
task all stages share, `run_compare` collects each stage's figures with their CIs, decomposes the
diversity change between each pair of consecutive stages into quality control and residual
(`locate.decompose`), and marks the transition with the largest *significant* narrowing among right
answers: the largest residual drop whose 95% CI lies above zero, or, where both stages were scored
exactly, the largest drop in exact entropy among valid answers.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from respread.types import Estimate
from respread.backends.options import ModelOptions
from respread.errors import RespreadError

Log = Callable[[str], None]


@dataclass
class CompareConfig:
    stages: list[str]
    labels: list[str] | None = None
    tasks: str = "categorical,constrained"
    samples: int = 100
    temperature: float = 1.0
    top_p: float = 1.0
    min_p: float = 0.0
    seed: int = 0
    exact: bool = True
    cot: str = "task"
    parse: str = "strict"
    gsm8k: str | None = None
    gsm8k_subset: int = 20
    resamples: int = 200  # bootstrap resamples of each decomposition
    task_files: list[str] = field(default_factory=list)
    model_options: ModelOptions = field(default_factory=ModelOptions)  # how model stages are loaded and prompted

    def __post_init__(self) -> None:
        if len(self.stages) < 2:
            raise RespreadError("compare needs at least two stages (models or run directories), in lineage order")
        if self.labels is not None and len(self.labels) != len(self.stages):
            raise RespreadError(f"--label was given {len(self.labels)} times for {len(self.stages)} stages; give one per stage or none")
        if self.parse not in ("strict", "lenient"):
            raise RespreadError(f"--parse must be strict or lenient (got {self.parse!r})")
        if self.resamples < 1:
            raise RespreadError("--resamples must be at least 1")
        from respread.tasks.formats import check_cot_mode

        check_cot_mode(self.cot)

    def stage_labels(self) -> list[str]:
        if self.labels:
            labels = self.labels
        else:
            labels = [Path(s.rstrip("/")).name or s for s in self.stages]
        if len(set(labels)) != len(labels):
            raise RespreadError(f"two stages share the label {_first_repeat(labels)!r}; name them with --label")
        return labels


def _first_repeat(items: list[str]) -> str:
    seen = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return ""


def _is_run_dir(stage: str) -> bool:
    return (Path(stage) / "run.json").is_file()


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "stage"


def assemble(config: CompareConfig, labels: list[str], dirs: list[Path], metrics: list[dict], started: float, log: Log) -> dict:
    """The comparison of stages already evaluated (`dirs`, their `metrics`): figures per stage, the decomposition
    of each step, the largest significant narrowing per task (what `compare.json` holds, less its plot)."""
    from respread.locate.decompose import decompose_runs

    shared = [name for name in metrics[0]["tasks"] if all(name in m["tasks"] for m in metrics[1:])]
    dropped = sorted({name for m in metrics for name in m["tasks"]} - set(shared))
    if not shared:
        raise RespreadError("the stages share no task; compare needs the same tasks in every stage")
    stages = [
        {
            "label": label,
            "source": str(folder),
            "model": m.get("model"),
            "sampling": m.get("sampling"),
            "samples_per_prompt": m.get("samples_per_prompt"),
            "seed": m.get("seed"),
            "cot": _cot_of(folder),
            "figures": {name: stage_figures(m["tasks"][name], config.parse) for name in shared},
        }
        for label, folder, m in zip(labels, dirs, metrics)
    ]
    transitions = []
    for i in range(len(dirs) - 1):
        log(f"[compare] decomposing {labels[i]} → {labels[i + 1]}")
        try:
            result = decompose_runs(dirs[i], dirs[i + 1], tasks=None, parse=config.parse, resamples=config.resamples, seed=config.seed)
        except RespreadError as exc:  # e.g. exact-only runs hold no samples to decompose
            result = {"tasks": {}, "skipped": str(exc)}
        transitions.append({"from": labels[i], "to": labels[i + 1], "decomposition": result})
    result = {
        "stages": stages,
        "tasks": shared,
        "tasks_not_in_every_stage": dropped,
        "parse": config.parse,
        "transitions": transitions,
        "largest_drop": {name: largest_significant_drop(transitions, name, stages=stages) for name in shared},
        "settings_differ": _settings_differ(stages),
        "wall_seconds": time.time() - started,
    }
    from respread.measure.figures import jsonable

    return jsonable(result)


def _cot_of(folder: Path) -> str:
    try:
        return json.loads((folder / "run.json").read_text(encoding="utf-8"))["identity"].get("cot", "task")
    except (OSError, ValueError, KeyError):
        return "task"


def _settings_differ(stages: list[dict]) -> list[str]:
    """Which run settings are not the same in every stage: figures then differ by more than the model."""
    keys = ("sampling", "samples_per_prompt", "seed", "cot")
    return [k for k in keys if len({json.dumps(s[k], sort_keys=True) for s in stages}) > 1]


def largest_significant_drop(
    transitions: list[dict], task: str, part: str = "residual", stages: list[dict] | None = None
) -> dict | None:
    """The transition with the largest drop in `part` among those whose 95% CI lies above zero.

    `residual` (the default) is the narrowing among right answers, D(ref, correct) − D(tgt, correct): the
    collapse the mission is about. `total_drop` also counts the variety of wrong replies, which on a small
    model is mostly junk, so a model that stops producing junk "drops" without narrowing at all.
    Where both stages of a transition have the task's exact distribution (`stages`' figures), the narrowing
    is the exact drop in entropy among valid answers instead: no sampling error, so any drop counts.
    """
    by_label = {s["label"]: s["figures"].get(task, {}) for s in stages or []}
    best = None
    for t in transitions:
        ref, tgt = by_label.get(t["from"], {}), by_label.get(t["to"], {})
        if part == "residual" and str(ref.get("source", "")).startswith("exact") and str(tgt.get("source", "")).startswith("exact"):
            a, b = ref["entropy_bits"]["value"], tgt["entropy_bits"]["value"]
            if a is None or b is None:
                continue
            candidate = {"metric": "exact entropy", "drop": a - b, "ci": [a - b, a - b]}
        else:
            d = t["decomposition"]["tasks"].get(task)
            if not d or d[part]["value"] is None or d[part]["low"] is None:
                continue
            candidate = {"metric": d["metric"], "drop": d[part]["value"], "ci": [d[part]["low"], d[part]["high"]]}
        if candidate["ci"][0] > 0 and (best is None or candidate["drop"] > best["drop"]):
            best = {"from": t["from"], "to": t["to"], "part": part, **candidate}
    return best


def _est(value, low=None, high=None) -> dict:
    """An exact figure (no interval) or one with its bootstrap interval, serialised as every `Estimate` is."""
    return Estimate(value, low, high, "exact" if low is None and high is None else "bootstrap").as_dict()


def stage_figures(task: dict, parse: str) -> dict:
    """The figures one stage shows for one task, each {value, low, high} (no interval where exact)."""
    if task.get("verifiable"):
        m = task["parse"][parse]
        return {
            "kind": "verifiable",
            "source": f"sampled {task['prompts']} prompts × {task['samples_per_prompt']}",
            "correct": m["accuracy"],
            "pass_at_k": m["pass_at_k"],
            "distinct_answers": m["distinct_answers"],
            "distinct_paths": m["paths"]["distinct_paths"],
            "paths_per_correct": m["paths"]["distinct_paths_per_correct"],
        }
    if task.get("text"):
        ead = task["metrics"].get("ead", {})
        return {
            "kind": "text",
            "source": f"sampled {task['n']} outputs over {task['prompts']} prompts",
            "correct": task["pass_rate"],
            "ead": ead.get("all", _est(None)),
            "ead_passing": ead.get("passing", _est(None)),
        }
    sampled = task["parse"][parse]
    figures = {
        "kind": "categorical",
        "source": f"sampled n={sampled['n']}, plug-in",
        "n": sampled["n"],
        "correct": sampled["validity"],
        "tv_valid": sampled["tv_valid"],
        "entropy_bits": sampled["entropy_bits"],
        "floor_tv_valid": sampled["floor_tv_valid"],
        "pass_at_k": sampled.get("pass_at_k", {}),
        "top_valid": sampled["top_valid"],
    }
    exact = task.get("exact")
    # Exact mode scores bare answers, which is the strict reading: under lenient the sampled figures stand.
    if exact and parse == "strict":
        figures.update(
            source="exact" + (f" (sampled n={sampled['n']} for the decomposition)" if sampled["n"] else ""),
            correct=_est(exact["valid_mass"]),
            tv_valid=_est(exact["tv_valid"]),
            entropy_bits=_est(exact["entropy_bits"]),
            floor_tv_valid=0.0,
            top_valid=exact["top_valid"],
            # k independent draws from the exact distribution: at least one valid with probability 1 − (1 − m)^k
            pass_at_k={k: _est(1 - (1 - exact["valid_mass"]) ** int(k)) for k in sampled.get("pass_at_k", {}) or {"1": 0, "5": 0, "10": 0}},
        )
    return figures
