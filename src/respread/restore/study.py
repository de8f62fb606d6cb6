"""`respread study`: does training on ONE task restore spread there, does it transfer, and what did it cost?

Stages, each written to its own folder of the study directory and skipped when already complete, so a study
killed at any point continues where it stopped when run again:

1. `before/`: the panel on the original model (the default panel, `listed`, is closed: every figure exact);
2. `t1.5/`: the original model at temperature 1.5 (the cheapest fix: is training better than that?);
3. `train-<arm>/`: one training run per arm and training seed (`train-<arm>-seed<k>` for seeds after the first):
   a recipe (`diffuse`, the default; `published`; `grpo`) or GRPO rewards (`spread-history`, `log-rarity`, ...,
   any `+`-joined mix with `:weight`s), with the collapse monitor on the trained task;
4. `after-<arm>[-seed<k>]/`: the panel on each trained model, on the same prompts as `before/`;
5. `capability.json`: the mean KL of each trained model from the original on neutral prompts, and MMLU and
   GSM8K accuracy before and after each arm when their data is given;
6. `study.json`, `study.md` and `monitor.png`: the table, the across-seed changes (`respread.restore.seeds`)
   and the monitor's curves;
7. `report.html` (charts as PNG and SVG in `report_figures/`): what `respread report` draws of the study.

Figures of closed tasks are exact (no sampling error), and closed tasks are not also sampled; open tasks are
sampled, with bootstrap CIs.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from respread.backends.options import ModelOptions
from respread.errors import RespreadError
from respread.models import DEFAULT_MODEL
from respread.records import write_json_atomic
from respread.restore.recipes import DEFAULT_RECIPE, RECIPES, TRAINED_TASK, train_settings
from respread.restore.seeds import seed_changes

STUDY_FILE = "study.json"
REPORT_FILE = "report.html"
Log = Callable[[str], None]


@dataclass
class StudyConfig:
    model: str = DEFAULT_MODEL
    task: str = TRAINED_TASK
    panel: str = "listed"
    arms: list[str] = field(default_factory=lambda: [DEFAULT_RECIPE])
    seeds: list[int] | None = None  # training seeds; None: [seed]
    samples: int = 100
    # None: each arm's own recipe value (`respread.restore.recipes`); a value here applies to every arm
    steps: int | None = None
    learning_rate: float | None = None
    group_size: int | None = None
    batch_size: int | None = None
    max_completion_length: int | None = None
    lora: bool | None = None
    seed: int = 0  # the eval seed (request ids, sampled replies) and the first training seed
    parse: str = "strict"
    high_temperature: float = 1.5
    monitor_every: int = 5
    mmlu: str | None = None
    gsm8k: str | None = None
    mmlu_subset: int = 100
    gsm8k_subset: int = 20
    task_files: list[str] = field(default_factory=list)
    model_options: ModelOptions = field(default_factory=ModelOptions)  # how the original model is loaded and prompted

    @classmethod
    def quick(cls, **overrides) -> "StudyConfig":
        """A smoke version for tests: a few tasks, few samples, 2 small steps, tiny capability subsets."""
        base = dict(
            panel="integer_1_10,integer_1_100,card_suit,color", task="integer_1_100", samples=8, steps=2, group_size=2,
            batch_size=4, monitor_every=1, mmlu_subset=4, gsm8k_subset=2,
        )
        return cls(**(base | overrides))

    @property
    def training_seeds(self) -> list[int]:
        return list(dict.fromkeys(self.seeds)) if self.seeds else [self.seed]


def arm_to_train_config(arm: str, study: StudyConfig, seed: int | None = None):
    """A recipe name (`diffuse`, `published`, `grpo`), or rewards for GRPO joined by `+` (each `kind` or `kind:weight`)."""
    from respread.restore.train import TrainConfig

    overrides = dict(
        steps=study.steps, learning_rate=study.learning_rate, group_size=study.group_size, batch_size=study.batch_size,
        max_completion_length=study.max_completion_length, lora=study.lora,
    )
    if arm in RECIPES:
        settings = train_settings(arm, overrides)
    else:
        settings = train_settings("grpo", overrides | {"rewards": [r for r in arm.split("+") if r], "parse": study.parse})
    options = study.model_options
    loading = {k: getattr(options, k) for k in ("device", "dtype", "trust_remote_code", "revision", "adapter", "chat_template", "system_prompt")}
    return TrainConfig(
        **(settings | loading | dict(model=study.model, task=study.task, seed=study.seed if seed is None else seed,
                                     monitor_every=study.monitor_every, task_files=list(study.task_files)))
    )


def arm_slug(arm: str, seed: int | None = None, first_seed: int | None = None) -> str:
    """A folder-safe name for an arm; seeds other than the study's first get a `-seedN` suffix.

    >>> arm_slug("spread-history+validity:0.5")
    'spread-history+validity-0.5'
    >>> arm_slug("diffuse", 2, 0)
    'diffuse-seed2'
    """
    slug = re.sub(r"[^A-Za-z0-9+_.-]", "-", arm)
    return slug if seed is None or seed == first_seed else f"{slug}-seed{seed}"


def run_study(config: StudyConfig, out_dir: Path, log: Log = print) -> dict:
    from respread.analysis import evaluate_into
    from respread.measure.run import EvalConfig
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
    write_json_atomic(out_dir / STUDY_FILE, result)
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


def study_table(metrics: dict[str, dict], trained_task: str, parse: str) -> list[dict]:
    """One row per task: its figures in every condition, the trained task first."""
    from respread.analysis import headline_figures

    names = list(next(iter(metrics.values()))["tasks"])
    names.sort(key=lambda n: n != trained_task)
    return [
        {
            "task": name,
            "trained": name == trained_task,
            "conditions": {c: headline_figures(m["tasks"][name], parse) for c, m in metrics.items() if name in m["tasks"]},
        }
        for name in names
    ]


def _capability(config: StudyConfig, out_dir: Path, log: Log) -> dict:
    from respread.restore.capability import capability_report

    path = out_dir / "capability.json"
    done = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
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
        write_json_atomic(path, done)
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
