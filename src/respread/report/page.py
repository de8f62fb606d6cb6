"""`respread report`: one self-contained HTML page (plus PNG and SVG of every chart) from run outputs.

Each input is read by what it holds (`study.json`, `compare.json`, `baselines.json`, `train.json`,
`run.json`, `capability.json`, or a JSON file written by `decompose --out` / `capability --out`), and
becomes one section of charts and tables. Pieces a run does not have are left out; a damaged file
stops the report with one line naming it. Charts are inline SVG, styles and the one script inline, so
the page opens anywhere with no network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from respread.errors import RespreadError
from respread.report import figures as charts
from respread.report.figures import DumbbellRow, Point
from respread.report.study import arm_description, picks as _picks


@dataclass
class Chart:
    title: str
    definition: str  # one line: what the chart shows, its n and its uncertainty
    svg: str
    files: list[str]  # PNG and SVG, relative to the page


@dataclass
class Table:
    title: str
    definition: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    kind: str
    source: str
    intro: str = ""
    meta: list[tuple[str, str]] = field(default_factory=list)
    blocks: list[Chart | Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left out and why


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RespreadError(f"{path} is damaged ({exc}); re-run the command that wrote it, or leave it out") from exc


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file respread wrote (a line cut off by kill -9 at the end is skipped)."""
    from respread.records import iter_records

    try:
        return list(iter_records(path))
    except OSError as exc:
        raise RespreadError(f"{path} cannot be read ({exc.strerror or exc}); re-run the command that wrote it") from exc


class Builder:
    """Collects sections; writes each chart as PNG + SVG under `assets` and keeps its SVG for inlining."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.assets = out.parent / f"{out.stem}_figures"
        self.sections: list[Section] = []
        self._names: set[str] = set()
        self.drawn: set[str] = set()

    def chart(self, fig, name: str, title: str, definition: str) -> Chart:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "chart"
        stem, i = slug, 1
        while stem in self._names:
            i += 1
            stem = f"{slug}-{i}"
        self._names.add(stem)
        self.drawn.add(stem)
        png, svg, markup = charts.save_figure(fig, self.assets / stem)
        files = [quote(p.relative_to(self.out.parent).as_posix()) for p in (png, svg)]
        return Chart(title, definition, markup, files)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items() if v not in (None, [], {}, ""))
    if isinstance(value, list):
        return ", ".join(map(_short, value)) or "—"
    return str(value)


def _ci(value, low=None, high=None, scale: float = 1.0, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    text = f"{scale * value:.{digits}f}"
    if low is not None and high is not None:
        text += f" [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"
    return text


# --- eval runs ---------------------------------------------------------------------------------------


def exact_distributions(run_dir: Path) -> dict[str, dict[str, float]]:
    """Task -> exact probability of each valid answer (mean over the task's prompts), from `exact.jsonl`."""
    from respread.analysis import pooled_exact

    by_task: dict[str, list[dict]] = {}
    path = run_dir / "exact.jsonl"
    if path.is_file():
        for record in read_jsonl(path):
            by_task.setdefault(record["task"], []).append(record)
    return {task: pooled_exact(records) for task, records in by_task.items()}


def provenance_meta(run_dir: Path) -> list[tuple[str, str]]:
    from respread.provenance import PROVENANCE_FILE

    path = run_dir / PROVENANCE_FILE
    meta: list[tuple[str, str]] = []
    if path.is_file():
        p = read_json(path)
        if p.get("model_sha256"):
            meta.append(("model files (sha256)", ", ".join(f"{n}: {h[:16]}…" for n, h in p.get("model_files", {}).items())))
        meta.append(("versions", _short(p.get("versions", {}))))
        meta.append(("wall time · CPU-hours", f"{p.get('wall_seconds', 0):.0f} s over {len(p.get('invocations', []))} invocation(s) · {p.get('cpu_hours', 0):.4f} CPU-h"))
        meta.append(("machine", _short(p.get("machine", {}))))
        engines = {_short(i["engine"]) for i in p.get("invocations", []) if i.get("engine")}
        if engines:
            meta.append(("engine", " · ".join(sorted(engines))))
    timing = run_dir / "timing.json"
    if timing.is_file():
        meta.append(("wall time (baselines cell)", f"{read_json(timing).get('seconds')} s"))
    return meta


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
        from respread.analysis import headline_figures

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


_EXACT_DEFINITION = (
    "P(answer | valid answer) of every valid answer, from teacher-forced probabilities (no sampling error); "
    "dashed: uniform."
)


def _exact_footer() -> str:
    return "exact: probabilities of every valid answer's surface forms by teacher forcing (no sampling error); dashed line: uniform 1/k"


def _first_line(notes: str) -> str:
    first = notes.strip().split("\n- ")[0].lstrip("- ").replace("\n  ", " ")
    return re.sub(r"\*\*(.+?)\*\*", r"\1", first)


def _dumbbell_row(task: str, conditions: dict[str, dict], trained: bool = False, figure: str = "tv_valid") -> DumbbellRow:
    points, source = {}, {}
    for condition, f in conditions.items():
        ci = f.get(f"{figure}_ci") or [None, None]
        floor = f.get("floor_tv_valid") if figure == "tv_valid" else None
        valid = re.search(r"\((\d+) valid", f.get("source", ""))
        note = "exact" if f.get("source") == "exact" else (f"{valid.group(1)} valid" if valid and figure == "tv_valid" else "")
        points[condition] = Point(f.get(figure), ci[0], ci[1], floor, note)
        source[condition] = f.get("source", "")
    return DumbbellRow(task, points, trained, source)


def _dumbbell_row_from_estimates(task: str, stages: dict[str, dict]) -> DumbbellRow:
    """A row from `compare`'s per-stage figures ({value, low, high} estimates; exact ones have no interval)."""
    points = {}
    for label, f in stages.items():
        e = f.get("tv_valid") or {}
        exact = str(f.get("source", "")).startswith("exact")
        correct = (f.get("correct") or {}).get("value")
        valid = round(f["n"] * correct) if f.get("n") and correct is not None else None
        note = "exact" if exact else (f"{valid} valid" if valid is not None else f.get("source", ""))
        points[label] = Point(e.get("value"), None if exact else e.get("low"), None if exact else e.get("high"),
                              None if exact else f.get("floor_tv_valid"), note)
    return DumbbellRow(task, points)


def _dumbbell_footer(sizes: list[int], parse: str, floor: bool = True) -> str:
    sampled = (
        f"sampled: n = {', '.join(map(str, sizes))} replies per task ({'labels: the valid ones behind each TV, ' if floor else ''}"
        f"{parse} parse), bars = 95% bootstrap CI" if sizes else ""
    )
    return " · ".join(x for x in (
        "exact rows: no sampling error", sampled, "grey band: noise floor (a uniform sampler at that n)" if floor else "",
    ) if x)


# --- study -------------------------------------------------------------------------------------------


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


def _train_meta(record: dict) -> str:
    parts = [f"method {record['config'].get('method')}", f"rewards {_short(record['config'].get('rewards'))}"]
    if record.get("wall_seconds") is not None:
        parts.append(f"wall {record['wall_seconds']:.0f} s")
    if record.get("cpu_hours") is not None:
        parts.append(f"{record['cpu_hours']} CPU-h")
    if record.get("versions"):
        parts.append(_short(record["versions"]))
    return " · ".join(parts)


def _condition_table(row: dict, conditions: list[str], parse: str) -> Table:
    body = []
    for condition in conditions:
        f = row["conditions"].get(condition)
        if f is None:
            continue
        valid_ci = f.get("valid_ci") or [None, None]
        tv_ci = f.get("tv_valid_ci") or [None, None]
        all_ci = f.get("tv_all_ci") or [None, None]
        body.append([
            condition, f["source"], _ci(f["valid"], *valid_ci, scale=100, digits=1), _ci(f["tv_all"], *all_ci),
            _ci(f["tv_valid"], *tv_ci), "—" if f.get("floor_tv_valid") is None else f"{f['floor_tv_valid']:.3f}",
            "n/a" if f.get("entropy_bits") is None else f"{f['entropy_bits']:.2f}", _calibrated(f.get("calibrated")),
        ])
    title = f"{row['task']} (trained)" if row["trained"] else row["task"]
    return Table(
        title, f"Per condition; exact rows have no interval; sampled rows: validity Clopper–Pearson, plug-in TVs with their 95% "
        f"bootstrap (rerun) spread, and the calibrated eb-profile TV among valid with its 95% interval († outside its "
        f"calibrated regime: fewer valid replies than answers); {parse} parse.",
        ["condition", "figures from", "valid % [CI]", "TV all [CI]", "TV valid [CI]", "floor (TV valid)", "entropy bits",
         "calibrated TV valid [CI]"], body,
    )


def _calibrated(figures: dict | None) -> str:
    tv = (figures or {}).get("tv_valid")
    if not tv or tv.get("value") is None or tv["value"] != tv["value"]:
        return "—"
    return _ci(tv["value"], tv.get("low"), tv.get("high")) + ("" if tv.get("calibrated_regime", True) else " †")


def capability_table(capability: dict) -> Table:
    from respread.report.study import CAPABILITY_COLUMNS, capability_rows

    return Table(
        "Capability", "MMLU: log-probability choice of A–D; GSM8K: greedy answer; accuracy with its exact (Clopper–Pearson) "
        "95% CI; KL(original ‖ model) in nats per token on neutral prompts, 95% bootstrap CI over prompts.",
        ["condition", *CAPABILITY_COLUMNS[1:]], capability_rows(capability),
    )


# --- compare, decompose, baselines, train, capability -----------------------------------------------


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


# --- assembly -----------------------------------------------------------------------------------------


def _is_capability(data: dict) -> bool:
    return any(k in data for k in ("mmlu", "gsm8k", "kl")) and "model" in data


RUN_FILES = ("study.json", "compare.json", "baselines.json", "train.json", "run.json", "metrics.json", "train_config.json")
RUN_OWN_FILES = RUN_FILES + ("samples.jsonl", "exact.jsonl", "monitor.jsonl", "provenance.json", "timing.json")


def sections_for(builder: Builder, path: Path) -> list[Section]:
    """The sections one input contributes, by what it holds (a file of the wrong shape is one error line)."""
    try:
        return _sections_for(builder, path)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise RespreadError(
            f"{path} holds a file that is not what respread wrote ({type(exc).__name__}: {exc}); "
            "re-run the command that wrote it, or leave it out"
        ) from exc


def _sections_for(builder: Builder, path: Path) -> list[Section]:
    if path.is_file():
        if path.name in RUN_OWN_FILES:
            return _sections_for(builder, path.parent)  # a run's own file: the run it belongs to
        if path.suffix != ".json":
            raise RespreadError(f"{path} is a file respread report cannot read; give the run directory that holds it")
        data = read_json(path)
        if not isinstance(data, dict):
            raise RespreadError(f"{path} is not a JSON object respread wrote; give a run directory, or a decompose or capability JSON")
        if "transitions" in data and "stages" in data:
            return [compare_section(builder, path, data)]
        if {"reference", "target", "tasks"} <= set(data):
            return [decompose_section(builder, path, data)]
        if _is_capability(data):
            return [capability_section(path, {data.get("model", path.stem): data})]
        if data and all(isinstance(v, dict) and _is_capability(v) for v in data.values()):
            return [capability_section(path, data)]
        raise RespreadError(f"{path} is not a file respread report can read (a decompose or capability JSON, or a run directory)")
    if not path.is_dir():
        raise RespreadError(f"{path} does not exist; give run directories (or JSON files) written by respread")
    if (path / "study.json").is_file():
        return [study_section(builder, path)]
    if (path / "compare.json").is_file():
        return [compare_section(builder, path, read_json(path / "compare.json"))]
    if (path / "baselines.json").is_file():
        return [baselines_section(builder, path)]
    if (path / "train.json").is_file() or (path / "monitor.jsonl").is_file():
        return [train_section(builder, path)]
    if (path / "run.json").is_file():
        return [eval_section(builder, path)]
    if (path / "capability.json").is_file():
        return [capability_section(path / "capability.json", read_json(path / "capability.json"))]
    # A study or baselines run still under way has no summary file yet, but its finished parts are runs.
    parts = [sub for sub in sorted(path.iterdir()) if sub.is_dir() and any((sub / f).is_file() for f in RUN_FILES + ("monitor.jsonl",))]
    if parts:
        sections = [section for sub in parts for section in _sections_for(builder, sub)]
        if sections:
            sections[0].notes.insert(0, f"{path} has no summary file of its own (a study or sweep still under way?): its finished parts are shown one by one.")
        return sections
    raise RespreadError(
        f"{path} is not a respread run directory (it has no run.json, study.json, compare.json, baselines.json, "
        "train.json or capability.json, nor folders that do)"
    )


def across_runs_section(builder: Builder, runs: list[Path]) -> Section | None:
    """Two or more eval runs: the first is 'before', each later one an 'after' of the same tasks."""
    from respread.analysis import headline_figures

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


def build_report(inputs: list[Path], out: Path) -> Path:
    """Write the HTML page `out` and its charts (PNG + SVG) in `<out stem>_figures/` beside it."""
    if not inputs:
        raise RespreadError("give at least one run directory")
    if out.suffix.lower() not in (".html", ".htm"):
        raise RespreadError(f"--out {out} must end in .html")
    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise RespreadError(f"respread report needs {exc.name}: pip install 'respread[report]'") from exc
    if out.is_dir():
        raise RespreadError(f"--out {out} is a directory; give a file name ending in .html")
    # A run's own file stands for its run; the same run twice adds nothing.
    folders = [p.parent if p.is_file() and p.name in RUN_OWN_FILES else p for p in inputs]
    seen: set[Path] = set()
    unique = [p for p in folders if not (p.resolve() in seen or seen.add(p.resolve()))]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        builder = Builder(out)
        across = across_runs_section(builder, unique)
        if across:
            builder.sections.append(across)
        for path in unique:
            builder.sections.extend(sections_for(builder, path))
        page = render(builder.sections, unique)
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
        # Charts of an earlier report under the same name that this one did not draw again would mislead.
        for stale in builder.assets.glob("*"):
            if stale.suffix in (".png", ".svg") and stale.stem not in builder.drawn:
                stale.unlink()
    except OSError as exc:
        where = exc.filename or out
        raise RespreadError(f"cannot write the report at {where} ({exc.strerror or exc}); choose another --out") from exc
    return out


def render(sections: list[Section], inputs: list[Path]) -> str:
    import jinja2

    from respread.provenance import versions

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("respread.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["anchor"] = lambda text: re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    template = env.get_template("report.html.j2")
    return template.render(
        sections=sections,
        inputs=[str(p) for p in inputs],
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        versions=versions(),
        is_chart=lambda block: isinstance(block, Chart),
    )
