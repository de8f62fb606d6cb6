"""One small interface every engine implements: `sample` and `score`.

Everything in respread that needs a model goes through these two calls, so a new engine
(HTTP, vLLM) is one new module. A completion is a deterministic function of (prompt, seed, params):
the runner derives each sample's seed from (run seed, task, prompt, sample index), which is what makes an
interrupted run resume into exactly the draws an unbroken one would have made.
"""

from __future__ import annotations

import gc
import sys
from contextlib import contextmanager

from respread.errors import RespreadError
from respread.types import Backend, Completion, Prompt, SamplingParams

__all__ = ["Backend", "Completion", "Prompt", "SamplingParams", "load_backend"]


def load_backend(model: str, engine: str = "transformers", options=None, **overrides) -> Backend:
    """Build a backend by engine name; `model` is an alias, path, hub id or adapter folder (see `respread.models`).

    `options` is a `ModelOptions` (device, dtype, adapter, chat template, ...); keyword `overrides` of its fields
    win over it. `openai:NAME` is a model behind an OpenAI-compatible server (`base_url=`, or
    $OPENAI_BASE_URL); `engine="vllm"` runs it in-process with vLLM. Options an engine has no use for are dropped.
    """
    from respread.backends.options import ModelOptions

    if "chat_template" in overrides and not isinstance(overrides["chat_template"], str):  # the older True/False/None
        overrides["chat_template"] = {True: "on", False: "off", None: "auto"}[overrides["chat_template"]]
    fields = set(ModelOptions.__dataclass_fields__)
    merged = ModelOptions(**((options or ModelOptions()).as_dict() | {k: v for k, v in overrides.items() if k in fields}))
    if model.startswith("openai:"):
        from respread.backends.openai_http import OpenAIBackend

        return OpenAIBackend(model, options=merged, **{k: v for k, v in overrides.items() if k in HTTP_OPTIONS})
    if engine == "vllm":  # not under a paused collector: vLLM may fork its engine, and a child would keep it paused
        from respread.backends.vllm import VLLMBackend

        _quiet_weight_loading()
        return VLLMBackend(model, merged)
    if engine != "transformers":
        raise RespreadError(f"unknown backend engine '{engine}'; available: transformers, vllm (and openai:NAME models)")
    with _collector_paused():  # transformers is first imported here too
        from respread.backends.transformers import TransformersBackend

        _quiet_weight_loading()
        _freeze_model_stack()
        return TransformersBackend(model, merged)


def _quiet_weight_loading() -> None:
    """Weight-loading bars would bury respread's own progress; this turns them off for the whole process."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


@contextmanager
def _collector_paused():
    """Importing transformers' model machinery makes ~640k objects that live as long as the process, and a
    load makes ~25k more. The cyclic collector would walk that growing heap again and again while it is made,
    so it pauses until the model is loaded (see `_freeze_model_stack` for the collections after)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_model_stack_frozen = False


def _freeze_model_stack() -> None:
    """Import what a first model load would import lazily, then freeze every live object: never walked again.

    Collections walking the imports' ~640k objects took 0.62 s of the exact-mode eval here, 0.04–0.05 s with
    this (`benchmarks/profile_exact_process.py --collector`). The freeze comes before any backend exists:
    a load leaves cycles of frames (from exceptions raised and caught inside it) whose locals hold the
    backend, and those stay young and are collected, so a model is freed when its backend goes
    (`tests/test_model_slow.py`). The price: the imports' own garbage is frozen with them, 11.6k objects of
    8.1 MB (shallow sizes, counted by a `gc.collect()` right after the imports). Collecting it first would
    walk all 650k objects once more, which is the 0.2 s this saves.

    Only when this import is the process's first of transformers' model code, i.e. nothing model-sized ran
    before (a study that resumes at training imports it first): garbage left by such work, a trainer's
    cycles among them, must stay collectable, so that process is not frozen at all.
    """
    global _model_stack_frozen
    if _model_stack_frozen:
        return
    _model_stack_frozen = True  # first, so a second thread loading at once does not freeze its half-built model
    fresh = "transformers.modeling_utils" not in sys.modules
    import transformers.modeling_utils  # noqa: F401  (1,700 modules; the load adds only its architecture's)

    if fresh:
        gc.freeze()


HTTP_OPTIONS = {
    "base_url", "api_key_env", "endpoint", "tokenizer", "concurrency", "timeout", "max_retries", "samples_per_request", "sampling_extras",
}
