"""The model options every command that loads a model takes, defined once (`with_model_options`).

A command declares a `model_options: ModelOptions` parameter and is decorated; its `--help` then lists the
same options under "Model" as every other such command, and it receives them as one `ModelOptions`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Optional

import typer

from respread.backends.options import ModelOptions
from respread.errors import RespreadError

PANEL = "Model (every command that loads one)"

_OPTIONS: list[tuple[str, object, object]] = [
    ("device", Annotated[str, typer.Option(help="auto (CUDA when available, else CPU), cpu, cuda, cuda:N or mps.", rich_help_panel=PANEL)], "auto"),
    ("dtype", Annotated[str, typer.Option(help="auto (bfloat16 on GPUs that have it, float32 on CPU), float32, bfloat16 or float16; training: the mixed precision.", rich_help_panel=PANEL)], "auto"),
    ("batch_size", Annotated[int, typer.Option(help="Sequences decoded or scored together.", rich_help_panel=PANEL)], 64),
    ("trust_remote_code", Annotated[bool, typer.Option("--trust-remote-code", help="Run the model repository's own code (off unless given).", rich_help_panel=PANEL)], False),
    ("revision", Annotated[Optional[str], typer.Option(help="Hub branch, tag or commit of --model.", rich_help_panel=PANEL)], None),
    ("adapter", Annotated[Optional[str], typer.Option(help="PEFT adapter (folder or hub id) loaded on --model and merged.", rich_help_panel=PANEL)], None),
    ("system_prompt", Annotated[Optional[str], typer.Option(help="System message for prompts that set none (the listed panel sets its own).", rich_help_panel=PANEL)], None),
    ("chat_template", Annotated[str, typer.Option(help="auto (the tokenizer's, if any), on, off (plain text; a reply ends at its line break) or a Jinja file.", rich_help_panel=PANEL)], "auto"),
    ("tensor_parallel_size", Annotated[int, typer.Option(help="GPUs one model is sharded over (--engine vllm).", rich_help_panel=PANEL)], 1),
    ("gpu_memory_utilization", Annotated[float, typer.Option(help="Share of GPU memory vLLM may take (--engine vllm).", rich_help_panel=PANEL)], 0.9),
    ("max_model_len", Annotated[Optional[int], typer.Option(help="Longest sequence vLLM plans for (--engine vllm).", rich_help_panel=PANEL)], None),
]
NAMES = [name for name, _, _ in _OPTIONS]


def with_model_options(command):
    """Give a typer command the shared model options; it receives them as `model_options: ModelOptions`."""
    signature = inspect.signature(command)
    kept = [p for p in signature.parameters.values() if p.name != "model_options"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind) for name, kind, default in _OPTIONS]

    @functools.wraps(command)
    def wrapper(**kwargs):
        values = {name: kwargs.pop(name) for name in NAMES}
        try:
            options = ModelOptions(**values)
        except RespreadError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        return command(model_options=options, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept] + added)
    return wrapper
