"""Named training recipes: every `TrainConfig` value a recipe sets, overridable one by one.

* `diffuse` (the default arm of `respread study` and `respread train`): match the trained task's answer
  distribution to uniform directly (`--method diffuse`), 40 steps of 16 answers, lr 2e-5, full fine-tune, on
  the listed integer 1–100 task. Chosen by measurement across seeds (README, "Restore"; docs/results-listed.md).
* `published`: the recipe of scasella/research-uniform-random-from-llms (`rng_bias/v0_4/train.py`) at full
  size: LoRA rank 16 (alpha 32, all linear layers), lr 2e-5, 50 steps of 8 groups × 16 completions (128 a step),
  T = 1 with no top-k/top-p, at most 8 new tokens, the `log-rarity` reward with invalid penalty 1 under the
  published (lenient) parse, one fresh request id per group, no KL term and no gradient clipping. TRL's loss is
  made the reference's plain policy gradient: `dr_grpo` sums the token losses and divides by a constant
  (batch × max length), which Adam's normalisation cancels; on-policy (one update per batch) PPO's ratio is 1,
  so its clipping never acts; advantages are standardised within each group as there (TRL's sample std + 1e-4
  against the population std: a constant factor per group size).
* `grpo`: respread's GRPO arm settings for reward arms (`spread-history`, `spread-group`, `log-rarity`,
  `darling`, `validity`, mixes): 40 steps of 2 groups × 8, lr 2e-5, full fine-tune, strict parse.
"""

from __future__ import annotations

from respread.errors import RespreadError

TRAINED_TASK = "listed_integer_1_100"

RECIPES: dict[str, dict] = {
    "diffuse": dict(
        method="diffuse", task=TRAINED_TASK, steps=40, batch_size=16, learning_rate=2e-5, lora=False,
    ),
    "published": dict(
        method="grpo", task=TRAINED_TASK, rewards=["log-rarity"], reward_options={"log-rarity": {"invalid_penalty": 1.0, "clip": 10.0}},
        parse="lenient", lora=True, lora_rank=16, lora_alpha=32, learning_rate=2e-5, steps=50, group_size=16, batch_size=128,
        max_completion_length=8, temperature=1.0, beta=0.0, loss_type="dr_grpo", max_grad_norm=0.0,
    ),
    "grpo": dict(
        method="grpo", task=TRAINED_TASK, rewards=["spread-history"], steps=40, group_size=8, batch_size=16,
        max_completion_length=8, learning_rate=2e-5, lora=False, parse="strict",
    ),
}
DEFAULT_RECIPE = "diffuse"


def recipe(name: str) -> dict:
    """A copy of recipe `name`'s settings."""
    if name not in RECIPES:
        raise RespreadError(f"unknown recipe '{name}'; choose from {', '.join(RECIPES)}")
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in RECIPES[name].items()}


def train_settings(recipe_name: str, overrides: dict) -> dict:
    """`TrainConfig` keyword arguments: the recipe's settings, then every override that is not None.

    Rewards given without a method mean GRPO (a diffuse recipe has no rewards to take them).

    >>> train_settings("diffuse", {"steps": 5, "lr": None})["steps"]
    5
    >>> train_settings("diffuse", {"rewards": ["log-rarity"]})["method"]
    'grpo'
    """
    settings = recipe(recipe_name)
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("rewards") and "method" not in given and settings.get("method") == "diffuse":
        settings = recipe("grpo") | {k: v for k, v in settings.items() if k in ("task",)}
    return settings | given
