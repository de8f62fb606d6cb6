"""`respread baselines`: logit bias, seeded prompts, Pareto frontier, sweep cells, and the command end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from respread.backends import SamplingParams
from respread.backends.warping import warped_logprobs as _warped_logprobs
from respread.errors import RespreadError
from respread.restore.baselines.logit_bias import LogitBias
from respread.workflows.baselines import BaselinesConfig, pareto_by_task
from respread.restore.baselines.seeded import seeded_prompts, seeded_task
from respread.tasks import registry


# ------------------------------------------------------------------------------------------ fast units
def test_logit_bias_is_added_to_raw_logits_before_temperature():
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0]])
    params = SamplingParams(temperature=2.0, logit_bias=((0, 3.0), (3, -0.5)))
    expected = ((logits + torch.tensor([3.0, 0.0, 0.0, -0.5])) / 2.0).log_softmax(-1)
    assert torch.allclose(_warped_logprobs(logits, params), expected)
    # Greedy decoding picks the argmax of the biased logits.
    greedy = _warped_logprobs(logits, SamplingParams(temperature=0, logit_bias=((0, 3.0),)))
    assert greedy[0, 0] == 0 and torch.isinf(greedy[0, 1:]).all()


def test_an_unbiased_run_keeps_the_settings_it_was_recorded_with():
    # Runs recorded before logit_bias existed must keep their keys, so the field is absent when unused.
    assert "logit_bias" not in SamplingParams().as_dict()
    assert SamplingParams(logit_bias=((5, 1.5),)).as_dict()["logit_bias"] == {"5": 1.5}


def test_sampling_params_refuse_a_non_finite_bias():
    with pytest.raises(RespreadError, match="logit_bias"):
        SamplingParams(logit_bias=((3, math.inf),))


def test_logit_bias_file_round_trips_and_bad_files_get_one_line(tmp_path):
    bias = LogitBias(bias={17: 1.25, 2: -0.5}, model="m", task="integer_1_10", temperature=1.0, tokens={17: "1", 2: "<|im_end|>"})
    loaded = LogitBias.load(bias.save(tmp_path / "bias.json"))
    assert loaded.as_pairs() == ((2, -0.5), (17, 1.25)) and loaded.tokens[2] == "<|im_end|>"
    (tmp_path / "junk.json").write_text('{"bias": {"1": 2}}')
    with pytest.raises(RespreadError, match="expected format"):
        LogitBias.load(tmp_path / "junk.json")
    with pytest.raises(RespreadError, match="does not exist"):
        LogitBias.load(tmp_path / "missing.json")


def test_seeded_prompts_are_distinct_deterministic_and_never_a_valid_integer_answer():
    prompts = seeded_prompts("Pick a number.", 500, seed=0, task="integer_1_1000")
    assert len(set(prompts)) == 500 and prompts == seeded_prompts("Pick a number.", 500, seed=0, task="integer_1_1000")
    assert prompts != seeded_prompts("Pick a number.", 500, seed=1, task="integer_1_1000")
    seeds = [int(p.rsplit(": ", 1)[1]) for p in prompts]
    assert all(1000 < s <= 9999 for s in seeds)
    task = seeded_task(registry()["color"], 3, seed=0)
    assert task.name == "color" and len(task.prompts) == 3 and all(p.startswith(registry()["color"].prompts[0]) for p in task.prompts)


def _cell(valid, tv_valid, tv_all):
    return {"figures": {"t": {"valid": valid, "tv_valid": tv_valid, "tv_all": tv_all}}}


def test_pareto_frontier_and_best_fix_on_known_points():
    cells = [
        _cell(0.1, 0.5, 0.95),  # dominated by 1 (more valid, lower TV)
        _cell(0.2, 0.4, 0.90),
        _cell(0.9, 0.8, 0.80),  # most valid: on the frontier despite its TV
        _cell(0.05, 0.1, 0.97),  # lowest TV valid: on the frontier
        _cell(0.0, None, 1.0),  # no valid answer: no TV valid, never on the frontier
    ]
    result = pareto_by_task(cells, ["t"])["t"]
    assert sorted(result["frontier"]) == [1, 2, 3]
    assert result["best"] == 2  # lowest TV over all replies


def test_config_rejects_bad_settings_before_any_model_loads():
    with pytest.raises(RespreadError, match="unknown method 'nucleus'"):
        BaselinesConfig(methods=["nucleus"]).validate()
    with pytest.raises(RespreadError, match="above 0"):
        BaselinesConfig(temperatures=[0.0]).validate()
    cells = BaselinesConfig(temperatures=[0.7, 1.5], top_ps=[0.9], min_ps=[0.1]).sweep_cells()
    assert [c["setting"] for c in cells] == ["T=0.7", "T=0.7 top-p 0.9", "T=0.7 min-p 0.1", "T=1.5", "T=1.5 top-p 0.9", "T=1.5 min-p 0.1"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "respread.cli", "baselines", *args], capture_output=True, text=True)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    for args, needle in [
        (["--method", "nucleus"], "unknown method"),
        (["--temperatures", "0.7,hot"], "--temperatures takes comma-separated numbers"),
        (["--fit-task", "color"], "must be a closed task"),
        (["--panel", "creative"], "takes categorical tasks"),
    ]:
        result = _cli(*args, "--out", str(tmp_path / "b"))
        assert result.returncode == 2, result.stderr
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


# ------------------------------------------------------------------------------------- real model
@pytest.mark.slow
def test_fitted_bias_flattens_its_task_exactly(smollm, tmp_path):
    """Fit on card suits, save, load, then score through the real sampler path: exact TV among valid < 0.01."""
    from respread.measure.figures import exact_metrics
    from respread.measure.run import exact_record
    from respread.restore.baselines.logit_bias import fit_logit_bias

    task = registry()["card_suit"]
    bias = LogitBias.load(fit_logit_bias(smollm, task).save(tmp_path / "bias.json"))
    params = SamplingParams(max_new_tokens=8, logit_bias=bias.as_pairs())
    record = exact_record(smollm, task, 0, params, "k", "m")
    figures = exact_metrics(record["probs"], frozenset(record["probs"]), record["forms"])
    assert figures["tv_valid"] < 0.01, figures
    assert figures["valid_mass"] > 0.5  # the bias also moves mass onto valid answers
    assert bias.fit["after"]["tv_valid"] == pytest.approx(figures["tv_valid"], abs=1e-4)


@pytest.mark.slow
def test_a_bias_cannot_flatten_digit_spelled_integers_but_still_lowers_the_loss(smollm):
    """Integers are spelled digit by digit; one context-free bias on 0-9 and end-of-turn cannot give every number
    1/k (the loss is convex in b for single-form answers, so L-BFGS finds the best such bias), but it helps."""
    from respread.restore.baselines.logit_bias import fit_logit_bias

    fit = fit_logit_bias(smollm, registry()["integer_1_10"]).fit
    assert fit["after"]["kl_uniform_nats"] < fit["before"]["kl_uniform_nats"] - 1.0
    assert fit["after"]["tv_valid"] < fit["before"]["tv_valid"]
    assert fit["after"]["tv_valid"] > 0.05


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _colour_texts(folder):
    return [(r["key"], r["text"]) for r in _records(folder / "samples.jsonl") if r["task"] == "color"]


def _exact_probs(folder):
    return [r["probs"] for r in _records(folder / "exact.jsonl")]


@pytest.mark.slow
def test_a_sweep_cell_equals_a_plain_eval_with_the_same_settings(tmp_path):
    from respread.workflows.baselines import run_baselines

    config = BaselinesConfig(panel="integer_1_10,color", samples=12, methods=["sweep"], temperatures=[1.5], top_ps=[], min_ps=[])
    result = run_baselines(config, tmp_path / "b", log=lambda m: None)
    eval_out = tmp_path / "eval"
    subprocess.run(
        [sys.executable, "-m", "respread.cli", "eval", "--tasks", "integer_1_10,color", "--samples", "12", "--temperature", "1.5",
         "--exact", "--no-embed", "--out", str(eval_out)],
        check=True, capture_output=True,
    )
    cell = tmp_path / "b" / "sweep" / "t1.5"
    assert _colour_texts(cell) == _colour_texts(eval_out) and len(_colour_texts(cell)) == 12
    assert _exact_probs(cell) == _exact_probs(eval_out)
    eval_metrics = json.loads((eval_out / "metrics.json").read_text())["tasks"]
    figures = result["cells"][0]["figures"]
    assert figures["integer_1_10"]["tv_all"] == eval_metrics["integer_1_10"]["exact"]["tv_all"]
    assert figures["color"]["valid"] == eval_metrics["color"]["parse"]["strict"]["validity"]["value"]
    # Closed tasks are not sampled in a sweep: their exact distribution says it all.
    assert not any(json.loads(line)["task"] == "integer_1_10" for line in (cell / "samples.jsonl").read_text().splitlines())


@pytest.mark.slow
def test_baselines_command_end_to_end_then_resumes_without_work(tmp_path):
    out = tmp_path / "b"
    args = ["--panel", "integer_1_10,card_suit,color", "--samples", "6", "--temperatures", "1,1.5", "--top-p", "", "--min-p", "0.1",
            "--fit-task", "card_suit", "--verbalized-max-tokens", "48", "--out", str(out)]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    result = json.loads((out / "baselines.json").read_text())
    assert [c["method"] for c in result["cells"]] == ["sweep"] * 4 + ["logit-bias", "verbalized", "seeded"]
    assert (out / "pareto.png").stat().st_size > 10_000 and (out / "logit_bias.json").is_file()
    markdown = (out / "baselines.md").read_text()
    assert "## Temperature sweep" in markdown and "### card_suit" in markdown and "Verbalized replies by parse status" in markdown
    bias_cell = result["cells"][4]
    assert bias_cell["figures"]["card_suit"]["source"] == "exact" and bias_cell["figures"]["card_suit"]["tv_valid"] < 0.01
    verbalized = result["cells"][5]
    assert set(verbalized["reply_status"]) == {"integer_1_10", "card_suit", "color"}
    assert all(abs(sum(s.values()) - 1) < 1e-9 for s in verbalized["reply_status"].values())
    seeded_records = (out / "seeded" / "samples.jsonl").read_text().splitlines()
    assert len(seeded_records) == 18 and len({json.loads(r)["prompt"] for r in seeded_records}) == 18
    # A second run finds every folder complete: same result, no model loaded.
    second = _cli(*args)
    assert second.returncode == 0 and "loading" not in second.stderr
    again = json.loads((out / "baselines.json").read_text())
    assert [c["figures"] for c in again["cells"]] == [c["figures"] for c in result["cells"]]


def test_the_sweep_overview_names_the_kind_parse_and_estimator_not_one_cells_valid_count():
    from respread.report.baselines import sweep_overview

    figures = {"valid": 0.03, "tv_all": 0.99, "tv_valid": 1.0}
    cells = [
        {"method": "sweep", "setting": "T=1.0", "figures": {"color": figures | {"source": "sampled n=100 (3 valid, strict; plug-in)"},
                                                           "card_suit": figures | {"source": "exact"}}},
        {"method": "sweep", "setting": "T=1.5", "figures": {"color": figures | {"source": "sampled n=100 (7 valid, strict; plug-in)"}}},
    ]
    header, rows = sweep_overview({"cells": cells, "per_task": {"color": {}, "card_suit": {}}})
    assert header[:2] == ["task", "figures from"]
    assert rows[0][1] == "sampled n=100, strict; plug-in"
    assert rows[1][1] == "exact" and rows[1][3] == "—"
    # labels written before the estimator was named still read as before
    cells[0]["figures"]["color"]["source"] = "sampled n=100 (3 valid, strict)"
    assert sweep_overview({"cells": cells, "per_task": {"color": {}}})[1][0][1] == "sampled n=100, strict"
