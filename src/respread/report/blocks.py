"""The pieces every report section is built from: charts, tables and sections, the chart writer (`Builder`),
readers of run files, and the small formatters and chart rows sections share."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from respread.errors import RespreadError
from respread.measure.figures import interval
from respread.report import figures as charts
from respread.report.figures import DumbbellRow, Point

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


def exact_distributions(run_dir: Path) -> dict[str, dict[str, float]]:
    """Task -> exact probability of each valid answer (mean over the task's prompts), from `exact.jsonl`."""
    from respread.measure.figures import pooled_exact

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
        ci = interval(f, figure)
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
        valid_ci, tv_ci, all_ci = interval(f, "valid"), interval(f, "tv_valid"), interval(f, "tv_all")
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
