"""Sections of restore outputs: baselines (fixes without training), a training run, capability checks."""

from __future__ import annotations

from pathlib import Path

from respread.report import figures as charts
from respread.report.blocks import (
    Builder,
    Section,
    Table,
    _short,
    _train_meta,
    capability_table,
    read_json,
    read_jsonl,
)


def baselines_section(builder: Builder, folder: Path) -> Section:
    from respread.report.baselines import methods_overview, pareto_figure, sweep_overview, task_detail

    result = read_json(folder / "baselines.json")
    config = result["config"]
    section = Section("Fixes without training (inference-time baselines)", "baselines", str(folder))
    section.intro = (
        f"Model {result['model']}; methods {', '.join(config['methods'])}; {config['samples']} samples per task for sampled "
        f"figures (parse {config['parse']}); closed tasks are exact in the sweep and logit-bias cells."
    )
    section.meta += [("config", _short(config)), ("wall time", f"{result.get('wall_seconds', 0):.0f} s")]
    fig = pareto_figure(result)
    if fig is not None:
        section.blocks.append(builder.chart(
            fig, "baselines-pareto", "Validity vs spread of every fix",
            "Per task, each method and setting: valid share (x) against TV to uniform among valid answers (y); lower right is "
            f"better; dashed: Pareto frontier; bars: 95% CIs (exact cells have none); {config['parse']} parse.",
        ))
    section.blocks.append(Table("Temperature sweep", "Cells: valid mass · TV all · TV valid.", *sweep_overview(result)))
    section.blocks.append(Table("Every method", "Cells: valid mass · TV all · TV valid.", *methods_overview(result)))
    for task in result["per_task"]:
        section.blocks.append(Table(f"{task}", "Every cell with its intervals (validity: Clopper–Pearson; TVs: 95% bootstrap).", *task_detail(result, task)))
    return section


def train_section(builder: Builder, folder: Path) -> Section:
    record = read_json(folder / "train.json") if (folder / "train.json").is_file() else {}
    config = record.get("config") or (read_json(folder / "train_config.json") if (folder / "train_config.json").is_file() else {})
    section = Section(f"Training run {folder.name}", "train", str(folder))
    if config:
        section.meta.append(("config", _short(config)))
    if record:
        section.meta.append(("run", _train_meta(record)))
    else:
        section.notes.append("train.json is missing (training has not finished); the monitor shows the steps measured so far.")
    monitor = folder / "monitor.jsonl"
    if monitor.is_file():
        records = sorted(read_jsonl(monitor), key=lambda r: (r["step"], r["task"]))
        if records:
            curves = {folder.name: records}
            section.blocks.append(builder.chart(
                charts.monitor_figure(curves, config.get("task"), footer=charts.monitor_footer(curves)),
                f"{folder.name}-monitor", "Collapse monitor during training",
                "TV to uniform among valid answers and valid mass of each monitored task against training step (thick: the trained task).",
            ))
    return section


def capability_section(path: Path, capability: dict) -> Section:
    section = Section("Capability", "capability", str(path))
    section.blocks.append(capability_table(capability))
    return section
