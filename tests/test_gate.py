"""`respread check`: the collapse regression gate, its tests and its verdict."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from fakes import FakeBackend
from typer.testing import CliRunner

from respread.workflows.eval import evaluate_into
from respread.cli import app
from respread.measure.run import EvalConfig, run_eval
from respread.locate.gate import GateConfig, check_runs, holm, parse_max_drop, permutation_pvalue_counts
from respread.metrics import categorical as cat
from respread.tasks import select_tasks

WIDE = {str(i): 0.1 for i in range(1, 11)}
NARROW = {"7": 0.5, "3": 0.3, "4": 0.2}


def _run(tmp_path, name, replies, *, seed=0, samples=120, exact=False, tasks="integer_1_10"):
    config = EvalConfig(model="fake", tasks=select_tasks(tasks), samples=samples, seed=seed, exact=exact)
    run_eval(config, tmp_path / name, lambda: FakeBackend(replies))
    return tmp_path / name


def test_same_distribution_with_another_seed_passes(tmp_path):
    old, new = _run(tmp_path, "old", WIDE, seed=0), _run(tmp_path, "new", WIDE, seed=1)
    verdict = check_runs(new, old, GateConfig(permutations=500), log=lambda _: None)
    assert verdict["passed"], verdict["failures"]
    assert {r["figure"] for r in verdict["figures"]} == {"tv_all", "tv_valid", "entropy"}
    assert all(r["p_holm"] > 0.05 for r in verdict["figures"])


def test_a_narrower_distribution_fails_on_every_diversity_figure(tmp_path):
    old, new = _run(tmp_path, "old", WIDE), _run(tmp_path, "new", NARROW, seed=1)
    verdict = check_runs(new, old, GateConfig(permutations=500), log=lambda _: None)
    assert not verdict["passed"]
    assert set(verdict["failures"]) == {"integer_1_10.tv_all", "integer_1_10.tv_valid", "integer_1_10.entropy"}
    # the reverse direction is a gain in diversity, never a failure
    assert check_runs(old, new, GateConfig(permutations=500), log=lambda _: None)["passed"]


def test_a_drop_below_max_drop_passes_even_when_significant(tmp_path):
    old, new = _run(tmp_path, "old", WIDE), _run(tmp_path, "new", NARROW, seed=1)
    verdict = check_runs(new, old, GateConfig(permutations=500, max_drop={"tv_all": 1, "tv_valid": 1, "entropy": 1}), log=lambda _: None)
    assert verdict["passed"]
    assert all(r["p_holm"] < 0.05 for r in verdict["figures"])


def test_exact_distributions_compare_directly(tmp_path):
    old = _run(tmp_path, "old", WIDE, samples=1, exact=True)
    new = _run(tmp_path, "new", NARROW, samples=1, exact=True)
    verdict = check_runs(new, old, GateConfig(), log=lambda _: None)
    rows = {r["figure"]: r for r in verdict["figures"]}
    assert {r["test"] for r in rows.values()} == {"exact"}
    assert rows["tv_valid"]["old"]["value"] == pytest.approx(0.0)
    assert rows["tv_valid"]["new"]["value"] == pytest.approx(cat.tv_to_uniform_valid(NARROW, [str(i) for i in range(1, 11)]))
    assert not verdict["passed"]


def test_a_folder_with_records_of_other_settings_is_compared_on_its_own_settings_only(tmp_path):
    """A folder keeps every record written to it; the gate reads what `respread eval` reports for run.json."""
    task = select_tasks("integer_1_10")[0]
    edited = task.model_copy(update={"prompts": ["Choose a number from 1 to 10. Reply with the number only."]})

    def run(folder, spec, replies, samples):
        config = EvalConfig(model="fake", tasks=[spec], samples=samples, exact=True)
        run_eval(config, tmp_path / folder, lambda: FakeBackend(replies))

    run("old", task, WIDE, 1)
    run("new", task, NARROW, 1)  # narrower at the task's own prompt ...
    run("new", edited, WIDE, 1)  # ... wide at an edited prompt, written later into the same folder ...
    run("new", task, NARROW, 1)  # ... and back: the first records serve again and nothing is rewritten
    verdict = check_runs(tmp_path / "new", tmp_path / "old", GateConfig(), log=lambda _: None)
    rows = {r["figure"]: r for r in verdict["figures"]}
    assert rows["tv_valid"]["new"]["value"] == pytest.approx(cat.tv_to_uniform_valid(NARROW, [str(i) for i in range(1, 11)]))
    assert not verdict["passed"]


def test_a_folder_of_several_calls_is_compared_on_each_tasks_own_samples(tmp_path):
    def evaluate(replies, samples, tasks="integer_1_10", exact=False, fail_after=None):  # as `respread eval`
        config = EvalConfig(model="fake", tasks=select_tasks(tasks), samples=samples, seed=1, exact=exact, chunk=16)
        evaluate_into(config, tmp_path / "new", "strict", log=lambda *_: None, backend_factory=lambda: FakeBackend(replies, fail_after))

    old = _run(tmp_path, "old", WIDE, samples=120)
    evaluate(NARROW, 120)
    evaluate(NARROW, 40)  # the folder's last call asks for 40: 40 count, as `eval` reports
    verdict = check_runs(tmp_path / "new", old, GateConfig(permutations=200), log=lambda _: None)
    assert {r["source"] for r in verdict["figures"]} == {"sampled n=120/40"}
    with pytest.raises(KeyboardInterrupt):  # a call for 200 stopped after two chunks of replies
        evaluate(NARROW, 200, fail_after=2)
    assert sum(1 for line in (tmp_path / "new" / "samples.jsonl").open()) == 120 + 32
    verdict = check_runs(tmp_path / "new", old, GateConfig(permutations=200), log=lambda _: None)
    assert {r["source"] for r in verdict["figures"]} == {"sampled n=120/40"}  # the last finished call's count
    # a later call with another task only: integer_1_10 keeps the --samples of the last call that ran it (run.json)
    evaluate(WIDE, 1, tasks="card_suit", exact=True)
    verdict = check_runs(tmp_path / "new", old, GateConfig(permutations=200), log=lambda _: None)
    assert {r["source"] for r in verdict["figures"] if r["task"] == "integer_1_10"} == {"sampled n=120/40"}
    # a folder written before run.json kept --samples per task: the last call's metrics.json is all there is
    run_file = tmp_path / "new" / "run.json"
    state = json.loads(run_file.read_text())
    del state["samples_by_task"]
    run_file.write_text(json.dumps(state))
    verdict = check_runs(tmp_path / "new", old, GateConfig(permutations=200), log=lambda _: None)
    assert {r["source"] for r in verdict["figures"] if r["task"] == "integer_1_10"} == {"sampled n=120/152"}  # all of them


def test_cli_exit_codes_and_json_verdict(tmp_path):
    old, same, narrow = _run(tmp_path, "old", WIDE), _run(tmp_path, "same", WIDE, seed=2), _run(tmp_path, "narrow", NARROW, seed=1)
    runner = CliRunner()
    passed = runner.invoke(app, ["check", str(same), "--against", str(old), "--json", str(tmp_path / "ok.json"), "--permutations", "500"])
    assert passed.exit_code == 0, passed.output
    assert json.loads((tmp_path / "ok.json").read_text())["passed"] is True
    failed = runner.invoke(app, ["check", str(narrow), "--against", str(old), "--json", str(tmp_path / "v.json"),
                                 "--markdown", str(tmp_path / "v.md"), "--permutations", "500"])
    assert failed.exit_code == 1, failed.output
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["passed"] is False and "integer_1_10.tv_valid" in verdict["failures"]
    assert "| integer_1_10 | tv_valid |" in (tmp_path / "v.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-drop", "tv=0.1"], "--max-drop names unknown figure 'tv'"),
        (["--max-drop", "lots"], "--max-drop 'lots' is not a number"),
        (["--alpha", "0"], "--alpha must be between 0 and 1"),
        (["--parse", "loose"], "--parse must be strict or lenient"),
        (["--tasks", "fruit"], "task 'fruit' is not in both runs"),
    ],
)
def test_bad_options_fail_with_one_line(tmp_path, args, message):
    old = _run(tmp_path, "old", WIDE, samples=20)
    result = CliRunner().invoke(app, ["check", str(old), "--against", str(old), *args])
    assert result.exit_code == 2
    assert message in result.output and result.output.count("\n") == 1


def test_a_model_without_out_or_a_missing_baseline_is_one_line(tmp_path):
    old = _run(tmp_path, "old", WIDE, samples=20)
    runner = CliRunner()
    result = runner.invoke(app, ["check", "smollm2-135m-instruct", "--against", str(old)])
    assert result.exit_code == 2 and "add --out DIR" in result.output
    result = runner.invoke(app, ["check", str(old), "--against", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "is not a respread run directory" in result.output


def test_permutation_test_holds_its_level_under_the_null():
    """Two samples of one skewed distribution: p < 0.05 in about 5% of trials, not more."""
    rng = np.random.default_rng(0)
    probs = np.r_[np.full(5, 0.1), np.full(50, 0.01)]
    valid = np.ones(len(probs), dtype=bool)
    rejections = 0
    trials = 200
    for trial in range(trials):
        old, new = rng.choice(len(probs), 80, p=probs), rng.choice(len(probs), 40, p=probs)  # unequal n on purpose
        p = permutation_pvalue_counts(old, new, lambda c: cat.tv_valid_rows(c, valid, len(probs)), categories=len(probs), permutations=199, seed=trial)
        rejections += p < 0.05
    assert rejections / trials <= 0.08


def test_holm_adjusts_in_step_down_order():
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert holm([0.5]) == [0.5]
    adjusted = holm([0.001, float("nan"), 0.02])
    assert adjusted[0] == 0.002 and adjusted[2] == 0.02 and adjusted[1] != adjusted[1]


def test_max_drop_items():
    assert parse_max_drop(["0.1"])["entropy"] == 0.1
    limits = parse_max_drop(["0.1", "tv_valid=0.02"])
    assert limits["tv_valid"] == 0.02 and limits["tv_all"] == 0.1


def test_answers_are_read_with_the_chosen_parse(tmp_path):
    replies = {"7": 0.5, "Sure! 7": 0.5}
    old = _run(tmp_path, "old", replies)
    verdict = check_runs(old, old, GateConfig(parse="lenient", permutations=200), log=lambda _: None)
    assert verdict["passed"] and verdict["parse"] == "lenient"
    assert Counter(r["drop"] for r in verdict["figures"]) == Counter({0.0: 3})


@pytest.mark.slow
def test_real_model_passes_on_another_seed_and_fails_at_low_temperature(tmp_path):
    """SmolLM2-135M-Instruct, 100 replies per task: T=1 seed 0 vs seed 1 passes; T=0.3 vs T=1 fails."""
    runner = CliRunner()
    for name, temperature, seed in (("t1", "1.0", "0"), ("t1-seed1", "1.0", "1"), ("t03", "0.3", "0")):
        result = runner.invoke(app, ["eval", "--tasks", "integer_1_10,color", "--samples", "100", "--temperature", temperature,
                                     "--seed", seed, "--parse", "lenient", "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    same = runner.invoke(app, ["check", str(tmp_path / "t1-seed1"), "--against", str(tmp_path / "t1"), "--parse", "lenient",
                               "--json", str(tmp_path / "same.json")])
    assert same.exit_code == 0, same.output
    colder = runner.invoke(app, ["check", str(tmp_path / "t03"), "--against", str(tmp_path / "t1"), "--parse", "lenient",
                                 "--json", str(tmp_path / "colder.json")])
    assert colder.exit_code == 1, colder.output
    verdict = json.loads((tmp_path / "colder.json").read_text())
    assert "temperature: 1.0 → 0.3" in verdict["settings_differ"]
    assert any(f.endswith(".entropy") for f in verdict["failures"])


def test_text_tasks_are_compared_per_prompt(tmp_path):
    varied = {f"A tale number {i} about {w}.": 1 / 20 for i, w in enumerate(["sea", "sky", "dogs", "rain"] * 5)}
    same = {"The same story again.": 1.0}
    old = _run(tmp_path, "old", varied, samples=8, tasks="creative")
    again = _run(tmp_path, "again", varied, samples=8, seed=1, tasks="creative")
    narrow = _run(tmp_path, "narrow", same, samples=8, seed=1, tasks="creative")
    config = GateConfig(permutations=200)
    passed = check_runs(again, old, config, log=lambda _: None)
    assert passed["passed"] and {r["figure"] for r in passed["figures"]} == {"ead", "distinct_2"}
    failed = check_runs(narrow, old, config, log=lambda _: None)
    assert set(failed["failures"]) == {"creative.ead", "creative.distinct_2"}


def test_a_damaged_run_folder_is_one_line_not_a_verdict(tmp_path):
    old = _run(tmp_path, "old", WIDE, samples=20)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"identity": {}, "tasks": {"integer_1_10": {"name": 3}}}')
    result = CliRunner().invoke(app, ["check", str(broken), "--against", str(old)])
    assert result.exit_code == 2 and result.output.startswith("error: cannot compare")
