"""The per-task table: printed to the terminal (rich) and written as `summary.md`.

Every sampled figure shows its 95% bootstrap CI, and TVs stand beside the noise floor (the TV a
perfectly uniform sampler shows at the same n), so nobody reads sampling noise as collapse.
"""

from __future__ import annotations

from rich.table import Table

COLUMNS = [
    "task",
    "n",
    "valid % [CI]",
    "{other} %",
    "TV all [CI]",
    "TV valid [CI]",
    "floor all/valid",
    "calibrated TV valid · entropy bits [CI]",
    "exact valid%·TV all·TV valid",
    "top-5 valid picks (share of valid)",
]


def columns(parse: str) -> list[str]:
    """Table columns; the second validity column names the parse shown beside the headline one."""
    other = "lenient" if parse == "strict" else "strict"
    return [c.format(other=other) for c in COLUMNS]


def _pct(estimate: dict) -> str:
    return f"{100 * estimate['value']:.1f} [{100 * estimate['low']:.1f}, {100 * estimate['high']:.1f}]"


def _num(estimate: dict) -> str:
    if estimate["value"] is None:
        return "n/a (no valid answer)"
    return f"{estimate['value']:.3f} [{estimate['low']:.3f}, {estimate['high']:.3f}]"


def _opt(value: float | None, fmt: str = "{:.3f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def table_rows(metrics: dict, parse: str = "strict") -> list[list[str]]:
    rows = []
    for name, task in metrics["tasks"].items():
        if task.get("text") or task.get("verifiable"):
            continue
        m = task["parse"][parse]
        other = task["parse"]["lenient" if parse == "strict" else "strict"]
        exact = task.get("exact")
        exact_cell = (
            f"{100 * exact['valid_mass']:.2f} · {exact['tv_all']:.3f} · {_opt(exact['tv_valid'])}"
            if exact
            else ("not run" if task["closed"] else "open set")
        )
        picks = ", ".join(f"{a} ({100 * s:.0f}%)" for a, s in m["top_valid"]) or "—"
        if not m["n"]:  # exact only (a sweep does not sample closed tasks)
            exact_picks = ", ".join(f"{a} ({100 * s:.0f}%)" for a, s in exact["top_valid"]) if exact else "—"
            rows.append([name, "0 (exact only)", "—", "—", "—", "—", "—", "—", exact_cell, exact_picks])
            continue
        rows.append(
            [
                name,
                str(m["n"]),
                _pct(m["validity"]),
                f"{100 * other['validity']['value']:.1f}",
                _num(m["tv_all"]),
                _num(m["tv_valid"]),
                f"{_opt(m['floor_tv_all'])} / {_opt(m['floor_tv_valid'])}",
                _calibrated_cell(m.get("calibrated")),
                exact_cell,
                picks,
            ]
        )
    return rows


def _calibrated_cell(figures: dict | None) -> str:
    if not figures:
        return "—"
    tv, entropy = figures["tv_valid"], figures["entropy_bits"]
    if tv["value"] is None or tv["value"] != tv["value"]:
        return "n/a (no valid answer)"
    mark = "" if tv.get("calibrated_regime", True) else " †"
    return f"{_num(tv)} · {entropy['value']:.2f} [{entropy['low']:.2f}, {entropy['high']:.2f}]{mark}"


def header(metrics: dict, parse: str) -> str:
    s = metrics["sampling"]
    other = "lenient" if parse == "strict" else "strict"
    return (
        f"model {metrics['model']} · T={s['temperature']} top_p={s['top_p']} top_k={s['top_k'] or 'off'} "
        f"min_p={s['min_p']} · seed {metrics['seed']} · parse {parse} ({other} beside it) · "
        f"plug-in CIs: {metrics['resamples']} bootstrap resamples (rerun spread at this n) · calibrated: "
        f"empirical-Bayes profile estimate, 95% interval for the population value (coverage: BENCHMARKS.md; "
        f"† fewer valid replies than answers, outside the range where its coverage was shown)"
    )


TEXT_COLUMNS = ["metric", "more diverse", "all outputs [CI]", "passing outputs [CI]"]


def _text_cell(estimate: dict) -> str:
    if estimate["value"] is None:
        return "n/a (too few outputs)"
    return f"{estimate['value']:.3f} [{estimate['low']:.3f}, {estimate['high']:.3f}]"


def text_title(task: dict) -> str:
    rate = task["pass_rate"]
    return (
        f"{task['task']}: {task['prompts']} prompts, {task['n']} outputs; pass ({task['quality']}) "
        f"{100 * rate['value']:.1f}% [{100 * rate['low']:.1f}, {100 * rate['high']:.1f}]; "
        f"per-prompt mean, 95% CI by m-out-of-n subsampling within prompt"
    )


def text_rows(task: dict) -> list[list[str]]:
    return [
        [name, m["more_diverse"], _text_cell(m["all"]), _text_cell(m["passing"])] for name, m in task["metrics"].items()
    ]


def text_tables(metrics: dict) -> list[Table]:
    tables = []
    for task in metrics["tasks"].values():
        if not task.get("text"):
            continue
        table = Table(title=text_title(task), title_justify="left")
        for column in TEXT_COLUMNS:
            table.add_column(column)
        for row in text_rows(task):
            table.add_row(*row)
        tables.append(table)
    return tables


VERIFIABLE_COLUMNS = [
    "task", "prompts × samples", "accuracy % [CI]", "pass@k % [CI]", "answered %", "distinct answers / prompt",
    "correct chains (prompts)", "distinct paths / prompt [CI]", "paths per correct chain [CI]",
]


def estimate_text(estimate: dict | None, scale: float = 1.0, digits: int = 1) -> str:
    """`value [low, high]`, scaled; the interval left out where there is none (exact figures)."""
    if not estimate or estimate.get("value") is None:
        return "n/a"
    text = f"{scale * estimate['value']:.{digits}f}"
    low, high = estimate.get("low"), estimate.get("high")
    if low is not None and high is not None and low == low:  # low != low: NaN, no interval
        text += f" [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"
    return text


def verifiable_rows(metrics: dict, parse: str = "strict") -> list[list[str]]:
    rows = []
    for name, task in metrics["tasks"].items():
        if not task.get("verifiable"):
            continue
        m = task["parse"][parse]
        k = max(m["pass_at_k"], key=int) if m["pass_at_k"] else None
        paths = m["paths"]
        rows.append([
            name,
            f"{task['prompts']} × {task['samples_per_prompt']}",
            estimate_text(m["accuracy"], 100),
            f"k={k}: {estimate_text(m['pass_at_k'][k], 100)}" if k else "—",
            _opt(m["answered"] and 100 * m["answered"], "{:.1f}"),
            estimate_text(m["distinct_answers"], 1, 2),
            f"{paths['correct_chains']} ({paths['prompts_with_correct']})",
            estimate_text(paths["distinct_paths"], 1, 2),
            estimate_text(paths["distinct_paths_per_correct"], 1, 2),
        ])
    return rows


VERIFIABLE_NOTES = """- **accuracy**: mean over prompts of the share of correct replies (= pass@1) under the {parse} parse
  (strict: an answer the reply states, "The answer is N" / "#### N" / a bare number; lenient: also the
  last number). **pass@k**: the unbiased estimator 1 − C(n−c, k)/C(n, k) per prompt, averaged.
- **distinct paths**: among each prompt's correct chains, how many different sequences of computed numbers
  (numbers not in the question, in order) they took; prompts without a correct chain do not count.
- CIs: accuracy and pass@k, the exact (Clopper–Pearson) interval of the pooled correct rate (its image
  1 − (1 − p)^k for pass@k), widened to the 95% percentile bootstrap over prompts where there are several;
  other figures, the bootstrap over prompts alone.
"""


def rich_table(metrics: dict, parse: str = "strict") -> Table:
    table = Table(title=header(metrics, parse), title_justify="left", show_lines=False)
    for column in columns(parse):
        table.add_column(column, overflow="fold")
    for row in table_rows(metrics, parse):
        table.add_row(*row)
    return table


NOTES = """\
- **valid %**: replies that are a valid answer under the {parse} parse, with the exact (Clopper–Pearson)
  95% interval; lenient = first answer-looking span anywhere in the reply (reported beside, never instead).
- Other CIs: 95% percentile bootstrap over replies: how far the figure would move on a rerun at the same
  n. Plug-in TV is biased upward at small n, so a CI can sit above its point value; read TVs against the
  floor and compare runs at equal n (`metrics.json` gives each figure's bootstrap `bias`).
- **TV all**: total variation to uniform over the valid set, invalid replies counted as off-support mass.
  **TV valid**: the same among valid answers only (quality-conditioned).
- **floor**: the TV a perfectly uniform sampler would show at the same n (all replies / valid replies);
  a TV near its floor is sampling noise, not collapse.
- **exact**: probability of each valid answer (surface forms scored: see metrics.json `exact.forms`, each
  followed by end-of-turn) computed by teacher forcing; no sampling error.
"""


def md_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]


def verifiable_table(metrics: dict, parse: str = "strict") -> Table | None:
    rows = verifiable_rows(metrics, parse)
    if not rows:
        return None
    table = Table(title=f"verifiable tasks · parse {parse} · 95% CIs over prompts", title_justify="left")
    for column in VERIFIABLE_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def markdown(metrics: dict, parse: str = "strict") -> str:
    lines = [f"# respread eval: {metrics['model']}", "", header(metrics, parse), ""]
    categorical = table_rows(metrics, parse)
    if categorical:
        lines += md_table(columns(parse), categorical) + ["", NOTES.format(parse=parse)]
    verifiable = verifiable_rows(metrics, parse)
    if verifiable:
        lines += ["## Verifiable tasks", ""] + md_table(VERIFIABLE_COLUMNS, verifiable) + ["", VERIFIABLE_NOTES.format(parse=parse)]
    for task in metrics["tasks"].values():
        if task.get("text"):
            lines += [f"## {text_title(task)}", ""] + md_table(TEXT_COLUMNS, text_rows(task)) + [""]
    return "\n".join(lines)
