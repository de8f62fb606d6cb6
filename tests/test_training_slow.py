"""`respread train` and `respread study` on the embedded model: tiny but real GRPO / diffuse runs."""

from __future__ import annotations

import json
import warnings

import pytest
from safetensors.torch import load_file
from transformers import TrainerCallback

import respread.restore.train as train_module
from respread.errors import RespreadError
from respread.models import resolve_model
from respread.restore.callbacks import DiversityMonitor, read_monitor
from respread.restore.train import TrainConfig, run_train

pytestmark = pytest.mark.slow


def tiny_config(**overrides) -> TrainConfig:
    # Lenient validity is ~45% on this model, so two tiny steps already carry a gradient.
    base = dict(
        steps=2, save_every=1, monitor_every=1, batch_size=4, group_size=2, max_completion_length=8,
        rewards=["spread-group", "validity:0.5"], parse="lenient",
    )
    return TrainConfig(**(base | overrides))


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "straight"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = run_train(tiny_config(), out)
    return out, record, [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]


def weights(path):
    return load_file(path / "model.safetensors")


def test_two_grpo_steps_change_the_weights_and_write_a_complete_record(straight_run):
    out, record, deprecations = straight_run
    # transformers 5.24 renamed gradient checkpointing and the forward's KV-cache keyword; a run uses the new names.
    assert not [m for m in deprecations if "checkpointing" in m or "past_key_values" in m], deprecations
    original = weights(__import__("pathlib").Path(resolve_model("smollm2-135m-instruct").load_path))
    trained = weights(out / "final")
    assert max((trained[k] - original[k]).abs().max().item() for k in trained) > 0
    saved = json.loads((out / "train.json").read_text())
    assert saved["config"]["rewards"] == ["spread-group", "validity:0.5"]
    assert saved["versions"]["trl"] and saved["wall_seconds"] > 0 and saved["cpu_hours"] > 0
    logged = [h for h in saved["log_history"] if "rewards/spread_group_integer_1_100/mean" in h]
    assert [h["step"] for h in logged] == [1, 2]  # the monitor's own log lines do not swallow the trainer's
    monitor = read_monitor(out)
    assert [r["step"] for r in monitor] == [0, 1, 2]
    assert monitor[0]["tv_valid"] == pytest.approx(0.6208, abs=1e-3)  # the untrained model's exact figure
    assert monitor[2]["tv_valid"] != monitor[0]["tv_valid"]
    assert any("diversity/integer_1_100/tv_valid" in h for h in saved["log_history"])


def test_training_interrupted_after_a_checkpoint_resumes_to_the_same_weights(straight_run, tmp_path, monkeypatch):
    class KillAfterFirstCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 1:
                raise KeyboardInterrupt("simulated kill -9 after checkpoint-1")

    build = train_module._grpo_trainer

    def with_kill(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(KillAfterFirstCheckpoint())
        return trainer

    out = tmp_path / "broken"
    monkeypatch.setattr(train_module, "_grpo_trainer", with_kill)
    with pytest.raises(KeyboardInterrupt):
        run_train(tiny_config(), out)
    monkeypatch.setattr(train_module, "_grpo_trainer", build)
    with pytest.raises(RespreadError, match="--resume"):
        run_train(tiny_config(), out)
    with pytest.raises(RespreadError, match="different steps"):
        run_train(tiny_config(steps=3), out, resume=True)
    record = run_train(tiny_config(), out, resume=True)
    assert record["resumed_from"].endswith("checkpoint-1")
    straight, resumed = weights(straight_run[0] / "final"), weights(out / "final")
    assert max((straight[k] - resumed[k]).abs().max().item() for k in straight) == 0.0
    assert [r["tv_valid"] for r in read_monitor(out)] == [r["tv_valid"] for r in read_monitor(straight_run[0])]


def test_diffuse_training_raises_the_valid_mass_of_a_closed_task(tmp_path):
    record = run_train(tiny_config(method="diffuse", rewards=[]), tmp_path / "diffuse")
    monitor = read_monitor(tmp_path / "diffuse")
    assert monitor[-1]["valid_mass"] > monitor[0]["valid_mass"] + 0.1
    assert record["config"]["method"] == "diffuse"


def test_bad_training_requests_fail_before_any_model_loads(tmp_path):
    with pytest.raises(RespreadError, match="closed task"):
        run_train(tiny_config(method="diffuse", task="color"), tmp_path / "a")
    with pytest.raises(RespreadError, match="multiple of --group-size"):
        run_train(tiny_config(batch_size=5), tmp_path / "b")
    with pytest.raises(RespreadError, match="unknown kind"):
        run_train(tiny_config(rewards=["entropy"]), tmp_path / "c")
    with pytest.raises(RespreadError, match="samples > 0"):
        DiversityMonitor(["color"], out=tmp_path)


def test_study_quick_runs_end_to_end_and_resumes_without_redoing_work(tmp_path, shared_data):
    from typer.testing import CliRunner

    from respread.cli import app

    out = tmp_path / "study"
    args = [
        "study", "--quick", "--arm", "spread-group", "--arm", "diffuse", "--seeds", "0,1", "--parse", "lenient", "--out", str(out),
        "--mmlu", str(shared_data / "mmlu"),  # GSM8K's generation is covered by test_capability
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    study = json.loads((out / "study.json").read_text())
    assert study["conditions"] == [
        "before", "t1.5", "after-spread-group", "after-spread-group-seed1", "after-diffuse", "after-diffuse-seed1",
    ]
    trained = study["table"][0]
    assert trained["trained"] and trained["task"] == "integer_1_100"
    assert trained["conditions"]["before"]["source"] == "exact"
    assert set(study["capability"]) == {"before", "after-spread-group", "after-spread-group-seed1", "after-diffuse", "after-diffuse-seed1"}
    # Each seed trained afresh: two different models, and an across-seed interval per task and arm.
    changes = {(r["task"], r["arm"]): r for r in study["seed_changes"]}
    diffuse = changes[("integer_1_100", "diffuse")]
    assert len(diffuse["changes"]) == 2 and diffuse["changes"][0] != diffuse["changes"][1]
    assert diffuse["change"]["low"] < diffuse["change"]["value"] < diffuse["change"]["high"]
    assert [r["seed"] for r in study["train"]["diffuse"]] == [0, 1]
    markdown = (out / "study.md").read_text()
    assert "## Change across training seeds (2: 0, 1)" in markdown and "| **integer_1_100** (trained) | diffuse |" in markdown
    assert (out / "monitor.png").stat().st_size > 0 and "(trained)" in markdown
    page = (out / "report.html").read_text()
    assert 'data-kind="study"' in page and "integer_1_100 (trained)" in page and (out / "report_figures" / "study-spread.svg").is_file()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert not any(stage.startswith("train") for stage in json.loads((out / "study.json").read_text())["seconds"])
