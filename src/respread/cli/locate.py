"""`respread compare` and `respread check`: where diversity was lost, and a gate against losing it again."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from respread.cli._app import app, console, fail as _fail, log_line
from respread.backends.options import ModelOptions
from respread.cli.options import with_model_options
from respread.errors import RespreadError


@app.command("compare")
@with_model_options
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
    model_options: ModelOptions = None,
) -> None:
    """Same tasks and settings across checkpoints: figures per stage, largest significant narrowing, decompositions, plot."""
    from respread.locate.compare import CompareConfig
    from respread.workflows.compare import run_compare
    from respread.report.compare import compare_rich_tables

    config = CompareConfig(
        stages=stages, labels=label or None, tasks=tasks, samples=samples, temperature=temperature, top_p=top_p,
        min_p=min_p, seed=seed, exact=exact, cot=cot, parse=parse, gsm8k=gsm8k, gsm8k_subset=gsm8k_subset,
        resamples=resamples, task_files=[str(p) for p in tasks_file], model_options=model_options,
    )
    result = run_compare(config, out, log=log_line)
    for table in compare_rich_tables(result):
        console.print(table)
    console.print(f"compare: {out / 'compare.md'} · {out / 'compare.json'} · {result['plot'] or 'no plot'} · wall {result['wall_seconds']:.0f} s")


@app.command("check")
@with_model_options
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
    model_options: ModelOptions = None,
) -> None:
    """Gate: exit 1 when diversity dropped from OLD to NEW beyond --max-drop with significance; 0 when not."""
    from respread.measure.figures import config_like
    from respread.locate.gate import GateConfig, check_runs, parse_max_drop, write_verdict
    from respread.report.gate import gate_markdown, gate_rich_table, gate_summary

    log = log_line
    try:
        config = GateConfig(
            parse=parse, max_drop=parse_max_drop(max_drop), alpha=alpha, permutations=permutations, seed=seed,
            tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
        )
        from respread.measure.run import RUN_FILE

        if not (against / RUN_FILE).is_file():
            raise RespreadError(f"--against {against} is not a respread run directory (no {RUN_FILE})")
        new_dir = Path(new)
        if not (new_dir / RUN_FILE).is_file():
            if out is None:
                raise RespreadError(f"{new} is not a run directory; to evaluate it as a model against {against}, add --out DIR")
            from respread.workflows.eval import evaluate_into

            log(f"[check] evaluating {new} with the tasks and settings of {against} into {out}")
            evaluate_into(config_like(against, new, model_options=model_options), out, parse, log=log, label="check")
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
    except (ValueError, KeyError, OSError) as exc:  # a damaged run folder or an unwritable path: input, not a verdict
        detail = str(exc).splitlines()[0] if str(exc) else ""
        _fail(f"cannot compare {new} against {against}: {type(exc).__name__} {detail}".rstrip())

    if not verdict["passed"]:
        raise typer.Exit(1)


