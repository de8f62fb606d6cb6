"""`respread eval`, `respread tasks`, `respread decompose`: measure."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from respread.cli._app import SERVED, app, console, err_console
from respread.backends.options import ModelOptions
from respread.cli.options import with_model_options
from respread.errors import RespreadError
from respread.records import write_artifact


@app.command("eval")
@with_model_options
def eval_command(
    model: str = typer.Option("smollm2-135m-instruct", help="Alias, local dir, .gguf file or hub id."),
    tasks: str = typer.Option("categorical", help="'categorical' or comma-separated task names."),
    samples: int = typer.Option(200, help="Samples per prompt."),
    temperature: float = typer.Option(1.0),
    top_p: float = typer.Option(1.0),
    top_k: int = typer.Option(0, help="0 = no top-k truncation."),
    min_p: float = typer.Option(0.0),
    max_new_tokens: Optional[int] = typer.Option(None, help="Default: each task's own (16 for the panel)."),
    exact: bool = typer.Option(False, "--exact", help="Also score closed tasks' exact answer distribution."),
    parse: str = typer.Option("strict", help="Headline parse: strict or lenient (the other is shown beside)."),
    seed: int = typer.Option(0),
    out: Path = typer.Option(..., help="Run directory; re-running into it resumes."),
    tasks_file: list[Path] = typer.Option([], "--tasks-file", help="YAML file of extra tasks (repeatable)."),
    prompts_file: list[Path] = typer.Option(
        [], "--prompts-file", help="JSONL of free-text prompts ({\"prompt\": ...} per line); runs as a text task."
    ),
    embed: bool = typer.Option(True, "--embed/--no-embed", help="Semantic metrics for text tasks."),
    embed_model: Optional[str] = typer.Option(None, help="sentence-transformers id/path (default: offline MiniLM)."),
    text_resamples: int = typer.Option(200, help="Subsampling replicates for text-metric CIs."),
    nli_model: Optional[str] = typer.Option(None, help="NLI classifier id/path: adds NLI diversity for text tasks."),
    cot: str = typer.Option("task", help="Chain of thought: task (as written), off:/on: + instruction, prefill or template."),
    gsm8k: Optional[str] = typer.Option(None, help="Adds task 'gsm8k': a GSM8K JSONL file or hub id (openai/gsm8k)."),
    gsm8k_subset: int = typer.Option(20, help="GSM8K problems (seeded subset)."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples for CIs."),
    engine: str = typer.Option("transformers", help="transformers (CPU/GPU, in-process) or vllm (GPU, in-process).", rich_help_panel=SERVED),
    base_url: Optional[str] = typer.Option(None, help="For --model openai:NAME: the server's /v1 URL (default $OPENAI_BASE_URL).", rich_help_panel=SERVED),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable holding the API key (never printed or recorded).", rich_help_panel=SERVED),
    endpoint: str = typer.Option("chat", help="chat (the server applies the chat template) or completions (needs --tokenizer).", rich_help_panel=SERVED),
    tokenizer: Optional[str] = typer.Option(None, help="The served model's tokenizer (alias, dir or hub id): for --endpoint completions and exact mode.", rich_help_panel=SERVED),
    concurrency: int = typer.Option(8, help="Requests in flight at once.", rich_help_panel=SERVED),
    timeout: float = typer.Option(120.0, help="Seconds per request before it counts as failed (then retried).", rich_help_panel=SERVED),
    retries: int = typer.Option(5, help="Retries per request on 408/409/429/5xx and dropped connections, with backoff.", rich_help_panel=SERVED),
    samples_per_request: int = typer.Option(1, help="n per request (servers that honour n; resumes then redraw).", rich_help_panel=SERVED),
    sampling_extras: bool = typer.Option(True, "--sampling-extras/--no-sampling-extras", help="Send top_k/min_p/repeat penalties (self-hosted engines); off for APIs that reject them.", rich_help_panel=SERVED),
    model_options: ModelOptions = None,
) -> None:
    """Sample tasks from a model and report how collapsed its answers are."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from respread.measure.figures import jsonable, run_metrics
    from respread.backends import load_backend
    from respread.measure.run import EvalConfig, run_eval
    from respread.report.summary import markdown, rich_table, text_tables, verifiable_table
    from respread.tasks import select_tasks_with_gsm8k

    if parse not in ("strict", "lenient"):
        raise RespreadError(f"--parse must be strict or lenient (got {parse!r})")
    if resamples < 1 or text_resamples < 1:
        raise RespreadError("--resamples and --text-resamples must be at least 1")
    if out.exists() and not out.is_dir():
        raise RespreadError(f"--out {out} exists and is not a directory")
    config = EvalConfig(
        model=model,
        tasks=select_tasks_with_gsm8k(tasks, tasks_file, prompts_file, gsm8k, gsm8k_subset, seed),
        samples=samples,
        cot=cot,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        exact=exact,
        chunk=model_options.batch_size,
        model_options=model_options,
    )

    nli = None  # loaded before sampling, so a bad NLI model fails before any expensive work
    if nli_model:
        from respread.metrics.semantic import load_nli_model

        try:
            from respread.backends.options import resolve_device

            nli = load_nli_model(nli_model, device=resolve_device(model_options.device))
        except (OSError, ValueError) as exc:
            raise RespreadError(f"cannot load NLI model '{nli_model}': {str(exc).strip().splitlines()[0]}") from exc

    def backend_factory():
        with console.status(f"loading {model}"):
            return load_backend(
                model, engine, options=model_options, base_url=base_url, api_key_env=api_key_env, endpoint=endpoint, tokenizer=tokenizer,
                concurrency=concurrency, timeout=timeout, max_retries=retries, samples_per_request=samples_per_request,
                sampling_extras=sampling_extras,
            )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=not err_console.is_terminal,
    ) as bar:
        bars: dict[str, int] = {}

        def progress(task_name: str, done: int, wanted: int) -> None:
            if task_name not in bars:
                bars[task_name] = bar.add_task(task_name, total=wanted)
            bar.update(bars[task_name], completed=done)

        run_eval(config, out, backend_factory, progress)
    metrics = jsonable(
        run_metrics(
            out,
            config,
            resamples=resamples,
            text_resamples=text_resamples,
            embed=embed,
            embed_model=embed_model,
            nli_model=nli,
        )
    )
    metrics["parse"] = parse
    write_artifact(out / "metrics.json", "eval", metrics)
    (out / "summary.md").write_text(markdown(metrics, parse), encoding="utf-8")
    if any(not t.get("text") and not t.get("verifiable") for t in metrics["tasks"].values()):
        console.print(rich_table(metrics, parse))
    if (table := verifiable_table(metrics, parse)) is not None:
        console.print(table)
    for table in text_tables(metrics):
        console.print(table)
    console.print(f"records: {out / 'samples.jsonl'} · metrics: {out / 'metrics.json'} · {out / 'summary.md'}")


@app.command("decompose")
def decompose_command(
    ref_run: Path = typer.Argument(..., help="Run directory of the reference (e.g. the base or SFT model)."),
    target_run: Path = typer.Argument(..., help="Run directory of the target (e.g. the RL model)."),
    tasks: Optional[str] = typer.Option(None, help="Comma-separated tasks (default: all shared)."),
    metric: str = typer.Option("auto", help="auto (entropy for answers, ead for text), entropy, distinct_answers, ead, distinct_2."),
    parse: str = typer.Option("strict", help="Which parse decides a categorical answer's validity."),
    resamples: int = typer.Option(200, help="Bootstrap resamples for CIs."),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="Also write the result as JSON here."),
) -> None:
    """Split the diversity drop REF -> TARGET into quality control and narrowing among correct outputs."""
    from respread.measure.figures import jsonable
    from respread.locate.decompose import decompose_runs
    from respread.report.decompose import decompose_table

    if parse not in ("strict", "lenient"):
        raise RespreadError(f"--parse must be strict or lenient (got {parse!r})")
    if resamples < 1:
        raise RespreadError("--resamples must be at least 1")
    selected = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    result = jsonable(
        decompose_runs(ref_run, target_run, tasks=selected, metric=metric, parse=parse, resamples=resamples, seed=seed)
    )
    console.print(decompose_table(result))
    if out:
        write_artifact(out, "decompose", result)


@app.command("tasks")
def tasks_command(
    tasks_file: list[Path] = typer.Option([], "--tasks-file", help="YAML file of extra tasks (repeatable)."),
) -> None:
    """List the available tasks."""
    from rich.table import Table

    from respread.tasks import GROUPS, AnswerParser, registry

    table = Table("task", "answers", "closed", "prompt", "description")
    for name, spec in registry(tasks_file).items():
        size = {
            "integer": f"{spec.low}..{spec.high}" if not spec.valid else f"{len(spec.valid)} in {spec.low}..{spec.high}",
            "text": f"free text, {len(spec.prompts)} prompts",
            "verifiable": f"one per prompt, {len(spec.prompts)} prompts",
        }.get(spec.answer_type) or str(len(AnswerParser(spec).support))
        table.add_row(name, size, "yes" if spec.is_closed else "no", spec.prompts[0], spec.description)
    console.print(table)
    groups = Table("group (use as --tasks)", "tasks")
    for group, names in GROUPS.items():
        groups.add_row(group, ", ".join(names))
    console.print(groups)
