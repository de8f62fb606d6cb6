"""`run_study`: the study end to end (eval, train per arm and seed, eval again, capability), and its files:
`study.json`, `study.md`, `monitor.png`, `report.html`. Stages are described in `respread.restore.study`."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from respread.errors import RespreadError
from respread.records import capability_models, write_artifact
from respread.restore.seeds import seed_changes
from respread.restore.study import REPORT_FILE, STUDY_FILE, StudyConfig, arm_slug, arm_to_train_config, study_table

Log = Callable[[str], None]


def run_study(config: StudyConfig, out_dir: Path, log: Log = print) -> dict:
    from respread.measure.run import EvalConfig
    from respread.workflows.eval import evaluate_into
    from respread.restore.train import TRAIN_FILE, run_train
    from respread.tasks import select_tasks

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not config.arms:
        raise RespreadError("a study needs at least one arm (--arm diffuse, --arm published, --arm log-rarity, ...)")
    seeds = config.training_seeds
    for arm in config.arms:
        arm_to_train_config(arm, config).validate()  # every bad arm fails before hours of work
    tasks = select_tasks(config.panel + "," + config.task, config.task_files, seed=config.seed)
    if any(not t.is_categorical for t in tasks):
        raise RespreadError("the study's panel takes categorical tasks; measure text and verifiable tasks with `respread eval`")
    started = time.time()
    timings: dict[str, float] = {}

    def timed(name: str, work: Callable[[], object]):
        t0 = time.time()
        result = work()
        timings[name] = round(time.time() - t0, 1)
        return result

    def panel(model: str, temperature: float, trained: bool = False) -> EvalConfig:
        # A task scored exactly is not sampled too: its exact distribution already says all sampling would.
        options = config.model_options.without_adapter() if trained else config.model_options  # a trained copy holds it
        return EvalConfig(model=model, tasks=tasks, samples=config.samples, temperature=temperature, seed=config.seed,
                          exact=True, sample_closed=False, model_options=options)

    conditions = {"before": panel(config.model, 1.0), f"t{config.high_temperature:g}": panel(config.model, config.high_temperature)}
    for name, eval_config in conditions.items():
        log(f"[study] eval {name}: {eval_config.model} at T={eval_config.temperature:g}")
        timed(f"eval {name}", lambda: evaluate_into(eval_config, out_dir / name, config.parse, log))
    arm_conditions: dict[str, list[str]] = {}
    for arm in config.arms:
        for seed in seeds:
            slug = arm_slug(arm, seed, seeds[0])
            train_dir = out_dir / f"train-{slug}"
            if (train_dir / TRAIN_FILE).is_file():
                log(f"[study] train {arm} (seed {seed}): done before, kept")
            else:
                train_config = arm_to_train_config(arm, config, seed)
                log(f"[study] train {arm} (seed {seed}) on {config.task}: {train_config.steps} steps")
                timed(f"train {slug}", lambda: run_train(train_config, train_dir, resume=True))
            after = f"after-{slug}"
            arm_conditions.setdefault(arm, []).append(after)
            conditions[after] = panel(str(train_dir / "final"), 1.0, trained=True)
            log(f"[study] eval {after}")
            timed(f"eval {after}", lambda: evaluate_into(conditions[after], out_dir / after, config.parse, log))

    capability = timed("capability", lambda: _capability(config, out_dir, log))
    monitor_png = plot_monitor(out_dir, config.arms, config.task, seeds)

    metrics = {name: json.loads((out_dir / name / "metrics.json").read_text(encoding="utf-8")) for name in conditions}
    table = study_table(metrics, config.task, config.parse)
    result = {
        "kind": "study",
        "config": asdict(config) | {"seeds": seeds},
        "trained_task": config.task,
        "conditions": list(conditions),
        "arm_conditions": arm_conditions,
        "table": table,
        "seed_changes": seed_changes(table, arm_conditions, "before"),
        "train": {arm: [_train_summary(out_dir / c.replace("after-", "train-", 1)) for c in cs] for arm, cs in arm_conditions.items()},
        "capability": capability,
        "monitor_plot": str(monitor_png) if monitor_png else None,
        "seconds": timings,
        "wall_seconds": round(time.time() - started, 1),
    }
    write_artifact(out_dir / STUDY_FILE, "study", result)
    from respread.report.study import study_markdown

    (out_dir / "study.md").write_text(study_markdown(result), encoding="utf-8")
    from respread.report.page import build_report

    try:
        build_report([out_dir], out_dir / REPORT_FILE)
    except RespreadError as exc:  # the study's own files are written; the page can be drawn again with `respread report`
        log(f"[study] report.html not written: {exc}")
    return result


def _train_summary(train_dir: Path) -> dict:
    """What one training run cost and was: method, rewards, steps, completions a step, seed, wall time, CPU-hours."""
    record = json.loads((train_dir / "train.json").read_text(encoding="utf-8"))
    config = record["config"]
    return {
        "dir": train_dir.name, "method": config["method"], "rewards": config["rewards"] if config["method"] == "grpo" else [],
        "steps": config["steps"], "batch_size": config["batch_size"], "group_size": config["group_size"], "lora": config["lora"],
        "learning_rate": config["learning_rate"], "parse": config["parse"], "seed": config["seed"],
        "wall_seconds": record.get("wall_seconds"), "cpu_hours": record.get("cpu_hours"),
    }


def _capability(config: StudyConfig, out_dir: Path, log: Log) -> dict:
    from respread.measure.capability import capability_report

    path = out_dir / "capability.json"
    done = capability_models(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}
    # KL from the original needs no data, so it always runs; the original itself is only worth a row with data.
    models = {"before": config.model} if (config.mmlu or config.gsm8k) else {}
    seeds = config.training_seeds
    models |= {
        f"after-{arm_slug(a, s, seeds[0])}": str(out_dir / f"train-{arm_slug(a, s, seeds[0])}" / "final")
        for a in config.arms for s in seeds
    }
    for name, model in models.items():
        if name in done:
            continue
        log(f"[study] capability {name}")
        original = config.model_options
        done[name] = capability_report(
            model, mmlu=config.mmlu, gsm8k=config.gsm8k, reference=config.model if name != "before" else None,
            mmlu_subset=config.mmlu_subset, gsm8k_subset=config.gsm8k_subset, seed=config.seed,
            options=original if name == "before" else original.without_adapter(), reference_options=original,
        )
        write_artifact(path, "capability", {"models": done})
    return done


def plot_monitor(out_dir: Path, arms: list[str], trained_task: str | None = None, seeds: list[int] | None = None) -> Path | None:
    """The collapse monitor's curves (TV among valid and valid mass vs step), one line per arm and seed."""
    from respread.report.figures import monitor_figure, monitor_footer, save_png
    from respread.restore.callbacks import read_monitor

    seeds = seeds or [None]
    curves = {
        arm if len(seeds) == 1 else f"{arm} seed {seed}": read_monitor(out_dir / f"train-{arm_slug(arm, seed, seeds[0])}")
        for arm in arms for seed in seeds
    }
    if not any(curves.values()):
        return None
    return save_png(monitor_figure(curves, trained_task, footer=monitor_footer(curves)), out_dir / "monitor.png", dpi=120)
