"""`compare` and `decompose` sections: figures along a lineage, and what each step removed or narrowed."""

from __future__ import annotations

import re
from pathlib import Path

from respread.report import figures as charts
from respread.report.blocks import (
    Builder,
    Section,
    Table,
    _dumbbell_footer,
    _dumbbell_row_from_estimates,
)
from respread.report.study import picks as _picks


def compare_section(builder: Builder, source: Path, result: dict) -> Section:
    from respread.report.compare import DECOMPOSE_COLUMNS, compare_figure, figure_columns, figure_rows, stage_lines, transition_rows

    labels = " → ".join(s["label"] for s in result["stages"])
    section = Section(f"Compare: {labels}", "compare", str(source))
    for line in stage_lines(result):
        line = re.sub(r"\*\*|`", "", line.strip())
        number, _, rest = line.partition(". ")
        if number.isdigit():
            section.meta.append((f"stage {number}", rest))
        elif line:
            section.notes.append(line)
    section.meta.append(("wall time", f"{result.get('wall_seconds', 0):.0f} s"))
    sizes = sorted({str(s.get("samples_per_prompt")) for s in result["stages"]})
    stage_labels = [s["label"] for s in result["stages"]]
    dumbbell_rows = [
        _dumbbell_row_from_estimates(task, {s["label"]: s["figures"][task] for s in result["stages"]})
        for task in result["tasks"]
        if result["stages"][0]["figures"][task].get("kind") == "categorical"
    ]
    if dumbbell_rows and len(stage_labels) > 1:
        section.blocks.append(builder.chart(
            charts.dumbbell_figure(dumbbell_rows, stage_labels[0], stage_labels[1:], figure="TV to uniform among valid answers",
                                   footer=_dumbbell_footer(sorted({s["samples_per_prompt"] for s in result["stages"]}), result["parse"]),
                                   pairs=list(zip(stage_labels, stage_labels[1:]))),
            "compare-spread", "Spread, stage to stage",
            "TV between the valid answers' distribution and uniform (0 = uniform); ring: a stage, dot: the next one; "
            "labels: exact, or the valid replies behind a sampled value; grey: noise floor.",
        ))
    fig = compare_figure(result)
    if fig is not None:
        section.blocks.append(builder.chart(
            fig, "compare-stages", "Figures by stage",
            f"Every figure per stage, one line per task; {', '.join(sizes)} samples per prompt, parse {result['parse']}; "
            "bars: 95% CIs (none: exact).",
        ))
    for t in result["transitions"]:
        tasks = t["decomposition"]["tasks"]
        if tasks:
            section.blocks.append(builder.chart(
                charts.decomposition_figure(tasks, title=f"{t['from']} → {t['to']}", footer=_decompose_footer(t["decomposition"])),
                f"decompose-{t['from']}-{t['to']}", f"Where the diversity went: {t['from']} → {t['to']}", _DECOMPOSE_DEFINITION,
            ))
    section.blocks.append(Table("Figures per stage", f"95% CIs; exact figures have none; parse {result['parse']}.",
                                figure_columns(result), figure_rows(result)))
    labels = [s["label"] for s in result["stages"]]
    section.blocks.append(Table(
        "Top-5 valid picks", "The five most frequent valid (or correct) answers and their share of them, per stage.",
        ["task", *labels], [[t, *[_picks(s["figures"].get(t)) for s in result["stages"]]] for t in result["tasks"]],
    ))
    rows = transition_rows(result)
    if rows:
        section.blocks.append(Table("Decomposition between consecutive stages", _DECOMPOSE_DEFINITION, ["stages", *DECOMPOSE_COLUMNS], rows))
    return section


_DECOMPOSE_DEFINITION = (
    "Total drop D(ref) − D(target) = quality control (diversity that left with wrong answers) + residual "
    "(narrowing among right answers); D is entropy of answers (EAD for text); 95% bootstrap CIs within prompt."
)


def _decompose_footer(result: dict) -> str:
    sizes = sorted({f"{t['n_ref']}→{t['n_tgt']}" for t in result["tasks"].values()})
    return f"n (reference→target replies): {', '.join(sizes)} · validity by {result['parse']} parse · bars: 95% bootstrap CI ({result['resamples']} resamples)"


def decompose_section(builder: Builder, path: Path, result: dict) -> Section:
    from respread.report.decompose import COLUMNS, decompose_rows

    section = Section(f"Decomposition: {result['reference']} → {result['target']}", "decompose", str(path))
    section.blocks.append(builder.chart(
        charts.decomposition_figure(result["tasks"], title=f"{Path(result['reference']).name} → {Path(result['target']).name}",
                                    footer=_decompose_footer(result)),
        f"decompose-{path.stem}", "Where the diversity went", _DECOMPOSE_DEFINITION,
    ))
    section.blocks.append(Table("Decomposition", _DECOMPOSE_DEFINITION, COLUMNS, decompose_rows(result)))
    return section
