"""`respread compare`: stages from models or run directories, figures per stage, largest significant drop."""

from __future__ import annotations

import json
import math

import pytest
from fakes import FakeBackend
from typer.testing import CliRunner

from respread.cli import app
from respread.measure.run import EvalConfig, run_eval
from respread.locate.compare import CompareConfig, largest_significant_drop
from respread.workflows.compare import run_compare
from respread.tasks import select_tasks

WIDE = {str(i): 0.1 for i in range(1, 11)} | {"Sure! 7": 0.0}
NARROW = {"7": 0.6, "3": 0.2, "Sure! Here is 7": 0.2}
NARROWEST = {"7": 0.97, "oops": 0.03}
STAGES = {"wide-model": WIDE, "narrow-model": NARROW, "narrowest-model": NARROWEST}


def _compare(tmp_path, stages, **options):
    config = CompareConfig(stages=stages, tasks="integer_1_10,prime_below_50", samples=60, resamples=100, **options)
    return run_compare(config, tmp_path / "cmp", log=lambda _: None, backend_factory=lambda model: FakeBackend(STAGES[model]))


def test_compare_on_model_stages_finds_the_largest_significant_drop(tmp_path):
    result = _compare(tmp_path, ["wide-model", "narrow-model", "narrowest-model"])
    assert [s["label"] for s in result["stages"]] == ["wide-model", "narrow-model", "narrowest-model"]
    assert result["tasks"] == ["integer_1_10", "prime_below_50"] and not result["settings_differ"]
    figures = [s["figures"]["integer_1_10"] for s in result["stages"]]
    # Exact figures come from the backend's own distribution, so they are known values.
    assert figures[0]["source"].startswith("exact") and figures[0]["tv_valid"]["value"] == pytest.approx(0.0)
    assert figures[1]["correct"]["value"] == pytest.approx(0.8) and figures[2]["correct"]["value"] == pytest.approx(0.97)
    assert figures[2]["pass_at_k"]["5"]["value"] == pytest.approx(1 - 0.03**5)
    # Among right answers, log2(10) bits -> ~0.8 bits is the larger narrowing; 0.8 -> 0 is the other.
    drop = result["largest_drop"]["integer_1_10"]
    assert (drop["from"], drop["to"], drop["metric"]) == ("wide-model", "narrow-model", "exact entropy")
    assert drop["drop"] == pytest.approx(math.log2(10) - 0.8113, abs=1e-3)
    for t in result["transitions"]:
        d = t["decomposition"]["tasks"]["integer_1_10"]
        assert d["quality_control"]["value"] + d["residual"]["value"] == pytest.approx(d["total_drop"]["value"])
    out = tmp_path / "cmp"
    assert (out / "compare.png").stat().st_size > 10_000
    saved = json.loads((out / "compare.json").read_text())
    assert saved["largest_drop"] == result["largest_drop"]
    markdown = (out / "compare.md").read_text()
    assert "| integer_1_10 | valid % |" in markdown and "wide-model → narrow-model" in markdown


def test_compare_resumes_model_stages_and_reads_run_directories(tmp_path):
    _compare(tmp_path, ["wide-model", "narrow-model"])
    run_dir = tmp_path / "eval-narrowest"
    config = EvalConfig(model="narrowest-model", tasks=select_tasks("integer_1_10,prime_below_50"), samples=60, exact=True)
    run_eval(config, run_dir, lambda: FakeBackend(NARROWEST))
    from respread.workflows.eval import evaluate_into

    evaluate_into(config, run_dir, "strict", log=lambda _: None, backend_factory=lambda: FakeBackend(NARROWEST))

    def no_model(model):
        raise AssertionError(f"stage {model} was complete and should not be evaluated again")

    config = CompareConfig(stages=["wide-model", "narrow-model", str(run_dir)], labels=["a", "b", "c"],
                           tasks="integer_1_10,prime_below_50", samples=60, resamples=50)
    # Labels changed, so the model stages go to new folders: they are evaluated again (by the fakes).
    result = run_compare(config, tmp_path / "cmp2", log=lambda _: None, backend_factory=lambda m: FakeBackend(STAGES[m]))
    assert result["stages"][2]["source"] == str(run_dir)
    again = run_compare(config, tmp_path / "cmp2", log=lambda _: None, backend_factory=no_model)
    assert again["largest_drop"] == result["largest_drop"]


def test_settings_that_differ_between_stages_are_named(tmp_path):
    runs = []
    for name, temperature in (("t1", 1.0), ("t05", 0.5)):
        config = EvalConfig(model="wide-model", tasks=select_tasks("integer_1_10"), samples=20, temperature=temperature)
        from respread.workflows.eval import evaluate_into

        evaluate_into(config, tmp_path / name, "strict", log=lambda _: None, backend_factory=lambda: FakeBackend(WIDE))
        runs.append(str(tmp_path / name))
    result = run_compare(CompareConfig(stages=runs, resamples=20), tmp_path / "cmp", log=lambda _: None)
    assert result["settings_differ"] == ["sampling"]
    assert "Settings differ between stages" in (tmp_path / "cmp" / "compare.md").read_text()


def test_largest_significant_drop_ignores_drops_whose_interval_reaches_zero():
    def transition(a, b, value, low):
        return {"from": a, "to": b, "decomposition": {"tasks": {"t": {
            "metric": "entropy", "residual": {"value": value, "low": low, "high": value + 1},
            "total_drop": {"value": 5.0, "low": 4.0, "high": 6.0}}}}}

    transitions = [transition("a", "b", 2.0, -0.1), transition("b", "c", 0.5, 0.1), transition("c", "d", 0.9, 0.2)]
    best = largest_significant_drop(transitions, "t")
    assert (best["from"], best["to"], best["drop"]) == ("c", "d", 0.9)
    assert largest_significant_drop(transitions[:1], "t") is None
    assert largest_significant_drop(transitions, "t", part="total_drop")["from"] == "a"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["only-one"], "compare needs at least two stages"),
        (["a", "b", "--label", "x"], "--label was given 1 times for 2 stages"),
        (["a/x", "b/x"], "two stages share the label 'x'"),
        (["a", "b", "--parse", "loose"], "--parse must be strict or lenient"),
        (["a", "b", "--cot", "sideways"], "unknown --cot mode 'sideways'"),
    ],
)
def test_compare_bad_arguments_fail_with_one_line(tmp_path, args, message):
    result = CliRunner().invoke(app, ["compare", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_compare_on_a_run_directory_without_metrics_is_one_line(tmp_path):
    run = tmp_path / "half"
    config = EvalConfig(model="wide-model", tasks=select_tasks("integer_1_10"), samples=5)
    run_eval(config, run, lambda: FakeBackend(WIDE))
    result = CliRunner().invoke(app, ["compare", str(run), str(run), "--label", "a", "--label", "b", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: run directory {run} has no metrics.json; finish it with respread eval first"


def test_rerunning_a_model_stage_with_other_settings_is_refused_not_reused(tmp_path):
    _compare(tmp_path, ["wide-model", "narrow-model"])
    result = CliRunner().invoke(app, ["compare", "wide-model", "narrow-model", "--tasks", "integer_1_10,prime_below_50",
                                      "--samples", "60", "--temperature", "0.5", "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "holds a run with different sampling" in result.stderr


def test_a_changed_task_spec_is_recomputed_not_reused(tmp_path):
    from respread.workflows.eval import evaluate_into
    from respread.tasks import TaskSpec

    first = TaskSpec(name="pick", prompt="Pick 1 to 10.", answer_type="integer", low=1, high=10)
    second = first.model_copy(update={"prompts": ["Pick 1 to 10.", "Choose from 1 to 10."]})
    log = lambda _: None  # noqa: E731
    for task in (first, second):
        config = EvalConfig(model="wide-model", tasks=[task], samples=10)
        metrics = evaluate_into(config, tmp_path / "run", "strict", log=log, backend_factory=lambda: FakeBackend(WIDE))
    assert metrics["tasks"]["pick"]["prompts"] == 2 and metrics["tasks"]["pick"]["parse"]["strict"]["n"] == 20
