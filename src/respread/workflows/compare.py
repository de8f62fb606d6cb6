"""`run_compare`: evaluate (or read) every stage of a lineage, compare them (`respread.locate.compare`), and write
`compare.json`, `compare.md` and `compare.png`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from respread.errors import RespreadError
from respread.locate.compare import CompareConfig, _is_run_dir, _slug, assemble
from respread.records import write_artifact

Log = Callable[[str], None]


def run_compare(config: CompareConfig, out: Path, log: Log = print, backend_factory=None) -> dict:
    """Evaluate or read every stage, then figures, decompositions and the largest significant drop per task.

    Resumable: a model stage whose folder is complete is read, not re-run. `backend_factory(model)`
    replaces loading a model by name (tests pass in-memory models).
    """
    from respread.measure.run import EvalConfig
    from respread.workflows.eval import evaluate_into

    labels = config.stage_labels()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    stage_dirs: list[Path] = []
    metrics: list[dict] = []
    tasks = None
    for index, (stage, label) in enumerate(zip(config.stages, labels)):
        if _is_run_dir(stage):
            folder = Path(stage)
            metrics_file = folder / "metrics.json"
            if not metrics_file.is_file():
                raise RespreadError(f"run directory {folder} has no metrics.json; finish it with respread eval first")
            try:
                stage_metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise RespreadError(f"{metrics_file} is damaged ({exc}); re-run respread eval into {folder}") from exc
            log(f"[compare] stage {index + 1}/{len(labels)} {label}: run directory {folder}")
        else:
            if tasks is None:
                from respread.tasks import select_tasks_with_gsm8k

                tasks = select_tasks_with_gsm8k(
                    config.tasks, config.task_files, (), config.gsm8k, config.gsm8k_subset, config.seed
                )
            folder = out / "stages" / f"{index + 1:02d}-{_slug(label)}"
            log(f"[compare] stage {index + 1}/{len(labels)} {label}: evaluating {stage} into {folder}")
            eval_config = EvalConfig(
                model=stage, tasks=tasks, samples=config.samples, temperature=config.temperature, top_p=config.top_p,
                min_p=config.min_p, seed=config.seed, exact=config.exact, cot=config.cot, model_options=config.model_options,
            )
            factory = (lambda model=stage: backend_factory(model)) if backend_factory else None
            stage_metrics = evaluate_into(eval_config, folder, config.parse, log=log, backend_factory=factory, label="compare")
        stage_dirs.append(folder)
        metrics.append(stage_metrics)
    result = assemble(config, labels, stage_dirs, metrics, started, log)
    from respread.report.compare import compare_markdown, plot_compare

    try:
        plot = plot_compare(result, out / "compare.png")
    except ImportError as exc:  # the tables do not need matplotlib; only the plot is lost
        log(f"[compare] no plot: {exc.name} is missing (pip install 'respread[train]')")
        plot = None
    result["plot"] = str(plot) if plot else None
    (out / "compare.md").write_text(compare_markdown(result), encoding="utf-8")
    write_artifact(out / "compare.json", "compare", result)
    return result


