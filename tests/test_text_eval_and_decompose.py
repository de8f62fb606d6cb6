"""Free-text tasks through `respread eval`, prompt files, and the diversity-loss decomposition."""

from __future__ import annotations

import json
import math

import pytest
from fakes import FakeBackend
from typer.testing import CliRunner

from respread.measure.figures import jsonable, run_metrics
from respread.cli import app
from respread.locate.decompose import Output, answer_entropy_bits, decompose_outputs, decompose_runs
from respread.errors import RespreadError
from respread.measure.run import EvalConfig, run_eval
from respread.tasks import load_prompts_file, select_tasks

STORIES = {
    "A fox jumped over the fence and ran into the quiet forest.": 0.3,
    "The old lighthouse keeper counted ships until the storm arrived.": 0.3,
    "A fox jumped over the fence.": 0.2,
    "Rain fell softly on the tin roof while the children slept.": 0.1,
    "": 0.1,
}


def write_prompts(tmp_path, lines):
    path = tmp_path / "my-prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_prompts_file_becomes_a_text_task(tmp_path):
    path = write_prompts(tmp_path, ['{"prompt": "Write a limerick."}', "", '{"prompt": "Name a new planet.", "id": 7}'])
    task = load_prompts_file(path)
    assert task.name == "my-prompts" and task.answer_type == "text"
    assert task.prompts == ["Write a limerick.", "Name a new planet."] and task.max_new_tokens == 128


@pytest.mark.parametrize(
    "content,message",
    [
        (b'{"prompt": "ok"}\nnot json\n', "line 2: not JSON"),
        (b'{"text": "no prompt field"}\n', "line 1: needs a non-empty string field 'prompt'"),
        (b"\n\n", "no prompts in it"),
        (b'{"prompt": "caf\xe9"}\n', "not UTF-8 (bad byte at offset 15)"),
    ],
)
def test_bad_prompts_file_fails_with_one_line(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    with pytest.raises(RespreadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_prompts_file(path)


def test_text_task_reports_every_metric_on_all_and_passing_outputs(tmp_path):
    config = EvalConfig(model="fake", tasks=select_tasks("creative"), samples=8)
    run_eval(config, tmp_path, lambda: FakeBackend(STORIES))
    metrics = jsonable(run_metrics(tmp_path, config, text_resamples=30, embed=False))
    task = metrics["tasks"]["creative"]
    assert task["prompts"] == 12 and task["n"] == 96
    assert 0 < task["pass_rate"]["value"] < 1  # empty replies fail the quality check
    for name in ("distinct_1", "distinct_2", "ead", "self_bleu", "compression_ratio", "homogenization_rouge_l", "distinct_classes"):
        m = task["metrics"][name]
        for side in ("all", "passing"):
            assert m[side]["low"] <= m[side]["value"] <= m[side]["high"], (name, side, m[side])
    # Removing empty replies removes the "" class: fewer new classes per output among passing ones is not
    # guaranteed, but distinct-1 over the same vocabulary with fewer tokens can only stay or rise.
    assert task["metrics"]["distinct_1"]["passing"]["value"] >= task["metrics"]["distinct_1"]["all"]["value"] - 1e-9


@pytest.mark.slow
def test_text_task_semantic_metrics_use_the_offline_embedder(tmp_path):
    config = EvalConfig(model="fake", tasks=select_tasks("creative"), samples=4)
    run_eval(config, tmp_path, lambda: FakeBackend(STORIES))
    task = run_metrics(tmp_path, config, text_resamples=10, embed=True)["tasks"]["creative"]
    assert 0 < task["metrics"]["cosine_distance"]["all"]["value"] < 1
    assert 1 <= task["metrics"]["vendi"]["all"]["value"] <= 4


def test_text_tasks_need_at_least_four_samples():
    with pytest.raises(RespreadError, match="needs --samples of at least 4"):
        EvalConfig(model="fake", tasks=select_tasks("creative"), samples=3)


# ---------------------------------------------------------------- decomposition
def outputs(prompt_items):
    return [Output(p, item, ok) for p, item, ok in prompt_items]


REF = outputs([(0, a, True) for a in "abcd"] * 2 + [(0, f"junk{i}", False) for i in range(8)])


def test_removing_only_wrong_answers_is_all_quality_control():
    target = outputs([(0, a, True) for a in "abcd"] * 4)
    result = decompose_outputs(REF, target, answer_entropy_bits, resamples=50)
    assert result["terms"]["ref_all"] == pytest.approx(answer_entropy_bits(list("abcd") * 2 + [f"junk{i}" for i in range(8)]))
    assert result["residual"]["value"] == pytest.approx(0.0)
    assert result["quality_control"]["value"] == pytest.approx(result["total_drop"]["value"])
    assert result["quality_control"]["share"] == pytest.approx(1.0)


def test_narrowing_among_correct_answers_is_residual():
    target = outputs([(0, "a", True)] * 8 + [(0, f"junk{i}", False) for i in range(8)])
    result = decompose_outputs(REF, target, answer_entropy_bits, resamples=50)
    assert result["residual"]["value"] == pytest.approx(2.0)  # 2 bits among correct -> 0 bits
    parts = result["quality_control"]["value"] + result["residual"]["value"]
    assert parts == pytest.approx(result["total_drop"]["value"])  # the split is exact
    # Resampling can only lower the reference's maximal 2-bit entropy: the percentile CI sits at or
    # below the point value (the documented bias of bootstrapping a plug-in entropy).
    assert 0.5 < result["residual"]["low"] <= result["residual"]["high"] <= 2.0 + 1e-9


def test_prompts_without_a_correct_output_are_left_out_of_every_term():
    ref = REF + outputs([(1, "x", False), (1, "y", False)])
    target = outputs([(0, a, True) for a in "abcd"] * 4 + [(1, "z", False)])
    assert decompose_outputs(ref, target, answer_entropy_bits, resamples=10)["terms"] == (
        decompose_outputs(REF, target, answer_entropy_bits, resamples=10)["terms"]
    )


def _fake_run(path, replies):
    config = EvalConfig(model="fake-" + path.name, tasks=select_tasks("card_suit,creative"), samples=20)
    run_eval(config, path, lambda: FakeBackend(replies))


def test_decompose_command_on_two_runs(tmp_path):
    ref_replies = {"hearts": 0.2, "spades": 0.2, "clubs": 0.2, "Diamonds": 0.1, "I like cards": 0.2, "ok": 0.1} | STORIES
    tgt_replies = {"hearts": 0.9, "nope": 0.1, "A fox jumped over the fence.": 0.5}
    _fake_run(tmp_path / "ref", ref_replies)
    _fake_run(tmp_path / "tgt", tgt_replies)
    out = tmp_path / "decomposition.json"
    result = CliRunner().invoke(app, ["decompose", str(tmp_path / "ref"), str(tmp_path / "tgt"), "--out", str(out), "--resamples", "40"])
    assert result.exit_code == 0, result.stderr
    assert "quality control" in result.stdout and "card_suit" in result.stdout
    data = json.loads(out.read_text())
    suit = data["tasks"]["card_suit"]
    assert suit["metric"] == "entropy" and data["tasks"]["creative"]["metric"] == "ead"
    assert suit["total_drop"]["value"] > 0
    assert suit["quality_control"]["value"] + suit["residual"]["value"] == pytest.approx(suit["total_drop"]["value"])
    assert decompose_runs(tmp_path / "ref", tmp_path / "tgt", tasks=["card_suit"], resamples=5)["tasks"].keys() == {"card_suit"}


def test_decompose_bad_inputs_fail_with_one_line(tmp_path):
    _fake_run(tmp_path / "ref", {"hearts": 1.0} | STORIES)
    runner = CliRunner()
    result = runner.invoke(app, ["decompose", str(tmp_path / "ref"), str(tmp_path / "missing")])
    assert result.exit_code != 0 and result.stderr.strip() == f"error: {tmp_path / 'missing'} is not a respread run directory (no run.json)"
    result = runner.invoke(app, ["decompose", str(tmp_path / "ref"), str(tmp_path / "ref"), "--metric", "vibes"])
    assert result.exit_code != 0 and "unknown metric 'vibes'" in result.stderr
    result = runner.invoke(app, ["decompose", str(tmp_path / "ref"), str(tmp_path / "ref"), "--tasks", "emoji"])
    assert result.exit_code != 0 and "task 'emoji' is not in both runs" in result.stderr
    assert math.isfinite(decompose_runs(tmp_path / "ref", tmp_path / "ref", resamples=5)["tasks"]["card_suit"]["total_drop"]["value"])


@pytest.fixture(scope="module")
def tiny_nli_model(tmp_path_factory):
    """A small randomly initialised BERT NLI classifier saved locally: the real loading path, offline."""
    import shutil

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from respread.metrics.semantic import default_embedding_model_path

    path = tmp_path_factory.mktemp("nli")
    source = default_embedding_model_path()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / name, path / name)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=3,
                        id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"},
                        label2id={"CONTRADICTION": 0, "NEUTRAL": 1, "ENTAILMENT": 2})
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def test_nli_diversity_from_a_user_nli_model_through_eval(tmp_path, tiny_nli_model, monkeypatch):
    from respread.metrics.semantic import load_nli_model, nli_diversity

    classify = load_nli_model(str(tiny_nli_model))
    labels = classify(["a cat sat", "rain"], ["a dog ran", "sun"])
    assert set(labels) <= {"entailment", "neutral", "contradiction"} and len(labels) == 2
    assert -1 <= nli_diversity(list(STORIES), classify) <= 1

    import respread.backends as backends

    monkeypatch.setattr(backends, "load_backend", lambda *a, **k: FakeBackend(STORIES))
    result = CliRunner().invoke(app, ["eval", "--model", "fake", "--tasks", "creative", "--samples", "6", "--no-embed",
                                      "--text-resamples", "10", "--nli-model", str(tiny_nli_model), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    nli = json.loads((tmp_path / "metrics.json").read_text())["tasks"]["creative"]["metrics"]["nli_diversity"]
    assert -1 <= nli["all"]["value"] <= 1
    bad = CliRunner().invoke(app, ["eval", "--model", "fake", "--tasks", "creative", "--samples", "6", "--no-embed",
                                   "--nli-model", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert bad.exit_code != 0 and bad.stderr.startswith("error: cannot load NLI model")
