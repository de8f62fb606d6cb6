"""Samples per second through the HTTP backend vs the local transformers backend, in one run.

The same model (the embedded SmolLM2-135M-Instruct GGUF), prompts and settings (T=1, no truncation,
16 new tokens) are sampled twice: in-process by respread's transformers sampler, and through
llama-cpp-python's OpenAI-compatible server on 127.0.0.1 (`python -m llama_cpp.server`, started here,
2 threads) by `OpenAIBackend` with `--concurrency` requests in flight. The server is started before the
local run and idles during it; both use the same 2 cores, one at a time. Ratio = HTTP / local samples/s.

Run: python benchmarks/bench_http.py [--samples 64] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request

from respread.backends import Prompt, SamplingParams, load_backend
from respread.models import ALIASES

PROMPTS = [
    "Pick a random integer between 1 and 10. Reply with only the number.",
    "Name a random color. Reply with only the color.",
    "Name a random animal. Reply with only the animal.",
    "Pick a random integer between 1 and 100. Reply with only the number.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    gguf = ALIASES["smollm2-135m-instruct"].locate()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "2", "--model_alias", "smollm2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
            return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("llama_cpp.server did not start (pip install 'llama-cpp-python[server]')")


def rate(backend, requests, params) -> tuple[float, int]:
    started = time.perf_counter()
    replies = backend.sample_many(requests, params)
    seconds = time.perf_counter() - started
    count = sum(len(r) for r in replies)
    return count / seconds, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=64, help="samples per prompt")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    params = SamplingParams(temperature=1.0, max_new_tokens=16)
    requests = [(Prompt(p), list(range(i * 10_000, i * 10_000 + args.samples))) for i, p in enumerate(PROMPTS)]
    port = free_port()
    server = start_server(port)
    try:
        local = load_backend("smollm2-135m-instruct", batch_size=64)
        rate(local, [(Prompt(PROMPTS[0]), [0, 1])], params)  # warm-up
        local_rate, n = rate(local, requests, params)
        del local
        http = load_backend("openai:smollm2", base_url=f"http://127.0.0.1:{port}/v1", concurrency=args.concurrency)
        rate(http, [(Prompt(PROMPTS[0]), [0, 1])], params)
        http_rate, _ = rate(http, requests, params)
    finally:
        server.kill()
    print(f"{n} samples ({len(PROMPTS)} prompts × {args.samples}), T=1, 16 new tokens max, same machine, one at a time")
    print(f"local transformers backend (batch 64):                 {local_rate:7.2f} samples/s")
    print(f"HTTP backend → llama-cpp-python server (concurrency {args.concurrency}): {http_rate:7.2f} samples/s")
    print(f"ratio HTTP / local: {http_rate / local_rate:.2f}×")


if __name__ == "__main__":
    main()
