"""The report's charts (matplotlib), each returned as a Figure so it can be written as PNG and SVG.

Every chart states its sample size, its uncertainty (95% interval bars, or "exact") and its parse in its
own title or footer, because charts travel into slides without the page around them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

TRAINED_COLOUR = "#d95f02"
OTHER_COLOUR = "#1b6ca8"
BEFORE_COLOUR = "#8a8a8a"
FLOOR_COLOUR = "#e6e6e6"


def pyplot():
    """matplotlib's pyplot on the file-only backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass
class Point:
    """One figure of one task in one condition: value with its 95% interval (None: exact or unknown)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    floor: float | None = None  # what a perfectly uniform sampler shows at the same n (sampled TVs only)
    note: str = ""  # drawn beside the point: "exact", or the valid replies a sampled value rests on


@dataclass
class DumbbellRow:
    task: str
    points: dict[str, Point]  # condition -> point
    trained: bool = False
    source: dict[str, str] = field(default_factory=dict)  # condition -> "exact" / "sampled n=…"


def _interval(point: Point) -> tuple[float, float] | None:
    if point.value is None or point.low is None or point.high is None:
        return None
    if any(math.isnan(x) for x in (point.value, point.low, point.high)):
        return None
    return max(0.0, point.value - point.low), max(0.0, point.high - point.value)


def dumbbell_figure(
    rows: list[DumbbellRow], start: str, ends: list[str], *, figure: str, footer: str, better: str = "left: more spread",
    pairs: list[tuple[str, str]] | None = None,
):
    """Per task, `figure` in condition `start` (grey ring) and in each of `ends` (filled dot), joined.

    One panel per end condition (or per (from, to) pair in `pairs`, e.g. consecutive stages); rows sorted by
    the start value; the trained task in orange; the noise floor (the figure a uniform sampler shows at
    the sampled n) shaded grey; bars are 95% intervals.
    """
    plt = pyplot()
    pairs = pairs or [(start, end) for end in ends]
    order = sorted(rows, key=lambda r: (r.points.get(start, Point(None)).value is None, r.points.get(start, Point(None)).value or 0.0))
    columns = min(2, len(pairs))  # a third panel would shrink every row below legibility on a page
    grid_rows = math.ceil(len(pairs) / columns)
    height = grid_rows * (0.9 + 0.34 * len(order))
    fig, axes = plt.subplots(grid_rows, columns, figsize=(5.0 * columns + 1.4, height), squeeze=False, sharey=True)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    for ax, (start, end) in zip(axes.flat, pairs):
        for y, row in enumerate(order):
            b = row.points.get(end, Point(None))
            a = row.points.get(start, Point(None)) if end != start else Point(None)  # one run: dots only
            floor = max((p.floor or 0.0) for p in (a, b))
            if floor > 0:
                ax.barh(y, floor, height=0.8, color=FLOOR_COLOUR, zorder=0)
            colour = TRAINED_COLOUR if row.trained else OTHER_COLOUR
            if a.value is not None and b.value is not None:
                ax.plot([a.value, b.value], [y, y], color=colour, lw=1.6, alpha=0.7, zorder=1)
            for point, style in ((a, dict(mfc="white", mec=BEFORE_COLOUR, color=BEFORE_COLOUR)), (b, dict(mfc=colour, mec=colour, color=colour))):
                if point.value is None:
                    continue
                err = _interval(point)
                ax.errorbar(point.value, y, xerr=None if err is None else [[err[0]], [err[1]]], fmt="o", ms=6,
                            elinewidth=0.8, capsize=2, zorder=2, **style)
            if b.value is not None and b.note:
                ax.annotate(b.note, (b.value, y), xytext=(0, 5), textcoords="offset points", fontsize=6, ha="center",
                            va="bottom", color="#555555")
            if b.value is None:
                ax.text(0.01, y, "no valid answer", fontsize=7, va="center", ha="left", color="#777777")
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(end if end == start else f"{start} → {end}", fontsize=9)
        ax.set_xlabel(f"{figure} ({better})", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    labels = [f"{r.task} (trained)" if r.trained else r.task for r in order]
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(order)), labels)
        for label, row in zip(ax.get_yticklabels(), order):
            if row.trained:
                label.set_color(TRAINED_COLOUR)
                label.set_fontweight("bold")
        ax.set_ylim(-0.6, len(order) - 0.4)
    fig.text(0.01, 0.005, footer, fontsize=7, color="#444444", ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))  # room for the footer line
    return fig


def _answer_key(answer: str):
    """Integers in numeric order, then everything else alphabetically."""
    return (0, int(answer), "") if re.fullmatch(r"-?\d+", answer) else (1, 0, answer)


def exact_bars_figure(distributions: dict[str, dict[str, dict[str, float]]], conditions: list[str], *, footer: str):
    """Exact P(answer | valid) of every closed task (rows) in every condition (columns), uniform dashed.

    `distributions[task][condition]` maps each valid answer to its raw probability (its sum is the valid
    mass); each panel says the valid mass and how much of the valid mass its top three answers take.
    """
    plt = pyplot()
    tasks = list(distributions)
    panels = [(task, condition) for task in tasks for condition in conditions]
    # One condition: tasks fill a grid; several: one row a task, one column a condition, to compare across.
    columns = min(3, len(tasks)) if len(conditions) == 1 else len(conditions)
    grid_rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(3.6 * columns + 0.6, 2.1 * grid_rows + 0.5), squeeze=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    for i, (task, condition) in enumerate(panels):
        c = i % columns
        ax = axes.flat[i]
        probs = distributions[task].get(condition)
        if not probs:
            ax.axis("off")
            continue
        answers = sorted(probs, key=_answer_key)
        mass = sum(probs.values())
        shares = [probs[a] / mass if mass > 0 else 0.0 for a in answers]
        ax.bar(range(len(answers)), shares, width=1.0 if len(answers) > 60 else 0.8, color=OTHER_COLOUR, linewidth=0)
        ax.axhline(1 / len(answers), color="black", lw=0.8, ls="--")
        top3 = sum(sorted(shares, reverse=True)[:3])
        ax.set_title(f"{task} · {condition}\nvalid mass {100 * mass:.1f}% · top 3 take {100 * top3:.0f}% of it", fontsize=8)
        if len(answers) <= 12:
            ax.set_xticks(range(len(answers)), answers, fontsize=7, rotation=0 if len(answers) <= 10 else 45)
        else:
            ticks = list(range(0, len(answers), max(1, len(answers) // 5)))
            ax.set_xticks(ticks, [answers[t] for t in ticks], fontsize=7)
        ax.set_ylim(0, max(shares + [1 / len(answers)]) * 1.12 or 1)
        ax.tick_params(labelsize=7)
        if c == 0:
            ax.set_ylabel("P(answer | valid)", fontsize=7)
    fig.text(0.01, 0.005, footer, fontsize=7, color="#444444", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def decomposition_figure(tasks: dict[str, dict], *, title: str, footer: str):
    """Per task, the total drop split into quality control and residual (narrowing among correct), 95% CIs."""
    plt = pyplot()
    names = list(tasks)
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.55 * len(names)))
    parts = [("total_drop", "total drop", "#444444"), ("quality_control", "quality control", "#7570b3"), ("residual", "narrowing among correct (residual)", TRAINED_COLOUR)]
    for j, (key, label, colour) in enumerate(parts):
        ys, values, errs = [], [], [[], []]
        for i, name in enumerate(names):
            part = tasks[name][key]
            if part["value"] is None:
                continue
            ys.append(i + (j - 1) * 0.26)
            values.append(part["value"])
            low = part["low"] if part["low"] is not None else part["value"]
            high = part["high"] if part["high"] is not None else part["value"]
            errs[0].append(max(0.0, part["value"] - low))
            errs[1].append(max(0.0, high - part["value"]))
        ax.barh(ys, values, height=0.24, color=colour, label=label, xerr=errs, error_kw=dict(elinewidth=0.8, capsize=2))
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(names)), [f"{n} ({tasks[n]['metric']})" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("drop in diversity (positive: less diverse after)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.text(0.01, 0.005, footer, fontsize=7, color="#444444", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def monitor_figure(curves: dict[str, list[dict]], trained_task: str | None, *, footer: str):
    """TV among valid and valid mass against training step: one line per run (and monitored task)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (label, records) in enumerate(curves.items()):
        for task in dict.fromkeys(r["task"] for r in records):
            rows = [r for r in records if r["task"] == task]
            steps = [r["step"] for r in rows]
            name = label if len({r["task"] for r in records}) == 1 else f"{label}: {task}"
            style = dict(marker="o", ms=3.5, lw=1.8 if task == trained_task else 1.0, color=f"C{i % 10}",
                         ls="-" if task == trained_task or trained_task is None else ":")
            axes[0].plot(steps, [float("nan") if r["tv_valid"] is None else r["tv_valid"] for r in rows], label=name, **style)
            axes[1].plot(steps, [r["valid_mass"] for r in rows], label=name, **style)
    axes[0].set(xlabel="training step", ylabel="TV to uniform among valid", ylim=(0, 1.02))
    axes[1].set(xlabel="training step", ylabel="valid mass", ylim=(0, 1.02))
    axes[0].set_title("spread (lower: more uniform)", fontsize=9)
    axes[1].set_title("valid mass", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[1].legend(fontsize=7)
    fig.text(0.01, 0.005, footer, fontsize=7, color="#444444", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def monitor_footer(curves: dict[str, list[dict]]) -> str:
    """What the monitor's points are: exact distributions, or n sampled replies (strict parse, no interval)."""
    records = [r for rows in curves.values() for r in rows]
    sizes = sorted({r["n"] for r in records if r.get("mode") == "sampled"})
    parts = []
    if any(r.get("mode") == "exact" for r in records):
        parts.append("exact points: answer probabilities by teacher forcing, no sampling error")
    if sizes:
        parts.append(f"sampled points: n = {', '.join(map(str, sizes))} replies, strict parse, no interval drawn")
    return " · ".join(parts) or "no points"


def save_png(fig, path: Path, dpi: int = 130) -> Path:
    """Write `fig` to `path` as PNG and free it."""
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def save_figure(fig, stem: Path) -> tuple[Path, Path, str]:
    """Write `stem`.png and `stem`.svg; return both paths and the SVG markup for inlining in HTML.

    Text stays text in the SVG (selectable, small); the inline copy's ids carry the file name, so several
    SVGs in one page never share an id (a shared clip-path id would clip one chart with another's box).
    """
    import matplotlib

    plt = pyplot()
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "respread"}):  # same chart, same file
        fig.savefig(png, dpi=130)
        fig.savefig(svg, metadata={"Date": None})
    plt.close(fig)
    markup = svg.read_text(encoding="utf-8")
    markup = re.sub(r"\s*<metadata>.*?</metadata>", "", markup[markup.index("<svg") :], flags=re.S)
    # Inline SVGs share the page's id space: prefix every id, and every reference to one, with the file name.
    prefix = stem.name + "-"
    markup = re.sub(r'(\sid=")', rf"\g<1>{prefix}", markup)
    markup = re.sub(r"url\(#", f"url(#{prefix}", markup)
    markup = re.sub(r'(href=")#', rf"\g<1>#{prefix}", markup)
    return png, svg, markup
