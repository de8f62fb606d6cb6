"""`respread study`'s settings and arms (`StudyConfig`, `arm_to_train_config`) and its table; the run itself is
`respread.workflows.study.run_study`. Does training on ONE task restore spread there, does it transfer, and
what did it cost?

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

import re
from dataclasses import dataclass, field
from typing import Callable

from respread.backends.options import ModelOptions
from respread.models import DEFAULT_MODEL
from respread.restore.recipes import DEFAULT_RECIPE, RECIPES, TRAINED_TASK, train_settings

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


def study_table(metrics: dict[str, dict], trained_task: str, parse: str) -> list[dict]:
    """One row per task: its figures in every condition, the trained task first."""
    from respread.measure.figures import headline_figures

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
