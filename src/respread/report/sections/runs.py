"""An eval run's section, and the across-runs section of two or more eval runs."""

from __future__ import annotations

from pathlib import Path

from respread.report import figures as charts
from respread.report.blocks import (
    _EXACT_DEFINITION,
    Builder,
    Section,
    Table,
    _dumbbell_footer,
    _dumbbell_row,
    _exact_footer,
    _first_line,
    _short,
    exact_distributions,
    provenance_meta,
    read_json,
)
from respread.report.study import picks as _picks


def eval_section(builder: Builder, run_dir: Path, label: str | None = None) -> Section:
    from respread.report.summary import (
        NOTES, TEXT_COLUMNS, VERIFIABLE_COLUMNS, VERIFIABLE_NOTES, columns, table_rows, text_rows, text_title, verifiable_rows,
    )

    run = read_json(run_dir / "run.json")
    identity = run.get("identity", {})
    section = Section(f"Run {label or run_dir.name}: {identity.get('model', '?')}", "eval", str(run_dir))
    section.meta += [
        ("model", str(identity.get("model"))),
        ("seed", str(identity.get("seed"))),
        ("sampling", _short(identity.get("sampling", {}))),
        ("max new tokens", "per task" if identity.get("max_new_tokens") is None else str(identity["max_new_tokens"])),
        ("tasks", ", ".join(run.get("tasks", {}))),
    ] + ([("chain of thought", identity["cot"])] if identity.get("cot") else [])
    section.meta += provenance_meta(run_dir)
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file():
        section.notes.append("metrics.json is missing (the run stopped before its figures); re-run the command that made this run to finish it.")
        return section
    metrics = read_json(metrics_file)
    parse = metrics.get("parse", "strict")
    section.meta += [("samples per prompt", str(metrics.get("samples_per_prompt"))), ("headline parse", parse),
                     ("bootstrap resamples", str(metrics.get("resamples")))]
    categorical = {n: t for n, t in metrics["tasks"].items() if not t.get("text") and not t.get("verifiable")}
    name = label or run_dir.name
    if categorical:
        from respread.measure.figures import headline_figures

        rows = [_dumbbell_row(task, {name: headline_figures(t, parse)}) for task, t in categorical.items()]
        sizes = sorted({t["parse"][parse]["n"] for t in categorical.values() if not t.get("exact")})
        section.blocks.append(builder.chart(
            charts.dumbbell_figure(rows, name, [name], figure="TV to uniform among valid answers",
                                   footer=_dumbbell_footer(sizes, parse)),
            f"{name}-spread", "Spread per task",
            "Total variation between the valid answers' distribution and uniform over the valid set (0 = uniform, "
            "1 = one answer); exact where scored exactly, else sampled with a 95% bootstrap interval; grey: noise floor.",
        ))
        exact = exact_distributions(run_dir)
        exact = {t: {name: p} for t, p in exact.items() if t in categorical}
        if exact:
            section.blocks.append(builder.chart(
                charts.exact_bars_figure(exact, [name], footer=_exact_footer()),
                f"{name}-exact", "Exact answer distribution of closed tasks", _EXACT_DEFINITION,
            ))
        section.blocks.append(Table(
            "Categorical tasks", _first_line(NOTES.format(parse=parse)) + " TV all: invalid replies count as off-support mass; floor: a uniform sampler's TV at this n.",
            columns(parse), table_rows(metrics, parse),
        ))
    verifiable = verifiable_rows(metrics, parse)
    if verifiable:
        section.blocks.append(Table("Verifiable tasks", _first_line(VERIFIABLE_NOTES.format(parse=parse)), VERIFIABLE_COLUMNS, verifiable))
    for task in metrics["tasks"].values():
        if task.get("text"):
            section.blocks.append(Table(
                f"Text task {task['task']}", text_title(task) + ". EAD: expectation-adjusted distinct n-grams; "
                "distinct-n: unique n-grams / all; semantic: mean pairwise embedding distance.", TEXT_COLUMNS, text_rows(task),
            ))
    return section


# --- end


def across_runs_section(builder: Builder, runs: list[Path]) -> Section | None:
    """Two or more eval runs: the first is 'before', each later one an 'after' of the same tasks."""
    from respread.measure.figures import headline_figures

    metrics = {}
    for run in runs:
        if (run / "run.json").is_file() and (run / "metrics.json").is_file() and not (run / "study.json").is_file():
            metrics[run.name if run.name not in metrics else str(run)] = read_json(run / "metrics.json")
    if len(metrics) < 2:
        return None
    labels = list(metrics)
    parses = {m.get("parse", "strict") for m in metrics.values()}
    parse = parses.pop() if len(parses) == 1 else "strict"  # runs read under different parses: compare at strict
    every = [t for m in metrics.values() for t in m["tasks"]]
    shared = [t for t in dict.fromkeys(every) if all(t in m["tasks"] for m in metrics.values())]
    missing = sorted(set(every) - set(shared))
    shared = [t for t in shared if not metrics[labels[0]]["tasks"][t].get("text") and not metrics[labels[0]]["tasks"][t].get("verifiable")]
    if not shared:
        return None
    section = Section(f"Across runs: {' → '.join(labels)}", "across", ", ".join(str(r) for r in runs))
    section.intro = f"The first run is the reference; each later run is drawn against it. Parse: {parse}" + (
        " (the runs' headline parses differ, so all are read strictly)." if len(metrics) > 1 and len({m.get("parse", "strict") for m in metrics.values()}) > 1 else "."
    )
    if missing:
        section.notes.append(f"Left out, not in every run: {', '.join(missing)}.")
    rows = [_dumbbell_row(t, {label: headline_figures(metrics[label]["tasks"][t], parse) for label in labels}) for t in shared]
    sizes = sorted({m["tasks"][t]["parse"][parse]["n"] for m in metrics.values() for t in shared if not m["tasks"][t].get("exact")})
    section.blocks.append(builder.chart(
        charts.dumbbell_figure(rows, labels[0], labels[1:], figure="TV to uniform among valid answers", footer=_dumbbell_footer(sizes, parse)),
        "across-spread", f"Spread: {labels[0]} → each later run",
        "TV between the valid answers' distribution and uniform (0 = uniform); ring: the first run, dot: the later one.",
    ))
    section.blocks.append(Table(
        "Top-5 valid picks", "The five most frequent valid answers and their share of valid replies.", ["task", *labels],
        [[r.task, *[_picks(headline_figures(metrics[label]["tasks"][r.task], parse)) for label in labels]] for r in rows],
    ))
    return section
