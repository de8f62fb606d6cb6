"""respread from Python: `evaluate` a model (by name, or one already in memory) and `study` restoring it.

    import respread
    r = respread.evaluate("smollm2-135m-instruct", tasks=["integer_1_10"], samples=20, exact=True)
    r.to_pandas()          # one row per task × figure: value, low, high, method, n
    r.save("runs/mine")    # the same run folder `respread eval --out` writes

A notebook right after training passes its model and tokenizer: `respread.evaluate(model, tokenizer=tok, ...)`.
Every figure keeps the interval it has on the command line (exact figures have none: no sampling error).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from respread.backends.options import ModelOptions
from respread.errors import RespreadError

RUN_FILES = ("run.json", "samples.jsonl", "exact.jsonl", "metrics.json", "summary.md", "provenance.json")


@dataclass
class Results:
    """What one evaluation measured: `metrics` (as `metrics.json` holds them) and the run's files."""

    metrics: dict
    parse: str = "strict"
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    out: Path | None = None  # the run folder, when it was written to one

    def rows(self) -> list[dict]:
        """One dict per task and figure: task, figure, value, low, high, method, n (None where not applicable)."""
        return figure_rows(self.metrics, self.parse)

    def to_pandas(self):
        """`rows()` as a pandas DataFrame (pandas is an optional extra: pip install 'respread[pandas]')."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise RespreadError("to_pandas needs pandas: pip install 'respread[pandas]'") from exc
        frame = pd.DataFrame(self.rows(), columns=["task", "figure", "value", "low", "high", "method", "n"])
        return frame.astype({"n": "Int64"})

    def to_markdown(self) -> str:
        """The run's summary table, as `summary.md` holds it."""
        from respread.report.summary import markdown

        return markdown(self.metrics, self.parse)

    def save(self, directory: str | Path) -> Path:
        """Write the run folder (records, metrics, summary) to `directory`; `respread report` reads it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.out is not None and self.out.resolve() != directory.resolve():
            for name in RUN_FILES:
                if (self.out / name).is_file():
                    shutil.copy2(self.out / name, directory / name)
        else:
            for name, payload in self.files.items():
                (directory / name).write_bytes(payload)
        return directory

    def __repr__(self) -> str:
        tasks = ", ".join(self.metrics.get("tasks", {}))
        return f"Results(model={self.metrics.get('model')!r}, tasks=[{tasks}], parse={self.parse!r})"


def evaluate(
    model: Any,
    tasks: str | Sequence[str] = "categorical",
    *,
    samples: int = 100,
    exact: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    min_p: float = 0.0,
    max_new_tokens: int | None = None,
    seed: int = 0,
    parse: str = "strict",
    out: str | Path | None = None,
    tokenizer: Any = None,
    task_files: Sequence[str | Path] = (),
    options: ModelOptions | None = None,
    **model_options,
) -> Results:
    """Evaluate `model` on `tasks` as `respread eval` does; returns the figures (`Results`).

    `model` is an alias, path, hub id or adapter folder, or a transformers model already in memory (give its
    `tokenizer`, or pass `(model, tokenizer)`). `tasks` is a group (`categorical`, `listed`, ...) or task names.
    Model options (`device`, `dtype`, `adapter`, `chat_template`, `system_prompt`, ... as `ModelOptions`) go by
    keyword or as `options`. With `out`, the run folder is written there (and re-running resumes); without,
    it lives in memory and `Results.save` writes it later.
    """
    from respread.measure.figures import jsonable, run_metrics
    from respread.measure.run import EvalConfig, run_eval
    from respread.tasks import select_tasks

    if parse not in ("strict", "lenient"):
        raise RespreadError(f"parse must be strict or lenient (got {parse!r})")
    options = ModelOptions(**((options or ModelOptions()).as_dict() | model_options))
    if isinstance(model, tuple):
        model, tokenizer = model
    selection = tasks if isinstance(tasks, str) else ",".join(tasks)
    name = model if isinstance(model, str) else getattr(getattr(model, "config", None), "_name_or_path", None) or "in-memory"
    config = EvalConfig(
        model=str(name), tasks=select_tasks(selection, list(task_files), seed=seed), samples=samples, temperature=temperature,
        top_p=top_p, top_k=top_k, min_p=min_p, max_new_tokens=max_new_tokens, seed=seed, exact=exact,
        chunk=options.batch_size, model_options=options,
    )
    factory = _backend_factory(model, tokenizer, options)
    with tempfile.TemporaryDirectory(prefix="respread-") as scratch:
        folder = Path(out) if out is not None else Path(scratch)
        run_eval(config, folder, factory)
        metrics = jsonable(run_metrics(folder, config, embed=False))
        metrics["parse"] = parse
        from respread.records import write_artifact
        from respread.report.summary import markdown

        (folder / "summary.md").write_text(markdown(metrics, parse), encoding="utf-8")
        write_artifact(folder / "metrics.json", "eval", metrics)
        files = {} if out is not None else {n: (folder / n).read_bytes() for n in RUN_FILES if (folder / n).is_file()}
    return Results(metrics=metrics, parse=parse, files=files, out=Path(out) if out is not None else None)


def _backend_factory(model: Any, tokenizer: Any, options: ModelOptions):
    if isinstance(model, str):
        from respread.backends import load_backend

        return lambda: load_backend(model, options=options)
    if tokenizer is None:
        raise RespreadError("an in-memory model needs its tokenizer: respread.evaluate(model, tokenizer=tokenizer, ...)")
    from respread.backends.prompting import PromptRenderer
    from respread.backends.transformers import TransformersBackend

    renderer = PromptRenderer(tokenizer, chat_template=options.chat_template, system_prompt=options.system_prompt)
    return lambda: TransformersBackend.from_loaded(model, tokenizer, batch_size=options.batch_size, renderer=renderer)


def figure_rows(metrics: dict, parse: str = "strict") -> list[dict]:
    """Every headline figure of a run as rows, `method` saying where its interval comes from (`respread.types.
    Estimate`): `exact` (the exact distribution), `clopper-pearson` (sampled validity), `bootstrap` (plug-in
    figures), `eb-profile` (the calibrated estimate's interval for the population value), `subsampling` (text). An exact figure's low and high are its
    value: it has no sampling error on the prompts it was scored on."""
    rows = []

    def add(task, figure, value, low=None, high=None, method=None, n=None):
        rows.append({"task": task, "figure": figure, "value": value, "low": low, "high": high, "method": method, "n": n})

    for task, figures in metrics.get("tasks", {}).items():
        exact = figures.get("exact")
        if exact:  # no sampling error: the interval is the value itself
            for figure in ("valid_mass", "tv_all", "tv_valid", "entropy_bits"):
                value = exact.get(figure)
                add(task, figure, value, value, value, "exact")
        sampled = (figures.get("parse") or {}).get(parse)
        if sampled and sampled.get("n"):
            n = sampled["n"]
            for figure, key in (("valid", "validity"), ("tv_all", "tv_all"), ("tv_valid", "tv_valid"), ("entropy_bits", "entropy_bits"), ("distinct", "distinct")):
                f = sampled[key]
                add(task, figure, f["value"], f["low"], f["high"], f.get("method", "bootstrap"), f.get("n", n))
            for figure, f in (sampled.get("calibrated") or {}).items():
                if isinstance(f, dict) and "value" in f:
                    add(task, figure, f["value"], f.get("low"), f.get("high"), f.get("method", "eb-profile"), f.get("n", n))
        for figure, f in (figures.get("text") or {}).items():
            if isinstance(f, dict) and "value" in f:
                add(task, figure, f["value"], f.get("low"), f.get("high"), f.get("method", "subsampling"), f.get("n"))
    return rows


def study(model: str = "smollm2-135m-instruct", *, out: str | Path | None = None, **settings) -> "StudyResults":
    """Run `respread study` from Python (`StudyConfig` fields by keyword, model options as `model_options=`);
    `out` defaults to a fresh temporary folder, which is kept (it holds the trained models)."""
    from respread.restore.study import StudyConfig
    from respread.workflows.study import run_study

    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="respread-study-"))
    result = run_study(StudyConfig(model=model, **settings), out, log=lambda message: None)
    return StudyResults(result, out)


@dataclass
class StudyResults:
    result: dict  # as study.json holds it
    out: Path

    def to_pandas(self):
        """One row per task, condition and figure, then the across-seed changes (`condition` = 'change: ARM')."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise RespreadError("to_pandas needs pandas: pip install 'respread[pandas]'") from exc
        from respread.measure.figures import interval

        rows = []
        for row in self.result["table"]:
            for condition, figures in row["conditions"].items():
                for figure in ("valid", "tv_all", "tv_valid", "entropy_bits"):
                    low, high = interval(figures, figure)
                    rows.append({"task": row["task"], "trained": row["trained"], "condition": condition, "figure": figure,
                                 "value": figures.get(figure), "low": low, "high": high, "source": figures["source"]})
        for change in self.result.get("seed_changes", []):
            c = change["change"]
            rows.append({"task": change["task"], "trained": change["trained"], "condition": f"change: {change['arm']}",
                         "figure": f"{change['figure']} change", "value": c.get("value", c.get("mean")), "low": c["low"], "high": c["high"],
                         "source": f"mean over {c['n']} seeds (t interval)"})
        return pd.DataFrame(rows)

    def to_markdown(self) -> str:
        return (self.out / "study.md").read_text(encoding="utf-8")

    def save(self, directory: str | Path) -> Path:
        """Copy the study's summary files (study.json, study.md, report.html, monitor.png) to `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("study.json", "study.md", "report.html", "monitor.png", "capability.json"):
            if (self.out / name).is_file():
                shutil.copy2(self.out / name, directory / name)
        return directory
