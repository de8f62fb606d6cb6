"""TRL reward functions that pay for spread, usable as they are in anyone's `GRPOTrainer(reward_funcs=[...])`.

TRL calls a reward function as `f(prompts=..., completions=..., completion_ids=..., <every dataset column>=...,
trainer_state=..., log_metric=..., log_extra=...)` and wants one float per completion back. `make_reward`
binds a task (its parser decides what the answer of a completion is and whether it is valid) and options, and
returns such a callable with a readable `__name__`, which TRL logs as `rewards/<name>/mean`.
Completions may be plain strings or conversational (`[{"role": "assistant", "content": ...}]`).

**Groups.** A group is the completions sampled for one prompt row. It is named by the dataset column
`group_column` (default `group_id`) when the dataset has one, else by the prompt itself; completions with the
same name are cut, in order, into blocks of `num_generations` when that is bound (TRL does not pass it), so a
prompt that appears twice in one batch still makes two groups. TRL can put one group's completions on several
processes (huggingface/trl#3896, #4707), so every reward that looks at other completions first gathers the
whole batch from all processes (`torch.distributed.all_gather_object`), computes on it, and returns this
process's slice: 2 processes give exactly the rewards of 1, and the history below is updated identically on
every process.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable, Sequence

import numpy as np

from respread.errors import RespreadError
from respread.metrics.classes import Judge, partition, same_normalized_text, unigram_overlap_judge
from respread.tasks import AnswerParser, TaskSpec, registry

RewardFunc = Callable[..., list[float]]
REWARD_KINDS = ("validity", "spread-group", "spread-history", "log-rarity", "darling")


# ------------------------------------------------------------------ formulas (pure, no parsing, no processes)
def group_rarity(answers: Sequence[str | None], groups: Sequence[Any]) -> list[float]:
    """r_i = v_i / c_i, with c_i = #{j in group(i) : v_j and a_j = a_i}; v_i = 1 iff `answers[i]` is not None.

    A group's mean reward is (distinct valid answers)/G, whose expectation Σ_a [1 − (1 − p_a)^G] / G is largest
    at the uniform distribution over the whole valid set. But once the support holds far more than G answers,
    any G distinct answers already earn the maximum: this reward stops pulling towards uniform over all k.

    >>> group_rarity(["3", "3", "7", None], [0, 0, 0, 0])
    [0.5, 0.5, 1.0, 0.0]
    >>> group_rarity(["3", "3"], [0, 1])  # the same answer in two groups is rare in each
    [1.0, 1.0]
    """
    counts: dict[tuple, int] = defaultdict(int)
    for answer, group in zip(answers, groups):
        if answer is not None:
            counts[(group, answer)] += 1
    return [0.0 if a is None else 1.0 / counts[(g, a)] for a, g in zip(answers, groups)]


def log_rarity(answers: Sequence[str | None], groups: Sequence[Any], invalid_penalty: float = 1.0, clip: float = 10.0) -> list[float]:
    """r_i = clip(−log(c_i / K_i)) for a valid answer, −`invalid_penalty` for an invalid one (answers[i] is None).

    K_i is the size of i's group, invalid completions included; c_i the count of i's answer in it. A valid
    answer earns between 0 (the whole group gave it) and log K (it is alone). This is the reward of the
    published experiment (scasella/research-uniform-random-from-llms, `rng_bias/v0_4/grpo_env.py`), whose
    training used invalid_penalty 1 and clip 10 (the clip never binds for K < e^10).

    >>> [round(r, 4) for r in log_rarity(["7", "7", "9", None], [0, 0, 0, 0])]
    [0.6931, 0.6931, 1.3863, -1.0]
    """
    sizes: dict[Any, int] = defaultdict(int)
    counts: dict[tuple, int] = defaultdict(int)
    for answer, group in zip(answers, groups):
        sizes[group] += 1
        if answer is not None:
            counts[(group, answer)] += 1
    return [
        -invalid_penalty if a is None else max(-clip, min(clip, -math.log(counts[(g, a)] / sizes[g])))
        for a, g in zip(answers, groups)
    ]


def history_rarity(answers: Sequence[str | None], history: dict[str, float], support_size: int, alpha: float) -> list[float]:
    """r_i = v_i · min(1, 1 / (k · ĥ(a_i))), with ĥ(a) = (H(a) + α) / (Σ_b H(b) + α·k).

    H is the running (decayed) count of the policy's valid answers on the task, already including this batch;
    k the size of the valid set; α a pseudo-count, so an answer never seen has ĥ = α/(ΣH + αk) < 1/k and earns 1.
    An answer drawn more often than 1/k earns less than 1, one drawn at most 1/k earns 1. Every valid answer
    earns the same only when none is above 1/k, and since the ĥ sum to 1 over k answers that means all are
    exactly 1/k: the only fixed point is uniform over the *whole* valid set, not over any G answers.

    >>> history_rarity(["a", "b", None], {"a": 3.0, "b": 1.0}, support_size=4, alpha=0.0)
    [0.3333333333333333, 1.0, 0.0]
    """
    total = sum(history.values()) + alpha * support_size
    rewards = []
    for answer in answers:
        if answer is None:
            rewards.append(0.0)
            continue
        share = (history.get(answer, 0.0) + alpha) / total if total > 0 else 0.0
        rewards.append(1.0 if share * support_size <= 1.0 else 1.0 / (support_size * share))
    return rewards


def partition_diversity(labels: Sequence[int], floor: float = 0.0) -> list[float]:
    """Div_i = max(floor, (n − |class_i|) / (n − 1)): the share of the other n − 1 outputs not in i's class.

    `labels` are one group's equivalence classes (DARLING, Li et al. 2025); a group of one has Div = floor.

    >>> partition_diversity([0, 0, 1, 2])
    [0.6666666666666666, 0.6666666666666666, 1.0, 1.0]
    >>> partition_diversity([0, 0], floor=0.1)
    [0.1, 0.1]
    """
    n = len(labels)
    if n < 2:
        return [floor] * n
    _, inverse, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    sizes = counts[inverse.reshape(-1)]
    return [max(floor, float(n - size) / (n - 1)) for size in sizes]


def history_tv(history: dict[str, float], support_size: int) -> float:
    """½ Σ_a |H(a)/ΣH − 1/k| over the k valid answers: how far the running histogram is from uniform.

    >>> history_tv({"a": 1.0, "b": 1.0}, 2)
    0.0
    >>> history_tv({"a": 1.0}, 4)
    0.75
    """
    total = sum(history.values())
    if total <= 0:
        return 1.0
    seen = sum(abs(c / total - 1.0 / support_size) for c in history.values())
    return 0.5 * (seen + (support_size - len(history)) / support_size)


# ------------------------------------------------------------------ batch plumbing
def completion_text(completion: Any) -> str:
    """The reply text of a plain (`str`) or conversational (`[{"role": ..., "content": ...}]`) completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content") or "")
    raise TypeError(f"a completion must be a string or a list of chat messages, got {type(completion).__name__}")


def gather_across_processes(items: list) -> tuple[list, slice]:
    """Every process's `items` in rank order, and where this process's own items sit in that list.

    A no-op in a single process. In several, a collective call: TRL calls each reward function the same number
    of times on every process, which is what makes it safe.
    """
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is always there with TRL
        return items, slice(0, len(items))
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return items, slice(0, len(items))
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, items)
    start = sum(len(part) for part in gathered[: dist.get_rank()])
    return [item for part in gathered for item in part], slice(start, start + len(items))


def group_ids(names: Sequence[Any], num_generations: int | None) -> list[tuple]:
    """Group of each completion: its name, cut into consecutive blocks of `num_generations` per name.

    >>> group_ids(["p", "p", "p", "p", "q", "q"], 2)
    [('p', 0), ('p', 0), ('p', 1), ('p', 1), ('q', 0), ('q', 0)]
    >>> group_ids(["p", "p", "q"], None)
    [('p', 0), ('p', 0), ('q', 0)]
    """
    seen: dict[Any, int] = defaultdict(int)
    ids = []
    for name in names:
        block = seen[name] // num_generations if num_generations else 0
        seen[name] += 1
        ids.append((name, block))
    return ids


def _prompt_name(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\x1e".join(f"{m.get('role')}\x1f{m.get('content')}" for m in prompt)


def resolve_task(task: str | TaskSpec, task_files: Sequence[str] = ()) -> TaskSpec:
    if isinstance(task, TaskSpec):
        return task
    tasks = registry(list(task_files))
    if task not in tasks:
        raise RespreadError(f"unknown task '{task}' for the reward; known: {', '.join(sorted(tasks))}")
    return tasks[task]


# ------------------------------------------------------------------ the factory
def make_reward(kind: str, *, task: str | TaskSpec, **options) -> RewardFunc:
    """A TRL reward function of `kind` for `task` (a task name, or a `TaskSpec`).

    Kinds (v_i = 1 iff completion i parses to a valid answer under the task's parser, `parse="strict"` by
    default; for a text task v_i is its quality check: non-empty and, when `max_completion_length` is bound,
    not cut at that length):

    * `validity`: r_i = v_i.
    * `spread-group`: r_i = v_i / c_i, c_i the count of i's answer among its group's valid answers
      (`group_rarity`). Options: `group_column`, `num_generations`.
    * `spread-history`: r_i = v_i · min(1, 1/(k·ĥ(a_i))), ĥ the smoothed share of a_i in a running histogram
      of the policy's recent valid answers on the task (`history_rarity`). Counts decay by
      0.5^(B / `half_life`) per batch of B completions (default half-life 512 completions), pseudo-count
      `alpha` (default 1). The histogram lives in `trainer_state.stateful_callbacks`, so it is written into
      every checkpoint's `trainer_state.json` and read back on resume; standalone calls keep it on the function
      (`.history`). Logs `history_tv` and `history_distinct` through TRL's `log_metric`.
    * `log-rarity`: r_i = −log(c_i/K) for a valid answer, K the group's size (invalid completions included),
      −`invalid_penalty` (default 1) for an invalid one, clipped to ±`clip` (default 10) (`log_rarity`): the
      published experiment's reward. Options: `group_column`, `num_generations`, `invalid_penalty`, `clip`.
    * `darling`: quality × partition diversity, r_i = q_i · Div_i (or q_i + w·Div_i with
      `combine="additive"`, w = `diversity_weight`), Div_i = max(floor, (n − |class_i|)/(n − 1)) over i's group
      (`partition_diversity`, default `floor=0.1`). Classes come from `judge`, any judge of
      `respread.metrics.classes` (default: same canonical answer for categorical tasks, NoveltyBench's unigram
      judge for text). q_i from `quality(prompt, text) -> float` if given, else v_i.
    """
    if kind not in REWARD_KINDS:
        raise RespreadError(f"unknown reward kind '{kind}'; choose from {', '.join(REWARD_KINDS)}")
    spec = resolve_task(task, options.pop("task_files", ()))
    if spec.answer_type == "verifiable":
        raise RespreadError(f"task '{spec.name}' is verifiable; the spread rewards take categorical or text tasks")
    parse_mode = options.pop("parse", "strict")
    if parse_mode not in ("strict", "lenient"):
        raise RespreadError(f"reward option parse must be strict or lenient (got {parse_mode!r})")
    max_completion_length = options.pop("max_completion_length", None)
    group_column = options.pop("group_column", "group_id")
    num_generations = options.pop("num_generations", None)
    parser = AnswerParser(spec) if spec.answer_type != "text" else None

    def answers_of(completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None) -> list[str | None]:
        """Canonical valid answer per completion, None when invalid (text tasks: the text when it passes)."""
        texts = [completion_text(c) for c in completions]
        if parser is not None:
            parsed = [parser.parse(t, parse_mode) for t in texts]
            return [p.answer if p.valid else None for p in parsed]
        lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else [0] * len(texts)
        return [
            t if t.strip() and (max_completion_length is None or n < max_completion_length) else None
            for t, n in zip(texts, lengths)
        ]

    def batch_groups(prompts: Sequence[Any], columns: dict) -> list[Any]:
        names = columns.get(group_column)
        return list(names) if names is not None else [_prompt_name(p) for p in prompts]

    suffix = spec.name
    if kind == "validity":

        def reward(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
            return [0.0 if a is None else 1.0 for a in answers_of(completions, completion_ids)]

    elif kind == "spread-group":

        def reward(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
            local = list(zip(answers_of(completions, completion_ids), batch_groups(prompts, kwargs)))
            everything, mine = gather_across_processes(local)
            answers = [a for a, _ in everything]
            groups = group_ids([g for _, g in everything], num_generations)
            return group_rarity(answers, groups)[mine]

    elif kind == "log-rarity":
        invalid_penalty = float(options.pop("invalid_penalty", 1.0))
        clip = float(options.pop("clip", 10.0))
        if not (math.isfinite(invalid_penalty) and clip > 0):
            raise RespreadError("log-rarity needs a finite invalid_penalty and clip > 0")

        def reward(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
            local = list(zip(answers_of(completions, completion_ids), batch_groups(prompts, kwargs)))
            everything, mine = gather_across_processes(local)
            groups = group_ids([g for _, g in everything], num_generations)
            return log_rarity([a for a, _ in everything], groups, invalid_penalty, clip)[mine]

    elif kind == "spread-history":
        if parser is None:
            raise RespreadError(f"spread-history needs a task with a valid-answer set; '{spec.name}' is free text")
        half_life = float(options.pop("half_life", 512))
        alpha = float(options.pop("alpha", 1.0))
        if half_life <= 0 or alpha < 0:
            raise RespreadError("spread-history needs half_life > 0 and alpha >= 0")
        support_size = len(parser.support)
        state_key = f"respread/spread_history/{spec.name}"
        own_state: dict = {"counts": {}}

        def reward(prompts, completions, completion_ids=None, trainer_state=None, log_metric=None, **kwargs) -> list[float]:
            everything, mine = gather_across_processes(answers_of(completions, completion_ids))
            store = own_state
            if trainer_state is not None:  # checkpointed with the trainer state; read back on resume
                store = trainer_state.stateful_callbacks.setdefault(state_key, {"counts": {}})
            decay = 0.5 ** (len(everything) / half_life)
            counts = {a: c * decay for a, c in store["counts"].items() if c * decay > 1e-6}
            for answer in everything:
                if answer is not None:
                    counts[answer] = counts.get(answer, 0.0) + 1.0
            store["counts"] = counts
            own_state["counts"] = counts
            if log_metric is not None:
                log_metric(f"{reward.__name__}/history_tv", history_tv(counts, support_size))
                log_metric(f"{reward.__name__}/history_distinct", float(len(counts)))
            return history_rarity(everything, counts, support_size, alpha)[mine]

        reward.history = own_state  # type: ignore[attr-defined]

    else:  # darling
        floor = float(options.pop("floor", 0.1))
        combine = options.pop("combine", "multiplicative")
        weight = float(options.pop("diversity_weight", 1.0))
        quality: Callable[[Any, str], float] | None = options.pop("quality", None)
        judge: Judge | None = options.pop("judge", None)
        if combine not in ("multiplicative", "additive"):
            raise RespreadError(f"darling option combine must be multiplicative or additive (got {combine!r})")
        if judge is None:
            judge = unigram_overlap_judge() if parser is None else same_normalized_text

        def reward(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
            answers = answers_of(completions, completion_ids)
            texts = [completion_text(c) for c in completions]
            # Categorical tasks compare canonical answers (so "Blue." and "blue" are one class).
            items = [a if (parser is not None and a is not None) else t for a, t in zip(answers, texts)]
            q = [float(quality(p, t)) for p, t in zip(prompts, texts)] if quality else [float(a is not None) for a in answers]
            local = list(zip(items, q, batch_groups(prompts, kwargs)))
            everything, mine = gather_across_processes(local)
            groups = group_ids([g for _, _, g in everything], num_generations)
            members: dict[Any, list[int]] = defaultdict(list)
            for i, group in enumerate(groups):
                members[group].append(i)
            diversity = [0.0] * len(everything)
            for indices in members.values():
                labels = partition([everything[i][0] for i in indices], judge)
                for i, div in zip(indices, partition_diversity(labels, floor)):
                    diversity[i] = div
            qualities = [qi for _, qi, _ in everything]
            if combine == "multiplicative":
                rewards = [qi * d for qi, d in zip(qualities, diversity)]
            else:
                rewards = [qi + weight * d for qi, d in zip(qualities, diversity)]
            return rewards[mine]

    if options:
        raise RespreadError(f"unknown option(s) for reward '{kind}': {', '.join(sorted(options))}")
    reward.__name__ = f"{kind.replace('-', '_')}_{suffix}"
    reward.__qualname__ = reward.__name__
    return reward


def parse_reward_spec(spec: str) -> tuple[str, float]:
    """`kind` or `kind:weight` from the command line, e.g. `spread-history:1.0`.

    >>> parse_reward_spec("validity:0.5")
    ('validity', 0.5)
    """
    kind, _, weight = spec.partition(":")
    if kind not in REWARD_KINDS:
        raise RespreadError(f"--reward '{spec}': unknown kind '{kind}'; choose from {', '.join(REWARD_KINDS)}")
    try:
        value = float(weight) if weight else 1.0
    except ValueError as exc:
        raise RespreadError(f"--reward '{spec}': the weight after ':' must be a number") from exc
    if not math.isfinite(value):
        raise RespreadError(f"--reward '{spec}': the weight must be finite")
    return kind, value
