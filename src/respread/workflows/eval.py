"""`evaluate_into`: a run folder evaluated (resuming) and summarised: records, `metrics.json`, `summary.md`."""

from __future__ import annotations

import json
from pathlib import Path

from respread.measure.figures import jsonable, run_metrics
from respread.measure.run import EvalConfig
from respread.records import write_artifact


def evaluate_into(config: EvalConfig, out: Path, parse: str, log=print, backend_factory=None, label: str = "study") -> dict:
    """`respread eval` into `out` (resuming), writing metrics.json and summary.md; returns the metrics.

    A folder whose metrics.json exists is complete (it is written last) and is read, not recomputed.
    `backend_factory` lets several folders share one loaded model; by default `config.model` is loaded.
    """
    from respread.backends import load_backend
    from respread.measure.run import read_run_file, run_eval
    from respread.report.summary import markdown

    if (out / "metrics.json").is_file():
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        state = read_run_file(out)
        same_specs = all(state.get("tasks", {}).get(t.name) == t.model_dump(mode="json") for t in config.tasks)
        same_run = state.get("identity") == config.run_identity() and same_specs
        if same_run and metrics.get("samples_per_prompt") == config.samples and set(metrics["tasks"]) == {t.name for t in config.tasks}:
            return metrics  # else other settings (refused below), more samples or other tasks (resumed)

    def progress(task: str, done: int, wanted: int) -> None:
        if done == wanted:
            log(f"[{label}]   {task}: {wanted} samples" if wanted else f"[{label}]   {task}: exact distribution only")

    run_eval(config, out, backend_factory or (lambda: load_backend(config.model, options=config.model_options)), progress)
    metrics = jsonable(run_metrics(out, config, embed=False))
    metrics["parse"] = parse
    (out / "summary.md").write_text(markdown(metrics, parse), encoding="utf-8")
    write_artifact(out / "metrics.json", "eval", metrics)  # last: its presence means the folder is complete
    return metrics
