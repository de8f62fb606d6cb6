"""A study's section: spread and validity per condition, exact distributions, the monitor, seeds, capability."""

from __future__ import annotations

import re
from pathlib import Path

from respread.report import figures as charts
from respread.report.blocks import (
    _EXACT_DEFINITION,
    Builder,
    Section,
    Table,
    _condition_table,
    _dumbbell_footer,
    _dumbbell_row,
    _exact_footer,
    _short,
    _train_meta,
    capability_table,
    exact_distributions,
    read_json,
    read_jsonl,
)
from respread.report.study import arm_description, picks as _picks


def study_section(builder: Builder, study_dir: Path) -> Section:
    result = read_json(study_dir / "study.json")
    config, conditions, trained = result["config"], result["conditions"], result["trained_task"]
    section = Section(f"Study: train on {trained}, measure the panel", "study", str(study_dir))
    section.intro = (
        f"Model {config['model']}; {arm_description(result)}. The trained task is in orange; every other task is untrained (transfer)."
    )
    section.meta += [("config", _short({k: v for k, v in config.items() if k not in ("arms",)})),
                     ("wall time", f"{result.get('wall_seconds', 0):.0f} s"),
                     ("seconds per stage", _short(result.get("seconds", {})))]
    for arm_dir in sorted(study_dir.glob("train-*")):
        if (arm_dir / "train.json").is_file():
            record = read_json(arm_dir / "train.json")
            section.meta.append((f"{arm_dir.name}", _train_meta(record)))
    for condition in conditions:
        if (study_dir / condition / "provenance.json").is_file():
            p = read_json(study_dir / condition / "provenance.json")
            digest = (p.get("model_sha256") or "no weight file found")[:16]
            section.meta.append((f"eval {condition}", f"model {p.get('model')} (sha256 {digest}…) · {p.get('wall_seconds', 0):.0f} s · {p.get('cpu_hours', 0):.4f} CPU-h"))
    rows = result["table"]
    sizes = sorted({int(m) for r in rows for f in r["conditions"].values() for m in re.findall(r"sampled n=(\d+)", f.get("source", ""))})
    footer = _dumbbell_footer(sizes, config["parse"])
    start, ends = conditions[0], conditions[1:] or conditions[:1]
    section.blocks.append(builder.chart(
        charts.dumbbell_figure([_dumbbell_row(r["task"], r["conditions"], r["trained"]) for r in rows], start, ends,
                               figure="TV to uniform among valid answers", footer=footer),
        "study-spread", f"Spread: {start} → each condition",
        "TV between the valid answers' distribution and uniform (0 = uniform); ring: before, dot: after; one row a task, "
        "sorted by the before value; exact rows have no sampling error, sampled rows carry 95% bootstrap bars.",
    ))
    section.blocks.append(builder.chart(
        charts.dumbbell_figure([_dumbbell_row(r["task"], r["conditions"], r["trained"], "valid") for r in rows], start, ends,
                               figure="valid mass", better="right: more valid answers",
                               footer=_dumbbell_footer(sizes, config["parse"], floor=False).replace("bootstrap CI", "Clopper–Pearson CI")),
        "study-valid", f"Valid mass: {start} → each condition",
        f"Share of replies that are a valid answer under the {config['parse']} parse (exact mass where scored exactly); "
        "right is better here, unlike the spread chart.",
    ))
    distributions: dict[str, dict[str, dict[str, float]]] = {}
    for condition in conditions:
        if (study_dir / condition / "exact.jsonl").is_file():
            for task, probs in exact_distributions(study_dir / condition).items():
                distributions.setdefault(task, {})[condition] = probs
    if distributions:
        section.blocks.append(builder.chart(
            charts.exact_bars_figure(distributions, conditions, footer=_exact_footer()),
            "study-exact", "Exact answer distributions, every condition", _EXACT_DEFINITION,
        ))
    curves = {}
    for arm, runs in (result.get("train") or {arm: [{"dir": f"train-{_slug(arm)}"}] for arm in config["arms"]}).items():
        for run in runs:
            monitor = study_dir / run["dir"] / "monitor.jsonl"
            if monitor.is_file():
                curves[arm if len(runs) == 1 else f"{arm} seed {run['seed']}"] = sorted(read_jsonl(monitor), key=lambda r: (r["step"], r["task"]))
    if any(curves.values()):
        section.blocks.append(builder.chart(
            charts.monitor_figure(curves, trained, footer=charts.monitor_footer(curves)),
            "study-monitor", "Collapse monitor during training",
            f"The trained task's TV among valid answers and valid mass, measured every {config.get('monitor_every')} steps while training.",
        ))
    for row in rows:
        section.blocks.append(_condition_table(row, conditions, config["parse"]))
    section.blocks.append(Table(
        "Top-5 valid picks", "The five most frequent valid answers and their share of valid replies (exact share where scored exactly).",
        ["task", *conditions], [[r["task"], *[_picks(r["conditions"].get(c)) for c in conditions]] for r in rows],
    ))
    if result.get("seed_changes") and len(config.get("seeds") or []) > 1:
        from respread.report.study import SEED_COLUMNS, seed_rows

        section.blocks.append(Table(
            "Change across training seeds", "Change of TV among valid answers from before (negative: flatter); mean with a "
            "95% Student-t interval over seeds; transferred or worse only where the interval excludes 0.",
            SEED_COLUMNS, [[c.replace("**", "") for c in row] for row in seed_rows(result)],
        ))
    if result.get("capability"):
        section.blocks.append(capability_table(result["capability"]))
    return section


def _slug(arm: str) -> str:
    return re.sub(r"[^A-Za-z0-9+_.-]", "-", arm)
