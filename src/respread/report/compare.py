"""The lineage comparison: every figure per stage with its CI, the decompositions, and the stage plot."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from respread.report.decompose import COLUMNS as DECOMPOSE_COLUMNS
from respread.report.decompose import decompose_rows
from respread.report.figures import pyplot, save_png
from respread.report.summary import estimate_text, md_table

# (key, label, scale, digits) per task kind; "correct" means valid for categorical tasks.
FIGURES = {
    "categorical": [("correct", "valid %", 100, 1), ("tv_valid", "TV valid", 1, 3), ("entropy_bits", "entropy valid (bits)", 1, 2)],
    "verifiable": [("correct", "accuracy %", 100, 1), ("distinct_answers", "distinct answers / prompt", 1, 2),
                   ("distinct_paths", "distinct paths / prompt", 1, 2), ("paths_per_correct", "paths per correct chain", 1, 2)],
    "text": [("correct", "pass %", 100, 1), ("ead", "EAD all", 1, 3), ("ead_passing", "EAD passing", 1, 3)],
}


def _pass_k(figures: dict) -> str | None:
    """pass@10 where there is one: at k = n every sample is drawn and pass@k says only "any correct at all"."""
    passes = figures.get("pass_at_k") or {}
    if "10" in passes:
        return "10"
    below_n = [k for k in passes if k != "1" and int(k) < max(map(int, passes))]
    return max(below_n, key=int) if below_n else None


def figure_rows(result: dict) -> list[list[str]]:
    rows = []
    for task in result["tasks"]:
        per_stage = [s["figures"][task] for s in result["stages"]]
        kind = per_stage[0]["kind"]
        drop = result["largest_drop"].get(task)
        drop_text = (
            f"{drop['from']} → {drop['to']}: {drop['metric']} among correct −{drop['drop']:.3f}"
            + ("" if drop["metric"].startswith("exact") else f" [{drop['ci'][0]:.3f}, {drop['ci'][1]:.3f}]")
            if drop else "none significant"
        )
        figures = list(FIGURES[kind])
        k = _pass_k(per_stage[0])
        if k and all(k in (f.get("pass_at_k") or {}) for f in per_stage):
            figures.insert(1, (f"pass@{k}", f"pass@{k} %", 100, 1))
        for i, (key, label, scale, digits) in enumerate(figures):
            cells = []
            for f in per_stage:
                estimate = f["pass_at_k"][key[5:]] if key.startswith("pass@") else f.get(key)
                cells.append(estimate_text(estimate, scale, digits))
            rows.append([task if i == 0 else "", label, *cells, drop_text if i == 0 else ""])
        rows.append(["", "source", *[f["source"] for f in per_stage], ""])
    return rows


def figure_columns(result: dict) -> list[str]:
    return ["task", "figure", *[s["label"] for s in result["stages"]], "largest significant narrowing (residual, 95% CI)"]


def transition_rows(result: dict) -> list[list[str]]:
    rows = []
    for t in result["transitions"]:
        for row in decompose_rows(t["decomposition"]):
            rows.append([f"{t['from']} → {t['to']}", *row])
    return rows


NOTES = """\
- Stages in lineage order. Exact figures (closed tasks scored by teacher forcing) have no interval; sampled
  ones carry 95% CIs (validity: Clopper–Pearson; TV and entropy: percentile bootstrap over replies;
  verifiable tasks: over prompts, widened to the exact binomial interval). Parse: {parse}.
- **largest significant narrowing**: among consecutive stages, the largest residual R = D(ref, correct) −
  D(tgt, correct) whose 95% bootstrap CI lies above zero, with D the entropy of right answers (of the
  calculation paths of right chains for verifiable tasks; EAD of passing outputs for text); where both
  stages were scored exactly (strict parse), the drop in exact entropy among valid answers, which has no
  sampling error. The total drop
  is not used for it: it also counts the variety of wrong replies, mostly junk on a small model.
- The decomposition splits each change into quality control (diversity that left with wrong answers) and
  residual; it uses the sampled replies, also where the figure table shows exact values. Its percentile
  CIs are those of `respread decompose`: resampling duplicates replies and lowers every D, most where
  replies are all different (junk), so a total's point value can sit outside its interval.
"""


def stage_lines(result: dict) -> list[str]:
    lines = []
    for i, s in enumerate(result["stages"], 1):
        sampling = s.get("sampling") or {}
        lines.append(
            f"{i}. **{s['label']}**: model {s['model']} · T={sampling.get('temperature')} · "
            f"{s['samples_per_prompt']} samples/prompt · seed {s['seed']} · cot {s['cot']} · `{s['source']}`"
        )
    if result["settings_differ"]:
        lines.append(f"\n**Settings differ between stages** ({', '.join(result['settings_differ'])}): "
                     "a change is not the model's alone.")
    if result["tasks_not_in_every_stage"]:
        lines.append(f"\nLeft out (not in every stage): {', '.join(result['tasks_not_in_every_stage'])}.")
    return lines


def compare_markdown(result: dict) -> str:
    labels = " → ".join(s["label"] for s in result["stages"])
    lines = [f"# respread compare: {labels}", "", *stage_lines(result), "", "## Figures per stage", ""]
    lines += md_table(figure_columns(result), figure_rows(result))
    lines += ["", "## Decomposition between consecutive stages", ""]
    rows = transition_rows(result)
    lines += md_table(["stages", *DECOMPOSE_COLUMNS], rows) if rows else ["(no task has samples in two consecutive stages)"]
    if result.get("plot"):
        lines += ["", f"![figures by stage]({Path(result['plot']).name})"]
    return "\n".join(lines + ["", NOTES.format(parse=result["parse"])])


def compare_rich_tables(result: dict) -> list[Table]:
    title = " → ".join(s["label"] for s in result["stages"]) + f" · parse {result['parse']} · 95% CIs; exact figures have none"
    figures = Table(title=title, title_justify="left")
    for column in figure_columns(result):
        figures.add_column(column, overflow="fold")
    for row in figure_rows(result):
        figures.add_row(*row)
    tables = [figures]
    rows = transition_rows(result)
    if rows:
        decomposition = Table(title="diversity change between consecutive stages = quality control + residual", title_justify="left")
        for column in ["stages", *DECOMPOSE_COLUMNS]:
            decomposition.add_column(column, overflow="fold")
        for row in rows:
            decomposition.add_row(*row)
        tables.append(decomposition)
    return tables


PLOT_PANELS = [
    ("correct", "valid / correct share", 1.0, ("categorical", "verifiable", "text")),
    ("tv_valid", "TV to uniform among valid (lower: more spread)", 1.0, ("categorical",)),
    ("paths_per_correct", "distinct paths per correct chain", 1.0, ("verifiable",)),
    ("ead", "EAD, all outputs", 1.0, ("text",)),
]


def plot_compare(result: dict, path: Path) -> Path | None:
    """Write `compare_figure` to `path` (PNG); None when no task has a plotted figure."""
    fig = compare_figure(result)
    return None if fig is None else save_png(fig, path, dpi=130)


def compare_figure(result: dict):
    """One panel per figure, stages on x, one line per task; bars are 95% CIs, exact points have none."""
    plt = pyplot()
    stages = result["stages"]
    labels = [s["label"] for s in stages]
    panels = [p for p in PLOT_PANELS if any(stages[0]["figures"][t]["kind"] in p[3] for t in result["tasks"])]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0), squeeze=False)
    x = list(range(len(stages)))
    for ax, (key, title, _, kinds) in zip(axes.flat, panels):
        for i, task in enumerate(result["tasks"]):
            if stages[0]["figures"][task]["kind"] not in kinds:
                continue
            values, lows, highs = [], [], []
            for s in stages:
                e = s["figures"][task].get(key) or {}
                v = e.get("value")
                values.append(float("nan") if v is None else v)
                lows.append(0.0 if v is None or e.get("low") is None else max(0.0, v - e["low"]))
                highs.append(0.0 if v is None or e.get("high") is None else max(0.0, e["high"] - v))
            ax.errorbar(x, values, yerr=[lows, highs], marker="o", ms=3.5, lw=1.1, elinewidth=0.7, capsize=2,
                        color=f"C{i % 10}", label=task)
        ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    sizes = sorted({str(s.get("samples_per_prompt")) for s in stages})
    fig.suptitle(
        f"figures by stage · {', '.join(sizes)} samples per prompt · parse {result['parse']} · "
        "bars: 95% CI (none: exact)", fontsize=9,
    )
    handles, names = [], []
    for ax in axes.flat:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.legend(handles, names, loc="center right", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.84, 0.95))
    return fig
