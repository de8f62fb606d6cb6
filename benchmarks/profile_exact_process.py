"""Where the wall time of `respread eval --tasks integer_1_10,integer_1_100,integer_1_1000,card_suit --samples 1
--exact` goes (issue 15's ≤ 10 s target), in one process: import and load steps one at a time, then the same
command run in-process with timers around the backend's methods and the figures.

Run: python benchmarks/profile_exact_process.py   (two runs give the spread BENCHMARKS.md quotes)
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time

TASKS = "integer_1_10,integer_1_100,integer_1_1000,card_suit"


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
    with tempfile.TemporaryDirectory() as out:
        sys.argv = ["respread", "eval", "--tasks", TASKS, "--samples", "1", "--exact", "--out", out]
        began = time.perf_counter()
        try:
            cli.app(standalone_mode=False)
        finally:
            total = time.perf_counter() - began
    print("\n| in the eval command | s |\n|---|---|")
    for label, seconds in timers.items():
        print(f"| {label} | {seconds:.2f} |")
    print(f"| whole eval command in-process | {total:.2f} |")


if __name__ == "__main__":
    main()
