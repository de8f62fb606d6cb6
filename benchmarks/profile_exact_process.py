"""Where the wall time of `respread eval --tasks integer_1_10,integer_1_100,integer_1_1000,card_suit --samples 1
--exact` goes (issue 15's ≤ 10 s target), in one process: import and load steps one at a time, then the same
command run in-process with timers around the backend's methods and the figures.

Run: python benchmarks/profile_exact_process.py   (two runs give the spread BENCHMARKS.md quotes)
     python benchmarks/profile_exact_process.py --collector   (the collector's time and the fits, in the real command)
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time

TASKS = "integer_1_10,integer_1_100,integer_1_1000,card_suit"


def run_eval_command(cli) -> float:
    """`respread eval --tasks TASKS --samples 1 --exact` into a fresh folder, in this process; its wall seconds."""
    with tempfile.TemporaryDirectory() as out:
        sys.argv = ["respread", "eval", "--tasks", TASKS, "--samples", "1", "--exact", "--out", out]
        began = time.perf_counter()
        cli.app(standalone_mode=False)
        return time.perf_counter() - began


def main() -> None:
    start = time.perf_counter()
    lap = start

    def step(label: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        print(f"| {label} | {now - lap:.2f} |", flush=True)
        lap = now

    print("| step | s |\n|---|---|")
    import gc

    gc.disable()  # as `load_backend` does around the first load, which these steps take apart
    import torch

    step("import torch")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    step("import transformers")
    from respread.models import resolve_model

    path = resolve_model("smollm2-135m-instruct").load_path
    AutoConfig.from_pretrained(path)
    step("model configuration (transformers' lazy imports)")
    AutoTokenizer.from_pretrained(path)
    step("tokenizer")
    AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    gc.collect(0)
    gc.freeze()
    gc.enable()
    step("weights (and the collection `load_backend` makes before freezing)")

    import respread.analysis as analysis
    import respread.backends.transformers as backend_module
    import respread.cli as cli

    step("import respread (cli, analysis)")
    timers: dict[str, float] = {}

    def timed(owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timers[label] = timers.get(label, 0.0) + time.perf_counter() - began

        setattr(owner, name, wrapper)

    backend = backend_module.TransformersBackend
    timed(backend, "__init__", "load the backend (modules already imported above)")
    timed(backend, "_prefill_rows", "the prompts' prefill (inside the sampling below)")
    timed(backend, "sample_many", "sample one reply per task")
    timed(backend, "_tree_scores", "exact scoring by trie")
    timed(analysis, "run_metrics", "figures")
    total = run_eval_command(cli)
    print("\n| in the eval command | s |\n|---|---|")
    for label, seconds in timers.items():
        print(f"| {label} | {seconds:.2f} |")
    print(f"| whole eval command in-process | {total:.2f} |")


def collector() -> None:
    """The same command run in-process as the console command runs it, counting the cyclic collector's time
    (gc.callbacks) and the calibrated estimate's mixing-law fits. Runs on any respread tree (PYTHONPATH)."""
    import gc

    import respread.metrics.posterior as posterior

    spent = {"seconds": 0.0, "collections": 0, "fits": 0}
    started_at = [0.0]

    def on_collection(phase: str, info: dict) -> None:
        if phase == "start":
            started_at[0] = time.perf_counter()
        else:
            spent["seconds"] += time.perf_counter() - started_at[0]
            spent["collections"] += 1

    fit_mixing = posterior.fit_mixing

    def counted(*args, **kwargs):
        spent["fits"] += 1
        return fit_mixing(*args, **kwargs)

    posterior.fit_mixing = counted
    gc.callbacks.append(on_collection)
    import respread.cli as cli

    total = run_eval_command(cli)
    gc.callbacks.remove(on_collection)
    print(f"cyclic collector: {spent['seconds']:.2f} s in {spent['collections']} collections; "
          f"mixing-law fits: {spent['fits']}; whole eval command in-process: {total:.2f} s")


if __name__ == "__main__":
    collector() if "--collector" in sys.argv else main()
