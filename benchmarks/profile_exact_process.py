"""Where the wall time of `respread eval --tasks integer_1_10,integer_1_100,integer_1_1000,card_suit --samples 1
--exact` goes (issue 15's ≤ 10 s target), in one process: import and load steps one at a time, then the same
command run in-process with timers around the backend's methods and the figures.

Run: python benchmarks/profile_exact_process.py   (two runs give the spread BENCHMARKS.md quotes)
     python benchmarks/profile_exact_process.py --collector   (the collector's time and the fits, in the real command)
     python benchmarks/profile_exact_process.py --exit   (the interpreter's exit after the command, ordinary vs `main`'s)
     python benchmarks/profile_exact_process.py --floors   (each model call of the command beside its linear
         layers alone at the same rows: how far the eval's compute is from this CPU's matmul and memory limits)
     python benchmarks/profile_exact_process.py --against OLD_TREE [ROUNDS]   (the whole process, this tree's
         code and OLD_TREE's, e.g. a `git worktree` of an earlier commit, run alternately; default 4 rounds)
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
    import transformers.modeling_utils  # noqa: F401  (as `load_backend` imports it before freezing)

    gc.freeze()
    import respread.backends as backends

    backends._model_stack_frozen = True  # done here: the eval below must not freeze again
    step("transformers' model machinery (its lazy imports), then the freeze")
    from respread.models import resolve_model

    path = resolve_model("smollm2-135m-instruct").load_path
    AutoConfig.from_pretrained(path)
    step("model configuration")
    AutoTokenizer.from_pretrained(path)
    step("tokenizer")
    AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    gc.enable()
    step("weights")

    import respread.measure.figures as analysis
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


EXIT_CHILD = """
import atexit, sys, time
how, out = sys.argv[1:3]
atexit.register(lambda: print("handlers at", time.time(), flush=True))  # the last thing before the teardown
sys.argv = ["respread", "eval", "--tasks", "{tasks}", "--samples", "1", "--exact", "--out", out]
from respread.cli import app, main
if how == "main":
    main()  # as the console command exits
try:
    app()
except SystemExit:
    pass  # the ordinary exit: the interpreter tears down every object
"""


def exit_times(rounds: int = 3) -> None:
    """Seconds from the command's exit handlers to the process's end: ordinary interpreter exit vs `cli.main`'s."""
    import subprocess

    spent: dict[str, list[float]] = {"ordinary": [], "main": []}
    for _ in range(rounds):
        for how in spent:  # alternated, so a noisy neighbour hits both alike
            with tempfile.TemporaryDirectory() as out:
                child = subprocess.run([sys.executable, "-c", EXIT_CHILD.format(tasks=TASKS), how, out],
                                       capture_output=True, text=True, check=True)
                ended = time.time()
            handlers = float(child.stdout.rsplit("handlers at", 1)[1].split()[0])
            spent[how].append(ended - handlers)
    for how, seconds in spent.items():
        print(f"{how} exit: " + ", ".join(f"{s:.2f}" for s in seconds) + " s")


def against(old_tree: str, rounds: int) -> None:
    """Wall seconds of `python -m respread.cli eval …` as a console process, from this tree's source and from
    `old_tree`'s (PYTHONPATH), alternated so that a noisy neighbour slows both alike."""
    import os
    import statistics
    import subprocess
    from pathlib import Path

    import compileall

    here = Path(__file__).resolve().parents[1] / "src"
    trees = {old_tree: Path(old_tree).resolve() / "src", "this tree": here}
    for src in trees.values():  # neither tree pays for compiling its modules (a fresh worktree has no bytecode)
        compileall.compile_dir(src, quiet=1)
    walls: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, src in trees.items():
            with tempfile.TemporaryDirectory() as out:
                began = time.perf_counter()
                subprocess.run([sys.executable, "-m", "respread.cli", "eval", "--tasks", TASKS, "--samples", "1", "--exact", "--out", out],
                               check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(src)))
                walls[name].append(time.perf_counter() - began)
    for name, seconds in walls.items():
        print(f"{name}: " + ", ".join(f"{s:.1f}" for s in seconds) + f" s, median {statistics.median(seconds):.2f} s")
    ratios = [new / old for old, new in zip(walls[old_tree], walls["this tree"])]
    print("this tree / old, round by round: " + ", ".join(f"{r:.2f}" for r in ratios) + f"; median {statistics.median(ratios):.2f}")


def floors(rounds: int = 3) -> None:
    """Each kind of model call in the command (the prompts' prefills, a 4-row decoding step, a 256-node trie
    pass) timed in the real backend, beside the model's linear layers alone run at the same number of rows:
    the part of a call no attention, norm or Python code can remove on this CPU. At a few rows the linears
    read every weight once per call (memory-bound); at hundreds of rows they run at the matmul peak."""
    import statistics

    import torch

    from respread.backends import SamplingParams, load_backend
    from respread.backends.scoring import TREE_NODES
    from respread.measure.run import completion_stream, exact_record
    from respread.tasks import registry

    backend = load_backend("smollm2-135m-instruct")
    model = backend.model
    tasks = registry()
    forward = model.forward
    calls: list[tuple[int, int, float]] = []

    def timed_forward(*args, **kwargs):
        began = time.perf_counter()
        out = forward(*args, **kwargs)
        rows, width = kwargs["input_ids"].shape
        calls.append((rows, width, time.perf_counter() - began))
        return out

    model.forward = timed_forward
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weight_bytes = sum(m.weight.numel() * m.weight.element_size() for m in linears)
    head = model.get_output_embeddings()
    # A prefill asks for the last position's logits only (`logits_to_keep`), so its output layer sees one row.
    prefill_head_rows = 1 if backend._last_logits_only else None

    def rows_of(m, rows: int, head_rows: int | None) -> int:
        return head_rows if m is head and head_rows is not None else rows

    def linears_alone(rows: int, head_rows: int | None = None) -> float:
        inputs = {m: torch.randn(rows_of(m, rows, head_rows), m.in_features) for m in linears}
        seconds = []
        with torch.inference_mode():
            for _ in range(rounds + 1):  # the first round warms up and is not counted
                began = time.perf_counter()
                for m in linears:
                    m(inputs[m])
                seconds.append(time.perf_counter() - began)
        return statistics.median(seconds[1:])

    def flops(rows: int, head_rows: int | None = None) -> float:
        return sum(2 * rows_of(m, rows, head_rows) * m.in_features * m.out_features for m in linears)

    names = TASKS.split(",")
    requests = [(tasks[name].prompt(0), [0]) for name in names]
    prefills, steps, passes = [], [], []
    for _ in range(rounds):
        backend._prefills.clear()  # each round prefills again, as a fresh process does
        calls.clear()
        list(completion_stream(backend, requests, SamplingParams(max_new_tokens=16)))
        prefills.append([(width, s) for _, width, s in calls if width > 1])
        steps += [s for rows, width, s in calls if width == 1 and rows == len(names)]
        calls.clear()
        exact_record(backend, tasks["integer_1_1000"], 0, SamplingParams(), "key", "model")
        passes += [s for _, width, s in calls if width == TREE_NODES]  # the full passes
    print(f"model calls of the command beside their linear layers alone ({len(linears)} layers, "
          f"{weight_bytes / 1e6:.0f} MB of weights), medians of {rounds} rounds\n")
    print("| call | rows | call s | linears alone s | linears' rate | rest of the call s |\n|---|---|---|---|---|---|")
    for index, name in enumerate(names):
        width = prefills[0][index][0]
        call = statistics.median(round_[index][1] for round_ in prefills)
        alone = linears_alone(width, prefill_head_rows)
        print(f"| prefill, {name}'s prompt | {width} | {call:.3f} | {alone:.3f} | {flops(width, prefill_head_rows) / alone / 1e9:.0f} GFLOP/s "
              f"| {call - alone:.3f} |")
    step, alone = statistics.median(steps), linears_alone(len(names))
    print(f"| decoding step ({len(steps)} timed) | {len(names)} | {step:.3f} | {alone:.3f} | "
          f"{weight_bytes / alone / 1e9:.1f} GB/s of weights | {step - alone:.3f} |")
    trie, alone = statistics.median(passes), linears_alone(TREE_NODES)
    print(f"| trie pass, integer_1_1000 ({len(passes)} timed) | {TREE_NODES} | {trie:.3f} | {alone:.3f} | "
          f"{flops(TREE_NODES) / alone / 1e9:.0f} GFLOP/s | {trie - alone:.3f} |")


if __name__ == "__main__":
    if "--against" in sys.argv:
        at = sys.argv.index("--against")
        against(sys.argv[at + 1], int(sys.argv[at + 2]) if len(sys.argv) > at + 2 else 4)
    elif "--floors" in sys.argv:
        floors()
    elif "--collector" in sys.argv:
        collector()
    elif "--exit" in sys.argv:
        exit_times()
    else:
        main()
