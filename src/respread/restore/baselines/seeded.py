"""Seeded prompts: put a random number into the prompt and sample at the same temperature.

A cheap trick people use against mode collapse: each request carries its own "Random seed: 4821", so a
model that maps its input to an answer deterministically at least maps *different* inputs. Measured here
side by side with the other fixes: one prompt per sample, the seed drawn from (run seed, task, prompt,
sample), four digits so that an echoed seed is never a valid answer of the built-in integer tasks.
"""

from __future__ import annotations

import random

from respread.tasks import TaskSpec

SEED_LINE = "Random seed: {seed}"


def seeded_prompts(prompt: str, n: int, *, seed: int, task: str) -> list[str]:
    """`n` copies of `prompt`, each followed by a line `Random seed: dddd`, dddd drawn from 1000–9999 without
    replacement (a repeated seed would repeat a prompt, and with it the sample drawn for it)."""
    rng = random.Random(f"{seed}|{task}|{prompt}")
    return [f"{prompt}\n{SEED_LINE.format(seed=s)}" for s in rng.sample(range(1000, 10000), n)]


def seeded_task(task: TaskSpec, n: int, *, seed: int) -> TaskSpec:
    """The task with each of its prompts turned into `n` seeded prompts (one sample each, same name)."""
    prompts = [p for prompt in task.prompts for p in seeded_prompts(prompt, n, seed=seed, task=task.name)]
    return task.model_copy(update={"prompts": prompts})
