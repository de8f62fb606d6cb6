"""`respread train`, `respread study`, `respread baselines`, `respread capability`: restore, and did it cost?"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from respread.cli._app import SERVED, app, console, log_line
from respread.backends.options import ModelOptions
from respread.cli.options import with_model_options
from respread.errors import RespreadError
from respread.records import write_artifact


@app.command("train")
@with_model_options
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
    step_size: Optional[int] = typer.Option(None, help="Completions per optimizer step (diffuse: answers per step)."),
    micro_batch_size: Optional[int] = typer.Option(None, help="Rows per forward/backward, when a step does not fit in memory (gradient accumulation)."),
    max_completion_length: Optional[int] = typer.Option(None, help="Default: the task's own max_new_tokens."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature of the GRPO rollouts."),
    parse: Optional[str] = typer.Option(None, help="Parse that decides validity in the rewards (published: lenient)."),
    seed: int = typer.Option(0),
    save_every: int = typer.Option(10, help="Checkpoint every N steps."),
    monitor_every: int = typer.Option(10, help="Collapse monitor every N steps."),
    shared_prompt: bool = typer.Option(True, "--shared-prompt/--no-shared-prompt", help="Run each distinct prompt of a batch once (loss and rollouts)."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="Recompute activations in the backward pass (less memory, more time; turns the shared-prompt step off)."),
    report_to: list[str] = typer.Option([], "--report-to", help="Trainer loggers: tensorboard, wandb, ... (repeatable; default none)."),
    save_adapter: bool = typer.Option(False, "--save-adapter", help="LoRA: save final/ as the small PEFT adapter (load it with --adapter or --model) instead of a merged copy."),
    tasks_file: list[Path] = typer.Option([], "--tasks-file", help="YAML file of extra tasks (repeatable)."),
    out: Path = typer.Option(..., help="Run directory: checkpoints/, final/, monitor.jsonl, train.json."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    vllm_server: Optional[str] = typer.Option(None, help="URL of `trl vllm-serve`: GRPO rollouts generated there (GPU machines)."),
    model_options: ModelOptions = None,
) -> None:
    """Train ONE task towards spread with TRL (diffuse matching, or GRPO with respread's rewards)."""
    from respread.restore.recipes import train_settings
    from respread.restore.train import TrainConfig, run_train

    settings = train_settings(recipe, dict(
        task=task, rewards=reward, reward_options=_reward_options(reward_option), method=method, lora=lora,
        lora_rank=lora_rank, learning_rate=lr, beta=beta, loss_type=loss_type, max_grad_norm=max_grad_norm, steps=steps,
        group_size=group_size, batch_size=step_size, micro_batch_size=micro_batch_size,
        max_completion_length=max_completion_length, temperature=temperature, parse=parse,
    ))
    config = TrainConfig(
        model=model, seed=seed, save_every=save_every, monitor_every=monitor_every, task_files=[str(p) for p in tasks_file],
        vllm_server=vllm_server, shared_prompt=shared_prompt, gradient_checkpointing=gradient_checkpointing,
        report_to=report_to, save_adapter=save_adapter, **training_model_options(model_options), **settings,
    )
    record = run_train(config, out, resume=resume)
    console.print(
        f"trained {config.steps} steps in {record['wall_seconds']:.0f} s · model: {record['final_model']} · "
        f"record: {out / 'train.json'} · monitor: {out / 'monitor.jsonl'}"
    )

def training_model_options(options: ModelOptions) -> dict:
    """The model options a training run takes (the vLLM engine's and the batch size are for evaluation)."""
    keep = ("device", "dtype", "trust_remote_code", "revision", "adapter", "chat_template", "system_prompt")
    return {k: getattr(options, k) for k in keep}


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
@with_model_options
def capability_command(
    model: str = typer.Option("smollm2-135m-instruct", help="Alias, local dir, .gguf file or hub id."),
    mmlu: Optional[str] = typer.Option(None, help="MMLU: a folder of test/*.csv (as distributed) or a hub id (cais/mmlu)."),
    gsm8k: Optional[str] = typer.Option(None, help="GSM8K: a JSONL file (question, answer) or a hub id (openai/gsm8k)."),
    reference: Optional[str] = typer.Option(None, help="Original model: adds the mean KL(original || model) on neutral prompts."),
    mmlu_subset: int = typer.Option(100, help="MMLU questions (seeded subset)."),
    gsm8k_subset: int = typer.Option(20, help="GSM8K problems (seeded subset)."),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="Also write the result as JSON here."),
    engine: str = typer.Option("transformers", help="transformers or vllm (the KL check needs transformers).", rich_help_panel=SERVED),
    model_options: ModelOptions = None,
) -> None:
    """Did capabilities hold? MMLU (log-prob of the choices), GSM8K accuracy, KL from the original model."""
    from respread.measure.capability import capability_report

    if not (mmlu or gsm8k or reference):
        raise RespreadError("give at least one of --mmlu, --gsm8k or --reference")
    report = capability_report(
        model, mmlu=mmlu, gsm8k=gsm8k, reference=reference, mmlu_subset=mmlu_subset, gsm8k_subset=gsm8k_subset,
        seed=seed, options=model_options, engine=engine, progress=log_line,
    )
    from respread.report.study import capability_markdown

    console.print(capability_markdown({model: report}))
    if out:
        write_artifact(out, "capability", {"models": {model: report}})


@app.command("study")
@with_model_options
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
    step_size: Optional[int] = typer.Option(None, help="Completions (diffuse: answers) per optimizer step; default: each arm's recipe."),
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
    model_options: ModelOptions = None,
) -> None:
    """Eval the panel, train on one task (per arm and seed), eval again, compare with T=1.5, check capabilities."""
    from respread.restore.study import StudyConfig
    from respread.workflows.study import run_study
    from respread.report.study import seed_rich_table, study_rich_table

    options = dict(
        model=model, arms=arm, lora=lora, high_temperature=high_temperature, seed=seed, seeds=_ints(seeds, "--seeds"),
        mmlu=mmlu, gsm8k=gsm8k, parse=parse, task_files=[str(p) for p in tasks_file], model_options=model_options,
    )
    if quick:
        config = StudyConfig.quick(**options, **({"learning_rate": lr} if lr is not None else {}))
    else:
        config = StudyConfig(
            task=task, panel=panel, samples=samples, steps=steps, learning_rate=lr, group_size=group_size,
            batch_size=step_size, max_completion_length=max_completion_length, monitor_every=monitor_every,
            mmlu_subset=mmlu_subset, gsm8k_subset=gsm8k_subset, **options,
        )
    result = run_study(config, out, log=log_line)
    console.print(study_rich_table(result))
    if len(config.training_seeds) > 1:
        console.print(seed_rich_table(result))
    console.print(f"study: {out / 'report.html'} · {out / 'study.md'} · {out / 'study.json'} · wall {result['wall_seconds']:.0f} s")

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
@with_model_options
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
    model_options: ModelOptions = None,
) -> None:
    """Every fix that needs no training (sampling sweeps, logit correction, verbalized sampling, seeded prompts)."""
    from respread.workflows.baselines import BaselinesConfig, run_baselines
    from respread.report.baselines import baselines_rich_table

    config = BaselinesConfig(
        model=model, panel=panel, samples=samples, methods=method, temperatures=_floats(temperatures, "--temperatures"),
        top_ps=_floats(top_p, "--top-p"), min_ps=_floats(min_p, "--min-p"), fit_task=fit_task,
        logit_bias_file=str(logit_bias) if logit_bias else None, verbalized_k=verbalized_k,
        verbalized_max_tokens=verbalized_max_tokens, verbalized_samples=verbalized_samples, parse=parse, seed=seed,
        task_files=[str(p) for p in tasks_file], model_options=model_options,
    )
    result = run_baselines(config, out, log=log_line)
    console.print(baselines_rich_table(result))
    console.print(f"baselines: {out / 'baselines.md'} · {out / 'baselines.json'} · wall {result['wall_seconds']:.0f} s")

def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise RespreadError(f"{option} takes comma-separated numbers (got {text!r})") from exc


