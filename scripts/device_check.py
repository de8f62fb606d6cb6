"""Check that respread runs on a device: eval --exact in bfloat16, 2 training steps in bf16 with --save-adapter,
and --adapter loading equal to the merged model. One PASS/FAIL line per step; exit 1 if any failed.

The model is a tiny random-weight copy of the embedded model's architecture (its config with a 64-wide,
2-layer body, and its tokenizer): small enough to travel to a machine with no model hub (under 20 MB), and
fast anywhere. Build it once where the embedded model is installed, then run the checks wherever respread is:

    python scripts/device_check.py --build tiny-model              # here: writes the tiny model folder
    python scripts/device_check.py --model tiny-model --device cuda  # on the GPU machine (--device auto picks it)

Without --model the tiny model is built into a scratch folder first (what the tests do, on CPU).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TASKS = "integer_1_10,listed_card_suit"
TOLERANCE = 0.02  # bf16 rounding between the adapter applied at load and the same adapter merged and saved


def build_tiny_model(folder: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    from respread.models import resolve_model

    source = resolve_model("smollm2-135m-instruct").load_path
    config = AutoConfig.from_pretrained(source)
    config.update(dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16))
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def respread(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "respread.cli", *args], capture_output=True, text=True)


def exact_figures(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    return {task: figures["exact"]["tv_valid"] for task, figures in metrics["tasks"].items() if figures.get("exact")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, help="only build the tiny model into this folder")
    parser.add_argument("--model", type=Path, help="a tiny model folder built with --build")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--work", type=Path, help="where runs go (default: a scratch folder)")
    args = parser.parse_args()
    if args.build:
        print(f"built {build_tiny_model(args.build)}")
        return 0
    from respread.backends.options import resolve_device

    args.device = resolve_device(args.device)
    work = args.work or Path(tempfile.mkdtemp(prefix="respread-device-check-"))
    model = args.model or build_tiny_model(work / "tiny-model")
    common = ["--device", args.device, "--dtype", args.dtype]
    results = []

    def step(name: str, ok: bool, detail: str) -> bool:
        results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
        return ok

    done = respread("eval", "--model", str(model), "--tasks", TASKS, "--samples", "4", "--exact", "--out", str(work / "eval"), *common)
    ok = done.returncode == 0 and (work / "eval" / "metrics.json").is_file()
    step("eval --exact", ok, f"{args.dtype} on {args.device}: exact TV valid {exact_figures(work / 'eval')}" if ok else done.stderr.strip()[-300:])

    train = work / "train"
    done = respread("train", "--model", str(model), "--recipe", "diffuse", "--task", "integer_1_10", "--steps", "2", "--step-size", "4",
                    "--lora", "--save-adapter", "--lr", "1e-2", "--out", str(train), *common)
    adapter = train / "final"
    ok = done.returncode == 0 and (adapter / "adapter_config.json").is_file() and not (adapter / "model.safetensors").is_file()
    size = sum(p.stat().st_size for p in adapter.iterdir()) if adapter.is_dir() else 0
    step("train 2 steps --lora --save-adapter", ok, f"adapter folder {size / 2**20:.1f} MiB" if ok else done.stderr.strip()[-300:])

    if ok:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        merged = work / "merged"
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model), adapter).merge_and_unload().save_pretrained(merged)
        AutoTokenizer.from_pretrained(model).save_pretrained(merged)
        runs = {}
        for name, extra in (("adapter", ["--model", str(model), "--adapter", str(adapter)]), ("merged", ["--model", str(merged)])):
            done = respread("eval", *extra, "--tasks", "integer_1_10", "--samples", "2", "--exact", "--out", str(work / name), *common)
            runs[name] = exact_figures(work / name) if done.returncode == 0 else None
        ok = all(runs.values()) and abs(runs["adapter"]["integer_1_10"] - runs["merged"]["integer_1_10"]) <= TOLERANCE
        step("--adapter equals the merged model", ok, f"exact TV valid {runs} (tolerance {TOLERANCE})")
    else:
        step("--adapter equals the merged model", False, "no adapter to load")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
