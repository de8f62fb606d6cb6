"""Seconds per GRPO step with respread's reward and collapse monitor vs a trivial reward, same config, same run.

Both arms train SmolLM2-135M-Instruct on integer_1_100 with the study's config (16 completions a step, group
8, 8 new tokens, lr 2e-5). The respread arm uses `spread-history` and a `DiversityMonitor` on the trained task
every 5 steps (and at the start and end, as `respread study` does); the baseline arm a trivial reward (the
completion's length parity) and no monitor. Arms alternate (A B A B) to spread drift over both.

Two ratios are printed: end to end (wall per step, respread / trivial), which also carries the run-to-run
noise of different rollouts, and the direct one: the time spent inside respread's reward and monitor as a
share of the respread arm's wall time. Target: overhead ≤ 10%.

Run: python benchmarks/bench_grpo_overhead.py [steps per arm, default 10]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

from respread.backends.transformers import TransformersBackend
from respread.models import resolve_model
from respread.restore import DiversityMonitor, make_reward
from respread.restore.callbacks import read_monitor

TASK = "integer_1_100"


def timed(reward, spent: list[float]):
    def wrapper(**kwargs):
        t0 = time.perf_counter()
        result = reward(**kwargs)
        spent.append(time.perf_counter() - t0)
        return result

    wrapper.__name__ = reward.__name__
    return wrapper


def length_parity(completions, **kwargs) -> list[float]:
    return [float(len(c) % 2) for c in completions]


def one_arm(respread_arm: bool, steps: int, workdir: Path) -> dict:
    from respread.tasks import registry

    path = resolve_model("smollm2-135m-instruct").load_path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    prompt = TransformersBackend.from_loaded(model, tokenizer).render(registry()[TASK].prompt())
    dataset = Dataset.from_list([{"prompt": prompt, "group_id": i} for i in range(steps * 2)])
    reward_seconds: list[float] = []
    reward = timed(make_reward("spread-history", task=TASK, num_generations=8), reward_seconds) if respread_arm else length_parity
    args = GRPOConfig(
        output_dir=str(workdir / "ckpt"), max_steps=steps, learning_rate=2e-5, per_device_train_batch_size=16,
        num_generations=8, max_completion_length=8, temperature=1.0, top_k=0, top_p=1.0, logging_steps=1,
        save_strategy="no", report_to="none", bf16=False, gradient_checkpointing=False, use_cpu=True, seed=0,
        shuffle_dataset=False, disable_tqdm=True,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=dataset, processing_class=tokenizer)
    if respread_arm:
        DiversityMonitor([TASK], every=5, out=workdir / "monitor").attach(trainer)
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    monitor_seconds = sum(r["seconds"] for r in read_monitor(workdir / "monitor")) if respread_arm else 0.0
    return {"wall": wall, "reward": sum(reward_seconds), "monitor": monitor_seconds}


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    torch.manual_seed(0)
    results = {True: [], False: []}
    for round_ in range(2):
        for respread_arm in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                r = one_arm(respread_arm, steps, Path(tmp))
            results[respread_arm].append(r)
            print(f"round {round_ + 1} {'respread' if respread_arm else 'trivial '}: {r['wall'] / steps:.2f} s/step "
                  f"(reward {r['reward']:.3f} s, monitor {r['monitor']:.2f} s over {steps} steps)", flush=True)
    trivial = sum(r["wall"] for r in results[False]) / (2 * steps)
    ours = sum(r["wall"] for r in results[True]) / (2 * steps)
    inside = sum(r["reward"] + r["monitor"] for r in results[True]) / sum(r["wall"] for r in results[True])
    print(f"\nsteps per arm and round: {steps}; 16 completions a step, group 8, 8 new tokens, monitor every 5 steps")
    print(f"trivial reward: {trivial:.2f} s/step · spread-history + monitor: {ours:.2f} s/step · ratio {ours / trivial:.3f}")
    print(f"time inside respread's reward and monitor: {100 * inside:.1f}% of the respread arm's wall time (target <= 10%)")


if __name__ == "__main__":
    main()
