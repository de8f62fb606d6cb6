"""`respread report`: one self-contained HTML page (plus PNG and SVG of every chart) from run outputs.

Each input is read by what it holds (`study.json`, `compare.json`, `baselines.json`, `train.json`,
`run.json`, `capability.json`, or a JSON file written by `decompose --out` / `capability --out`), and
becomes one section of charts and tables. Pieces a run does not have are left out; a damaged file
stops the report with one line naming it. Charts are inline SVG, styles and the one script inline, so
the page opens anywhere with no network.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from respread.errors import RespreadError
from respread.records import capability_models
from respread.report.blocks import Builder, Chart, Section, read_json
from respread.report.sections.lineage import compare_section, decompose_section
from respread.report.sections.restore import baselines_section, capability_section, train_section
from respread.report.sections.runs import across_runs_section, eval_section
from respread.report.sections.study import study_section

SUMMARY_FILES = {"study.json": "study", "compare.json": "compare", "baselines.json": "baselines", "train.json": "train",
                 "metrics.json": "eval", "capability.json": "capability"}
RUN_FILES = ("study.json", "compare.json", "baselines.json", "train.json", "run.json", "metrics.json", "train_config.json")
RUN_OWN_FILES = RUN_FILES + ("samples.jsonl", "exact.jsonl", "monitor.jsonl", "provenance.json", "timing.json")


def artifact_kind(data: dict, name: str = "") -> str | None:
    """What a JSON output is: its declared `kind`; for a file written before outputs declared it, the kind its
    file name or its keys show (the adapter for schema 1)."""
    if isinstance(data, dict) and isinstance(data.get("kind"), str) and "schema" in data:
        return data["kind"]
    if name in SUMMARY_FILES:
        return SUMMARY_FILES[name]
    if not isinstance(data, dict):
        return None
    if "transitions" in data and "stages" in data:
        return "compare"
    if {"reference", "target", "tasks"} <= set(data):
        return "decompose"
    if capability_models(data) is not data or (data and all(isinstance(v, dict) and "model" in v and any(k in v for k in ("mmlu", "gsm8k", "kl")) for v in data.values())):
        return "capability"
    return None


def sections_for(builder: Builder, path: Path) -> list[Section]:
    """The sections one input contributes, by the kind it declares (a file of the wrong shape is one error line)."""
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
        kind = artifact_kind(data, path.name)
        if kind == "compare":
            return [compare_section(builder, path, data)]
        if kind == "decompose":
            return [decompose_section(builder, path, data)]
        if kind == "capability":
            return [capability_section(path, capability_models(data))]
        raise RespreadError(f"{path} is not a file respread report can read (a decompose or capability JSON, or a run directory)")
    if not path.is_dir():
        raise RespreadError(f"{path} does not exist; give run directories (or JSON files) written by respread")
    for name in ("study.json", "compare.json", "baselines.json", "train.json"):
        if (path / name).is_file():
            return [DIRECTORY_SECTIONS[artifact_kind(read_json(path / name), name)](builder, path)]
    if (path / "monitor.jsonl").is_file():
        return [train_section(builder, path)]  # a training run still under way
    if (path / "run.json").is_file():
        return [eval_section(builder, path)]
    if (path / "capability.json").is_file():
        return [capability_section(path / "capability.json", capability_models(read_json(path / "capability.json")))]
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


# The section of a run folder, by the kind its summary file declares.
DIRECTORY_SECTIONS = {
    "study": study_section,
    "compare": lambda builder, path: compare_section(builder, path, read_json(path / "compare.json")),
    "baselines": baselines_section,
    "train": train_section,
}


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
