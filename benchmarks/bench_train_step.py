"""Seconds per optimizer step and peak memory: TRL's stock step vs respread's shared-prompt step, same config.

Two configurations on the listed integer 1–100 task (its prompt lists all 100 candidates: ~520 tokens):

* GRPO, the published recipe: 8 groups × 16 completions a step (each group its own request id), at most 8 new
  tokens, LoRA rank 16, `log-rarity` reward (lenient parse). Stock TRL cannot hold 128 such rows' activations in
  this machine's memory, so its step runs as 16 micro-batches of 8 rows (gradient accumulation: the same
  optimizer step); the shared step takes the 128 rows at once.
* diffuse: 16 answers a step after one prompt, full fine-tune (the default recipe).

Each round runs one path in a fresh process (so each path's peak RSS is its own) for `--steps` optimizer steps,
timed by a callback from step begin to step end (generation, loss, backward and optimizer); the first step of a
round also pays the shared path's one-time self-check. Rounds alternate stock, shared, stock, shared, ... so
drift in the machine's speed falls on both. The last line reads `shared-prompt speed-up: GRPO N.Nx, diffuse M.Mx`
(median seconds per step, stock / shared).

Run: python benchmarks/bench_train_step.py [--rounds 2] [--steps 1] [--only grpo|diffuse]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "grpo": dict(recipe="published", steps_per_round=1),
    "diffuse": dict(recipe="diffuse", steps_per_round=2),
}


def one_round(method: str, path: str, steps: int) -> dict:
    """Train `steps` steps of `method` the `path` way (stock or shared) in this process; seconds per step, peak RSS."""
    from transformers import TrainerCallback

    import respread.restore.train as train_module
    from respread.restore.recipes import train_settings
    from respread.restore.train import TrainConfig, run_train

    settings = train_settings(CONFIGS[method]["recipe"], {"steps": steps})
    if method == "grpo" and path == "stock":
        settings["micro_batch_size"] = 8  # 128 stock rows of ~530 tokens do not fit in memory at once
    config = TrainConfig(**settings, save_every=10_000, monitor_every=10_000, monitor_tasks=[], shared_prompt=path == "shared")
    seconds: list[float] = []
    rollout_seconds: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            seconds.append(time.perf_counter() - self.started)

    build = train_module._grpo_trainer if method == "grpo" else train_module._diffuse_trainer

    def timed_trainer(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(StepClock())
        generate = getattr(trainer, "_generate_and_score_completions", None)
        if generate is not None:  # GRPO: what of a step is rollouts (sampling and rewards); the rest is loss and update
            def timed_generate(*a, **k):
                started = time.perf_counter()
                try:
                    return generate(*a, **k)
                finally:
                    rollout_seconds.append(time.perf_counter() - started)

            trainer._generate_and_score_completions = timed_generate
        return trainer

    setattr(train_module, build.__name__, timed_trainer)
    with tempfile.TemporaryDirectory(prefix="bench-train-step-") as out:
        run_train(config, Path(out) / "run")
    return {"seconds": seconds, "rollout_seconds": sum(rollout_seconds) / max(len(seconds), 1),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per path and method")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per round (default: grpo 1, diffuse 2)")
    parser.add_argument("--only", choices=list(CONFIGS), default=None)
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        method, path = args.one
        print(json.dumps(one_round(method, path, args.steps or CONFIGS[method]["steps_per_round"])))
        return
    speedups = {}
    for method in [args.only] if args.only else list(CONFIGS):
        runs: dict[str, list[dict]] = {"stock": [], "shared": []}
        for round_ in range(args.rounds):
            for path in ("stock", "shared"):
                command = [sys.executable, __file__, "--one", method, path] + (["--steps", str(args.steps)] if args.steps else [])
                started = time.strftime("%H:%M:%S")
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                runs[path].append(result)
                print(f"{method} {path:6s} round {round_ + 1} (started {started}): seconds per step "
                      f"{', '.join(f'{s:.1f}' for s in result['seconds'])} (rollouts {result['rollout_seconds']:.1f} a step) · "
                      f"peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
        medians = {p: statistics.median(s for r in rs for s in r["seconds"]) for p, rs in runs.items()}
        peaks = {p: max(r["peak_rss_mb"] for r in rs) for p, rs in runs.items()}
        speedups[method] = medians["stock"] / medians["shared"]
        print(f"{method}: median s/step stock {medians['stock']:.1f}, shared {medians['shared']:.1f} "
              f"({speedups[method]:.1f}x); peak RSS stock {peaks['stock']:.0f} MB, shared {peaks['shared']:.0f} MB", flush=True)
    print("shared-prompt speed-up: " + ", ".join(f"{'GRPO' if m == 'grpo' else m} {v:.1f}x" for m, v in speedups.items()))


if __name__ == "__main__":
    main()
