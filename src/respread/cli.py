"""`respread` command line: thin wrappers that validate arguments, call the library, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from respread.errors import RespreadError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Measure and restore LLM output diversity.")
# Wide enough that the table never folds when output goes to a file or CI log.
console = Console(width=None if sys.stdout.isatty() else 220)
err_console = Console(stderr=True)


SERVED = "Served models (openai:NAME over HTTP, or --engine vllm)"


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)  # one unwrapped line, whatever the terminal width
    raise typer.Exit(code)


@app.command("eval")
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
    device: str = typer.Option("cpu"),
    dtype: str = typer.Option("float32"),
    batch_size: int = typer.Option(64, help="Sequences decoded together."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples for CIs."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code"),
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
) -> None:
    """Sample tasks from a model and report how collapsed its answers are."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from respread.analysis import jsonable, run_metrics
    from respread.backends import load_backend
    from respread.evaluate import EvalConfig, run_eval
    from respread.report.summary import markdown, rich_table, text_tables, verifiable_table
    from respread.tasks import select_tasks_with_gsm8k

    try:
        if parse not in ("strict", "lenient"):
            raise RespreadError(f"--parse must be strict or lenient (got {parse!r})")
        if batch_size < 1 or resamples < 1 or text_resamples < 1:
            raise RespreadError("--batch-size, --resamples and --text-resamples must be at least 1")
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
            chunk=batch_size,
        )

        nli = None  # loaded before sampling, so a bad NLI model fails before any expensive work
        if nli_model:
            from respread.metrics.semantic import load_nli_model

            try:
                nli = load_nli_model(nli_model, device=device)
            except (OSError, ValueError) as exc:
                raise RespreadError(f"cannot load NLI model '{nli_model}': {str(exc).strip().splitlines()[0]}") from exc

        def backend_factory():
            with console.status(f"loading {model}"):
                return load_backend(
                    model, engine, device=device, dtype=dtype, batch_size=batch_size, trust_remote_code=trust_remote_code,
                    base_url=base_url, api_key_env=api_key_env, endpoint=endpoint, tokenizer=tokenizer,
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
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
        (out / "summary.md").write_text(markdown(metrics, parse), encoding="utf-8")
        if any(not t.get("text") and not t.get("verifiable") for t in metrics["tasks"].values()):
            console.print(rich_table(metrics, parse))
        if (table := verifiable_table(metrics, parse)) is not None:
            console.print(table)
        for table in text_tables(metrics):
            console.print(table)
        console.print(f"records: {out / 'samples.jsonl'} · metrics: {out / 'metrics.json'} · {out / 'summary.md'}")
    except RespreadError as exc:
        _fail(str(exc))


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
    from respread.analysis import jsonable
    from respread.locate.decompose import decompose_runs
    from respread.report.decompose import decompose_table

    try:
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
            out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    except RespreadError as exc:
        _fail(str(exc))


@app.command("compare")
def compare_command(
    stages: list[str] = typer.Argument(..., help="Models (alias, path, hub id) or run directories, in lineage order."),
    label: list[str] = typer.Option([], "--label", help="A name per stage, in order (default: the stage's last path part)."),
    tasks: str = typer.Option("categorical,constrained", help="Tasks for model stages ('' with --gsm8k for GSM8K alone)."),
    samples: int = typer.Option(100, help="Samples per prompt for model stages."),
    temperature: float = typer.Option(1.0),
    top_p: float = typer.Option(1.0),
    min_p: float = typer.Option(0.0),
    exact: bool = typer.Option(True, "--exact/--no-exact", help="Exact distributions of closed tasks (sampling still feeds the decomposition)."),
    cot: str = typer.Option("task", help="Chain of thought for model stages: task, off:/on: + instruction, prefill or template."),
    gsm8k: Optional[str] = typer.Option(None, help="Adds task 'gsm8k' from a GSM8K JSONL file or hub id."),
    gsm8k_subset: int = typer.Option(20),
    parse: str = typer.Option("strict", help="strict or lenient: decides validity everywhere in the comparison."),
    resamples: int = typer.Option(200, help="Bootstrap resamples of each decomposition."),
    seed: int = typer.Option(0),
    tasks_file: list[Path] = typer.Option([], "--tasks-file"),
    out: Path = typer.Option(..., help="Output directory: stages/, compare.json, compare.md, compare.png; re-running resumes."),
) -> None:
    """Same tasks and settings across checkpoints: figures per stage, largest significant narrowing, decompositions, plot."""
    try:
        from respread.locate.compare import CompareConfig, run_compare
        from respread.report.compare import compare_rich_tables

        config = CompareConfig(
            stages=stages, labels=label or None, tasks=tasks, samples=samples, temperature=temperature, top_p=top_p,
            min_p=min_p, seed=seed, exact=exact, cot=cot, parse=parse, gsm8k=gsm8k, gsm8k_subset=gsm8k_subset,
            resamples=resamples, task_files=[str(p) for p in tasks_file],
        )
        result = run_compare(config, out, log=lambda message: err_console.print(message, markup=False, highlight=False, soft_wrap=True))
        for table in compare_rich_tables(result):
            console.print(table)
        console.print(f"compare: {out / 'compare.md'} · {out / 'compare.json'} · {result['plot'] or 'no plot'} · wall {result['wall_seconds']:.0f} s")
    except RespreadError as exc:
        _fail(str(exc))


@app.command("check")
def check_command(
    new: str = typer.Argument(..., help="New run directory, or a model to evaluate with OLD's tasks and settings (then --out)."),
    against: Path = typer.Option(..., "--against", help="Old (baseline) run directory."),
    max_drop: list[str] = typer.Option([], "--max-drop", help="Allowed drop: 0.05 for every figure, or figure=value (repeatable)."),
    alpha: float = typer.Option(0.05, help="Significance level, Holm-adjusted over every tested figure."),
    permutations: int = typer.Option(2000, help="Permutations per test (text figures use at most 500)."),
    parse: str = typer.Option("strict", help="Parse that decides categorical answers: strict or lenient."),
    tasks: Optional[str] = typer.Option(None, help="Comma-separated tasks (default: every task both runs hold)."),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="Run directory for NEW when NEW is a model; re-running resumes."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the verdict here as JSON (for CI systems)."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Write the table here as Markdown."),
) -> None:
    """Gate: exit 1 when diversity dropped from OLD to NEW beyond --max-drop with significance; 0 when not."""
    from respread.analysis import config_like
    from respread.locate.gate import GateConfig, check_runs, parse_max_drop, write_verdict
    from respread.report.gate import gate_markdown, gate_rich_table, gate_summary

    log = lambda message: err_console.print(message, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    try:
        config = GateConfig(
            parse=parse, max_drop=parse_max_drop(max_drop), alpha=alpha, permutations=permutations, seed=seed,
            tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
        )
        from respread.evaluate import RUN_FILE

        if not (against / RUN_FILE).is_file():
            raise RespreadError(f"--against {against} is not a respread run directory (no {RUN_FILE})")
        new_dir = Path(new)
        if not (new_dir / RUN_FILE).is_file():
            if out is None:
                raise RespreadError(f"{new} is not a run directory; to evaluate it as a model against {against}, add --out DIR")
            from respread.analysis import evaluate_into

            log(f"[check] evaluating {new} with the tasks and settings of {against} into {out}")
            evaluate_into(config_like(against, new), out, parse, log=log, label="check")
            new_dir = out
        elif out is not None:
            raise RespreadError(f"--out is for a model NEW; {new} is already a run directory")
        verdict = check_runs(new_dir, against, config, log=log)
        console.print(gate_rich_table(verdict))
        console.print(gate_summary(verdict), markup=False, highlight=False, soft_wrap=True)
        if json_out:
            write_verdict(verdict, json_out)
        if markdown_out:
            markdown_out.parent.mkdir(parents=True, exist_ok=True)
            markdown_out.write_text(gate_markdown(verdict), encoding="utf-8")
    except RespreadError as exc:
        _fail(str(exc))
    except (ValueError, KeyError, OSError) as exc:  # a damaged run folder or an unwritable path: input, not a verdict
        detail = str(exc).splitlines()[0] if str(exc) else ""
        _fail(f"cannot compare {new} against {against}: {type(exc).__name__} {detail}".rstrip())
    if not verdict["passed"]:
        raise typer.Exit(1)


@app.command("train")
def train_command(
    recipe: str = typer.Option("diffuse", help="Starting settings: diffuse (the default arm), published (the published GRPO recipe, full size) or grpo; every option below overrides one value."),
    model: str = typer.Option("smollm2-135m-instruct", help="Alias, local dir, .gguf file or hub id (GGUF: trains the cached fp32 copy)."),
    task: Optional[str] = typer.Option(None, help="The one task to train on (any task, also from --tasks-file). Recipes: listed_integer_1_100."),
    reward: Optional[list[str]] = typer.Option(
        None, "--reward", help="validity, spread-group, spread-history, log-rarity or darling, optionally kind:weight (repeatable); implies --method grpo."
    ),
    reward_option: Optional[list[str]] = typer.Option(None, "--reward-option", help="KIND.NAME=VALUE, e.g. log-rarity.invalid_penalty=2 (repeatable)."),
    method: Optional[str] = typer.Option(None, help="grpo (TRL GRPOTrainer with --reward) or diffuse (match a closed task's exact distribution to uniform)."),
    lora: Optional[bool] = typer.Option(None, "--lora/--full", help="LoRA adapters (merged into the saved model) or full fine-tune."),
    lora_rank: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    beta: Optional[float] = typer.Option(None, help="KL coefficient to the reference model (0: no reference model, TRL's default)."),
    loss_type: Optional[str] = typer.Option(None, help="TRL's loss aggregation: dapo (TRL's default), dr_grpo (a plain sum up to a constant), grpo, bnpo."),
    max_grad_norm: Optional[float] = typer.Option(None, help="Gradient clipping norm (0: none)."),
    steps: Optional[int] = typer.Option(None),
    group_size: Optional[int] = typer.Option(None, help="Completions per prompt (GRPO group)."),
    batch_size: Optional[int] = typer.Option(None, help="Completions per optimizer step (diffuse: answers per step)."),
    max_completion_length: Optional[int] = typer.Option(None, help="Default: the task's own max_new_tokens."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature of the GRPO rollouts."),
    parse: Optional[str] = typer.Option(None, help="Parse that decides validity in the rewards (published: lenient)."),
    seed: int = typer.Option(0),
    save_every: int = typer.Option(10, help="Checkpoint every N steps."),
    monitor_every: int = typer.Option(10, help="Collapse monitor every N steps."),
    shared_prompt: bool = typer.Option(True, "--shared-prompt/--no-shared-prompt", help="Run each distinct prompt of a batch once (loss and rollouts)."),
    tasks_file: list[Path] = typer.Option([], "--tasks-file", help="YAML file of extra tasks (repeatable)."),
    device: str = typer.Option("cpu"),
    out: Path = typer.Option(..., help="Run directory: checkpoints/, final/, monitor.jsonl, train.json."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    vllm_server: Optional[str] = typer.Option(None, help="URL of `trl vllm-serve`: GRPO rollouts generated there (GPU machines)."),
) -> None:
    """Train ONE task towards spread with TRL (diffuse matching, or GRPO with respread's rewards)."""
    try:
        from respread.restore.recipes import train_settings
        from respread.restore.train import TrainConfig, run_train

        settings = train_settings(recipe, dict(
            task=task, rewards=reward, reward_options=_reward_options(reward_option), method=method, lora=lora,
            lora_rank=lora_rank, learning_rate=lr, beta=beta, loss_type=loss_type, max_grad_norm=max_grad_norm, steps=steps,
            group_size=group_size, batch_size=batch_size, max_completion_length=max_completion_length,
            temperature=temperature, parse=parse,
        ))
        config = TrainConfig(
            model=model, seed=seed, save_every=save_every, monitor_every=monitor_every, task_files=[str(p) for p in tasks_file],
            device=device, vllm_server=vllm_server, shared_prompt=shared_prompt, **settings,
        )
        record = run_train(config, out, resume=resume)
        console.print(
            f"trained {config.steps} steps in {record['wall_seconds']:.0f} s · model: {record['final_model']} · "
            f"record: {out / 'train.json'} · monitor: {out / 'monitor.jsonl'}"
        )
    except ImportError as exc:
        _fail(f"training needs the train extra ({exc.name} is missing): pip install 'respread[train]'")
    except RespreadError as exc:
        _fail(str(exc))


def _reward_options(items: list[str] | None) -> dict | None:
    """`KIND.NAME=VALUE` items as {kind: {name: value}}; values are numbers where they parse as one."""
    if not items:
        return None
    options: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        kind, dot, name = key.partition(".")
        if not (sep and dot and kind and name):
            raise RespreadError(f"--reward-option '{item}': write KIND.NAME=VALUE, e.g. log-rarity.invalid_penalty=2")
        try:
            parsed: object = float(value)
        except ValueError:
            parsed = value
        options.setdefault(kind, {})[name] = parsed
    return options


@app.command("capability")
def capability_command(
    model: str = typer.Option("smollm2-135m-instruct", help="Alias, local dir, .gguf file or hub id."),
    mmlu: Optional[str] = typer.Option(None, help="MMLU: a folder of test/*.csv (as distributed) or a hub id (cais/mmlu)."),
    gsm8k: Optional[str] = typer.Option(None, help="GSM8K: a JSONL file (question, answer) or a hub id (openai/gsm8k)."),
    reference: Optional[str] = typer.Option(None, help="Original model: adds the mean KL(original || model) on neutral prompts."),
    mmlu_subset: int = typer.Option(100, help="MMLU questions (seeded subset)."),
    gsm8k_subset: int = typer.Option(20, help="GSM8K problems (seeded subset)."),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="Also write the result as JSON here."),
) -> None:
    """Did capabilities hold? MMLU (log-prob of the choices), GSM8K accuracy, KL from the original model."""
    try:
        from respread.restore.capability import capability_report

        if not (mmlu or gsm8k or reference):
            raise RespreadError("give at least one of --mmlu, --gsm8k or --reference")
        report = capability_report(
            model, mmlu=mmlu, gsm8k=gsm8k, reference=reference, mmlu_subset=mmlu_subset, gsm8k_subset=gsm8k_subset,
            seed=seed, progress=lambda message: err_console.print(message, markup=False, highlight=False, soft_wrap=True),
        )
        from respread.report.study import capability_markdown

        console.print(capability_markdown({model: report}))
        if out:
            out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    except RespreadError as exc:
        _fail(str(exc))


@app.command("study")
def study_command(
    model: str = typer.Option("smollm2-135m-instruct", help="Alias, local dir, .gguf file or hub id."),
    task: str = typer.Option("listed_integer_1_100", help="The one task trained on."),
    panel: str = typer.Option("listed", help="Tasks measured before and after ('listed': the published panel, all exact; 'categorical'; or names)."),
    arm: list[str] = typer.Option(
        ["diffuse"], "--arm", help="A recipe (diffuse, published, grpo) or GRPO reward kinds joined by + (kind:weight) (repeatable)."
    ),
    seeds: Optional[str] = typer.Option(None, help="Training seeds, e.g. 0,1,2: each arm trained once per seed (default: --seed)."),
    samples: int = typer.Option(100, help="Samples per prompt for sampled (open-task) figures."),
    steps: Optional[int] = typer.Option(None, help="Default: each arm's recipe (diffuse 40, published 50, grpo 40)."),
    lr: Optional[float] = typer.Option(None, help="Default: each arm's recipe (2e-5)."),
    group_size: Optional[int] = typer.Option(None, help="Default: each arm's recipe."),
    batch_size: Optional[int] = typer.Option(None, help="Default: each arm's recipe."),
    max_completion_length: Optional[int] = typer.Option(None, help="Rollout length while training (default: each arm's recipe, 8)."),
    lora: Optional[bool] = typer.Option(None, "--lora/--full", help="Default: each arm's recipe (published: LoRA)."),
    high_temperature: float = typer.Option(1.5, help="The untrained model is also measured at this temperature."),
    monitor_every: int = typer.Option(5),
    mmlu: Optional[str] = typer.Option(None, help="MMLU folder or hub id, for capability before/after."),
    gsm8k: Optional[str] = typer.Option(None, help="GSM8K JSONL or hub id, for capability before/after."),
    mmlu_subset: int = typer.Option(100),
    gsm8k_subset: int = typer.Option(20),
    parse: str = typer.Option("strict", help="Parse for sampled figures (and for GRPO reward arms)."),
    seed: int = typer.Option(0, help="Eval seed (request ids, samples) and the first training seed."),
    quick: bool = typer.Option(False, "--quick", help="Smoke test: 4 tasks, 8 samples, 2 tiny steps, tiny capability subsets."),
    tasks_file: list[Path] = typer.Option([], "--tasks-file"),
    out: Path = typer.Option(..., help="Study directory; re-running into it continues where it stopped."),
) -> None:
    """Eval the panel, train on one task (per arm and seed), eval again, compare with T=1.5, check capabilities."""
    try:
        from respread.restore.study import StudyConfig, run_study
        from respread.report.study import seed_rich_table, study_rich_table

        options = dict(
            model=model, arms=arm, lora=lora, high_temperature=high_temperature, seed=seed, seeds=_ints(seeds, "--seeds"),
            mmlu=mmlu, gsm8k=gsm8k, parse=parse, task_files=[str(p) for p in tasks_file],
        )
        if quick:
            config = StudyConfig.quick(**options, **({"learning_rate": lr} if lr is not None else {}))
        else:
            config = StudyConfig(
                task=task, panel=panel, samples=samples, steps=steps, learning_rate=lr, group_size=group_size,
                batch_size=batch_size, max_completion_length=max_completion_length, monitor_every=monitor_every,
                mmlu_subset=mmlu_subset, gsm8k_subset=gsm8k_subset, **options,
            )
        result = run_study(config, out, log=lambda message: err_console.print(message, markup=False, highlight=False, soft_wrap=True))
        console.print(study_rich_table(result))
        if len(config.training_seeds) > 1:
            console.print(seed_rich_table(result))
        console.print(f"study: {out / 'report.html'} · {out / 'study.md'} · {out / 'study.json'} · wall {result['wall_seconds']:.0f} s")
    except ImportError as exc:
        _fail(f"the study needs the train extra ({exc.name} is missing): pip install 'respread[train]'")
    except RespreadError as exc:
        _fail(str(exc))


def _ints(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RespreadError(f"{option} takes comma-separated integers, e.g. 0,1,2 (got {text!r})") from None
    if not values:
        raise RespreadError(f"{option} takes comma-separated integers, e.g. 0,1,2 (got {text!r})")
    return values


@app.command("baselines")
def baselines_command(
    model: str = typer.Option("smollm2-135m-instruct", help="Alias, local dir, .gguf file or hub id."),
    panel: str = typer.Option("categorical", help="Categorical tasks ('categorical' or comma-separated names)."),
    method: list[str] = typer.Option(
        ["sweep", "logit-bias", "verbalized", "seeded"], "--method", help="sweep, logit-bias, verbalized, seeded (repeatable)."
    ),
    samples: int = typer.Option(100, help="Samples per task for every sampled figure (closed tasks are exact in sweeps)."),
    temperatures: str = typer.Option("0.7,1,1.5,2", help="Sweep temperatures, comma-separated."),
    top_p: str = typer.Option("0.9", help="Top-p values, each tried at every sweep temperature ('' for none)."),
    min_p: str = typer.Option("0.1", help="Min-p values, each tried at every sweep temperature ('' for none)."),
    fit_task: str = typer.Option("integer_1_100", help="Closed task the logit bias is fitted on."),
    logit_bias: Optional[Path] = typer.Option(None, help="Apply this saved logit-bias file instead of fitting one."),
    verbalized_k: int = typer.Option(5, help="Responses asked for in each verbalized-sampling reply."),
    verbalized_max_tokens: int = typer.Option(192),
    verbalized_samples: Optional[int] = typer.Option(None, help="Verbalized replies per task (default: --samples)."),
    parse: str = typer.Option("strict", help="Parse for sampled figures: strict or lenient."),
    seed: int = typer.Option(0),
    tasks_file: list[Path] = typer.Option([], "--tasks-file"),
    out: Path = typer.Option(..., help="Output directory; re-running into it continues where it stopped."),
) -> None:
    """Every fix that needs no training (sampling sweeps, logit correction, verbalized sampling, seeded prompts)."""
    try:
        from respread.restore.baselines.runner import BaselinesConfig, run_baselines
        from respread.report.baselines import baselines_rich_table

        config = BaselinesConfig(
            model=model, panel=panel, samples=samples, methods=method, temperatures=_floats(temperatures, "--temperatures"),
            top_ps=_floats(top_p, "--top-p"), min_ps=_floats(min_p, "--min-p"), fit_task=fit_task,
            logit_bias_file=str(logit_bias) if logit_bias else None, verbalized_k=verbalized_k,
            verbalized_max_tokens=verbalized_max_tokens, verbalized_samples=verbalized_samples, parse=parse, seed=seed, task_files=[str(p) for p in tasks_file],
        )
        result = run_baselines(config, out, log=lambda message: err_console.print(message, markup=False, highlight=False, soft_wrap=True))
        console.print(baselines_rich_table(result))
        console.print(f"baselines: {out / 'baselines.md'} · {out / 'baselines.json'} · wall {result['wall_seconds']:.0f} s")
    except ImportError as exc:
        _fail(f"the Pareto plot needs matplotlib ({exc.name} is missing): pip install 'respread[train]'")
    except RespreadError as exc:
        _fail(str(exc))


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise RespreadError(f"{option} takes comma-separated numbers (got {text!r})") from exc


@app.command("report")
def report_command(
    runs: list[Path] = typer.Argument(..., help="Run directories (eval, study, compare, baselines, train) or decompose/capability JSON files."),
    out: Path = typer.Option(Path("report.html"), help="The HTML page; charts go as PNG and SVG into <name>_figures/ beside it."),
    screenshot: Optional[Path] = typer.Option(None, help="Also save a PNG of the page's first screen as headless Chromium shows it."),
    full_page: bool = typer.Option(False, "--full-page", help="Screenshot the whole page, not the first screen."),
) -> None:
    """One self-contained HTML page of charts and tables from respread's outputs (no network needed to open it)."""
    try:
        from respread.report.page import build_report

        if screenshot and screenshot.suffix.lower() != ".png":
            raise RespreadError(f"--screenshot {screenshot} must end in .png")
        with console.status("drawing the report"):
            page = build_report(runs, out)
        console.print(f"report: {page} · charts (PNG, SVG): {page.parent / (page.stem + '_figures')}")
        if screenshot:
            from respread.report.browser import screenshot as take_screenshot

            console.print(f"screenshot: {take_screenshot(page, screenshot, full_page=full_page)}")
    except RespreadError as exc:
        _fail(str(exc))


@app.command("tasks")
def tasks_command(
    tasks_file: list[Path] = typer.Option([], "--tasks-file", help="YAML file of extra tasks (repeatable)."),
) -> None:
    """List the available tasks."""
    from rich.table import Table

    from respread.tasks import AnswerParser, registry

    try:
        table = Table("task", "answers", "closed", "prompt", "description")
        for name, spec in registry(tasks_file).items():
            size = {
                "integer": f"{spec.low}..{spec.high}" if not spec.valid else f"{len(spec.valid)} in {spec.low}..{spec.high}",
                "text": f"free text, {len(spec.prompts)} prompts",
                "verifiable": f"one per prompt, {len(spec.prompts)} prompts",
            }.get(spec.answer_type) or str(len(AnswerParser(spec).support))
            table.add_row(name, size, "yes" if spec.is_closed else "no", spec.prompts[0], spec.description)
        console.print(table)
    except RespreadError as exc:
        _fail(str(exc))


def main() -> None:
    """The `respread` console command. It ends the process (see `_exit_without_teardown`): from Python, call
    `app(standalone_mode=False)` instead."""
    try:
        app()
    except SystemExit as exc:
        _exit_without_teardown(exc.code)
    _exit_without_teardown(0)


def _exit_without_teardown(code) -> None:
    """Exit as `sys.exit(code)` would, less the interpreter's teardown.

    Every file is written and closed by now; the teardown would only free, one by one, each object torch
    and transformers made: 0.22–0.34 s after the exact-mode eval here, against 0.05–0.09 s this way
    (three runs of `benchmarks/profile_exact_process.py --exit`). Exit handlers still run and the streams
    are flushed (a reader gone from the pipe turns exit 0 into 120, as the interpreter does). The ordinary
    exit stays where something may still run after `main` returns or at teardown: a live non-daemon thread,
    a profiler, tracer or `sys.monitoring` tool (`python -m cProfile` writes its file then), `python -i`,
    or vLLM, whose engine may clean up in finalizers.
    """
    import atexit
    import os
    import threading

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's and PyPy's own entry point for this
    monitoring = getattr(sys, "monitoring", None)
    if (
        run_exit_handlers is None
        or any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread())
        or sys.getprofile() is not None
        or sys.gettrace() is not None
        or (monitoring is not None and any(monitoring.get_tool(tool) for tool in range(6)))
        or sys.flags.inspect
        or "vllm" in sys.modules
    ):
        raise SystemExit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # what the interpreter does with sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            code = code or 120
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
