"""Tables (markdown, rich) and the Pareto plot of `respread baselines`: diversity beside validity, per cell."""

from __future__ import annotations

import re
from pathlib import Path

from rich.table import Table

from respread.measure.figures import interval
from respread.report.figures import pyplot, save_png

METHOD_MARKERS = {"sweep": "o", "logit-bias": "s", "verbalized": "D", "seeded": "^"}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _ci(figures: dict, key: str, percent: bool = False) -> str:
    low, high = interval(figures, key)
    if low is None:
        return ""
    return f" [{100 * low:.1f}, {100 * high:.1f}]" if percent else f" [{low:.3f}, {high:.3f}]"


def short_cell(figures: dict | None) -> str:
    """valid · TV all · TV valid, point values (an exact figure has no interval; see the per-task tables)."""
    if figures is None:
        return "—"
    return f"{_pct(figures['valid'])} · {_num(figures['tv_all'])} · {_num(figures['tv_valid'])}"


def _label(cell: dict) -> str:
    return cell["setting"] if cell["method"] == "sweep" else f"{cell['method']} ({cell['setting']})"


def sweep_overview(result: dict) -> tuple[list[str], list[list[str]]]:
    """Rows = tasks, columns = the plain temperature cells of the sweep."""
    plain = [c for c in result["cells"] if c["method"] == "sweep" and " " not in c["setting"]]
    tasks = list(result["per_task"])
    header = ["task", "figures from"] + [f"{c['setting']}: valid · TV all · TV valid" for c in plain]
    def source(task: str) -> str:  # the kind and n, not one cell's valid count
        return re.sub(r" \(\d+ valid, ([^)]*)\)", r", \1", plain[0]["figures"][task]["source"]) if plain else ""

    rows = [[t, source(t)] + [short_cell(c["figures"].get(t)) for c in plain] for t in tasks]
    return header, rows


def methods_overview(result: dict) -> tuple[list[str], list[list[str]]]:
    """Rows = tasks: the reference (T=1), each non-sweep method, the best sweep cell and the best fix overall."""
    cells = result["cells"]
    reference = next((c for c in cells if c["method"] == "sweep" and c["setting"] == result.get("reference")), None)
    others = [c for c in cells if c["method"] != "sweep"]
    header = ["task"] + (["T=1 (no fix)"] if reference else []) + [_label(c) for c in others] + ["best sweep cell", "best fix without training (lowest TV all)"]
    rows = []
    for task, pareto in result["per_task"].items():
        sweep = [c for c in cells if c["method"] == "sweep" and task in c["figures"] and c["figures"][task]["tv_all"] is not None]
        best_sweep = min(sweep, key=lambda c: c["figures"][task]["tv_all"], default=None)
        best = cells[pareto["best"]] if pareto["best"] is not None else None
        row = [task] + ([short_cell(reference["figures"].get(task))] if reference else [])
        row += [short_cell(c["figures"].get(task)) for c in others]
        row.append(f"{best_sweep['setting']}: {short_cell(best_sweep['figures'][task])}" if best_sweep else "—")
        baseline = reference["figures"].get(task) if reference else None
        if best and baseline and best["figures"][task]["tv_all"] >= baseline["tv_all"]:
            row.append(f"none beats T=1 (TV all {baseline['tv_all']:.3f})")
        else:
            row.append(f"{_label(best)}: {short_cell(best['figures'][task])}" if best else "—")
        rows.append(row)
    return header, rows


def task_detail(result: dict, task: str) -> tuple[list[str], list[list[str]]]:
    """Every cell for one task with its CIs, frontier mark and wall time."""
    header = ["method", "setting", "figures from", "valid [95% CI]", "TV all [95% CI]", "TV valid [95% CI]", "entropy (bits)", "Pareto", "seconds"]
    frontier = set(result["per_task"][task]["frontier"])
    best = result["per_task"][task]["best"]
    rows = []
    for i, cell in enumerate(result["cells"]):
        f = cell["figures"].get(task)
        if f is None:
            continue
        mark = ("frontier" if i in frontier else "") + (" · best" if i == best else "")
        rows.append([
            cell["method"], cell["setting"], f["source"], _pct(f["valid"]) + _ci(f, "valid", percent=True),
            _num(f["tv_all"]) + _ci(f, "tv_all"), _num(f["tv_valid"]) + _ci(f, "tv_valid"), _num(f.get("entropy_bits")),
            mark.strip(" ·"), f"{cell['seconds']:.0f}",
        ])
    return header, rows


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def baselines_markdown(result: dict) -> str:
    config = result["config"]
    parts = [
        "# Fixes without training\n",
        f"Model `{result['model']}`; {config['samples']} samples per task for sampled figures (parse: {config['parse']}); "
        f"seed {config['seed']}. Wall time {result['wall_seconds']:.0f} s.\n",
        "Cells: valid mass · TV to uniform over all replies (invalid ones count as off-support) · TV to uniform among "
        "valid answers. Closed tasks are exact in the sweep and logit-bias cells (no sampling error) and sampled in the "
        "verbalized and seeded cells; the per-task tables give every interval (exact Clopper–Pearson for validity, "
        "percentile bootstrap for TVs).\n",
        "## Temperature sweep\n",
        _markdown_table(*sweep_overview(result)),
        "## Every method\n",
        _markdown_table(*methods_overview(result)),
    ]
    bias_cell = next((c for c in result["cells"] if c["method"] == "logit-bias"), None)
    if bias_cell and bias_cell.get("fit"):
        before, after = bias_cell["fit"]["before"], bias_cell["fit"]["after"]
        parts.append(
            f"Logit bias fitted on {bias_cell['fitted_task']} ({bias_cell['bias_file']}): KL(uniform ‖ p) "
            f"{before['kl_uniform_nats']:.3f} → {after['kl_uniform_nats']:.4f} nats, valid mass {_pct(before['valid_mass'])} → "
            f"{_pct(after['valid_mass'])}, TV valid {before['tv_valid']:.3f} → {after['tv_valid']:.4f} (fit in {bias_cell['fit_seconds']:.0f} s).\n"
        )
    verbalized = next((c for c in result["cells"] if c["method"] == "verbalized"), None)
    if verbalized:
        lines = ["Verbalized replies by parse status (share of replies):\n", "| task | " + " | ".join(_statuses(verbalized)) + " |", "|---|" + "---|" * len(_statuses(verbalized))]
        for task, shares in verbalized["reply_status"].items():
            lines.append(f"| {task} | " + " | ".join(_pct(shares.get(s, 0.0)) for s in _statuses(verbalized)) + " |")
        parts.append("\n".join(lines) + "\n")
    if result.get("pareto_plot"):
        parts.append(f"![validity vs spread per task]({Path(result['pareto_plot']).name})\n")
    parts.append("## Per task\n")
    for task in result["per_task"]:
        parts += [f"### {task}\n", _markdown_table(*task_detail(result, task))]
    return "\n".join(parts)


def _statuses(verbalized_cell: dict) -> list[str]:
    seen: list[str] = []
    for shares in verbalized_cell["reply_status"].values():
        seen += [s for s in shares if s not in seen]
    return seen


def baselines_rich_table(result: dict) -> Table:
    header, rows = methods_overview(result)
    table = Table(title="Fixes without training: valid · TV all · TV valid")
    for name in header:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def plot_pareto(result: dict, path: Path) -> Path | None:
    """Write `pareto_figure` to `path` (PNG); None when there is no task."""
    fig = pareto_figure(result)
    return None if fig is None else save_png(fig, path, dpi=110)


def pareto_figure(result: dict):
    """Per task: validity (x) vs TV among valid answers (y) of every cell, with CIs; frontier joined."""
    plt = pyplot()
    tasks = list(result["per_task"])
    if not tasks:
        return None
    columns = min(5, len(tasks))
    rows = (len(tasks) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.1 * rows), squeeze=False)
    colours = {}
    for ax, task in zip(axes.flat, tasks):
        cells = result["cells"]
        sources = set()
        for i, cell in enumerate(cells):
            f = cell["figures"].get(task)
            if f is None or f["tv_valid"] is None:
                continue
            sources.add("exact" if f["source"] == "exact" else "sampled")
            colour = colours.setdefault(cell["method"], f"C{len(colours)}")
            xerr = yerr = None
            valid_low, valid_high = interval(f, "valid")
            if valid_low is not None:
                xerr = [[max(0.0, f["valid"] - valid_low)], [max(0.0, valid_high - f["valid"])]]
            tv_low, tv_high = interval(f, "tv_valid")
            if tv_low is not None:
                yerr = [[max(0.0, f["tv_valid"] - tv_low)], [max(0.0, tv_high - f["tv_valid"])]]
            ax.errorbar(f["valid"], f["tv_valid"], xerr=xerr, yerr=yerr, fmt=METHOD_MARKERS.get(cell["method"], "o"),
                        color=colour, ms=4, elinewidth=0.7, label=cell["method"])
        frontier = sorted((cells[i]["figures"][task]["valid"], cells[i]["figures"][task]["tv_valid"]) for i in result["per_task"][task]["frontier"])
        if frontier:
            ax.plot(*zip(*frontier), color="grey", lw=0.8, ls="--")
        sizes = sorted({int(m) for c in cells if task in c["figures"] for m in re.findall(r"sampled n=(\d+)", c["figures"][task]["source"])})
        kinds = " + ".join(sorted(sources)) or "no valid answers"
        ax.set_title(f"{task}\n({kinds}; sampled n = {', '.join(map(str, sizes)) or '—'})", fontsize=8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("valid share", fontsize=7)
        ax.set_ylabel("TV to uniform among valid", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle("Validity vs spread of every fix without training (lower right is better; dashed: Pareto frontier)", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return fig
