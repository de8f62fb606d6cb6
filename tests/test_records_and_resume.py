"""Records are append-only and keyed: an interrupted run resumes into exactly the unbroken run's draws."""

from __future__ import annotations

import json

import pytest
from fakes import FakeBackend

from respread.measure.figures import jsonable, run_metrics
from respread.errors import RespreadError
from respread.measure.run import EvalConfig, run_eval
from respread.records import RecordWriter, read_records, sample_seed
from respread.tasks import select_tasks

REPLIES = {"hearts": 0.5, "Spades": 0.2, "clubs.": 0.1, "I pick diamonds": 0.1, "": 0.1}


def config(**overrides) -> EvalConfig:
    base = dict(model="fake", tasks=select_tasks("card_suit,integer_1_10"), samples=30, chunk=7, exact=True)
    return EvalConfig(**(base | overrides))


def texts_by_key(path):
    return {r["key"]: (r["seed"], r["text"]) for r in read_records(path)}


def test_seed_depends_on_every_part_of_its_identity():
    base = sample_seed(0, "t", "p", 1)
    assert base == sample_seed(0, "t", "p", 1)
    assert len({base, sample_seed(1, "t", "p", 1), sample_seed(0, "u", "p", 1), sample_seed(0, "t", "q", 1), sample_seed(0, "t", "p", 2)}) == 5


def test_resume_after_interruption_equals_an_unbroken_run(tmp_path):
    unbroken = tmp_path / "unbroken"
    run_eval(config(), unbroken, lambda: FakeBackend(REPLIES))

    broken = tmp_path / "broken"
    with pytest.raises(KeyboardInterrupt):
        run_eval(config(), broken, lambda: FakeBackend(REPLIES, fail_after=3))
    written = len(read_records(broken / "samples.jsonl"))
    assert written == 21  # three chunks of 7 were written before the crash; none lost

    resumed = FakeBackend(REPLIES)
    run_eval(config(), broken, lambda: resumed)
    assert len(resumed.sampled_seeds) == 60 - written  # only the missing samples were drawn
    assert texts_by_key(broken / "samples.jsonl") == texts_by_key(unbroken / "samples.jsonl")
    assert jsonable(run_metrics(broken, config())) == jsonable(run_metrics(unbroken, config()))


def test_finished_run_loads_no_backend_when_rerun(tmp_path):
    run_eval(config(), tmp_path, lambda: FakeBackend(REPLIES))

    def must_not_load():
        raise AssertionError("backend built although nothing was left to do")

    run_eval(config(), tmp_path, must_not_load)


def test_more_samples_later_extends_the_run_without_redoing_any(tmp_path):
    run_eval(config(samples=10), tmp_path, lambda: FakeBackend(REPLIES))
    extra = FakeBackend(REPLIES)
    run_eval(config(samples=30), tmp_path, lambda: extra)
    assert len(extra.sampled_seeds) == 40
    assert run_metrics(tmp_path, config(samples=10))["tasks"]["card_suit"]["parse"]["strict"]["n"] == 10


def test_half_written_last_line_is_ignored_then_cut_by_the_next_append(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"key": "a", "text": "x"}\n{"key": "b", "te', encoding="utf-8")
    assert [r["key"] for r in read_records(path)] == ["a"]
    with RecordWriter(path) as writer:
        writer.write({"key": "c", "text": "y"})
    assert [r["key"] for r in read_records(path)] == ["a", "c"]


def test_a_damaged_record_in_the_middle_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_bytes(b'{"key": "a"}\n{"key": \xff\xfe}\n{"key": "c"}\n')
    with pytest.raises(RespreadError, match=r"samples.jsonl, line 2: not UTF-8"):
        read_records(path)
    path.write_bytes(b'{"key": "a"}\nnot json\n{"key": "c"}\n')
    with pytest.raises(RespreadError, match=r"line 2: not a JSON record"):
        read_records(path)


def test_changed_settings_refuse_to_mix_into_an_existing_run(tmp_path):
    run_eval(config(samples=5), tmp_path, lambda: FakeBackend(REPLIES))
    with pytest.raises(RespreadError, match="holds a run with different sampling"):
        run_eval(config(samples=5, temperature=0.7), tmp_path, lambda: FakeBackend(REPLIES))


def test_all_empty_replies_fail_loudly_but_keep_the_records(tmp_path):
    with pytest.raises(RespreadError, match="all 5 replies are empty"):
        run_eval(config(samples=5, tasks=select_tasks("card_suit")), tmp_path, lambda: FakeBackend({"": 1.0}))
    assert len(read_records(tmp_path / "samples.jsonl")) == 5


def test_exact_record_sums_the_scored_forms(tmp_path):
    run_eval(config(samples=5), tmp_path, lambda: FakeBackend(REPLIES))
    (exact,) = [r for r in read_records(tmp_path / "exact.jsonl") if r["task"] == "card_suit"]
    assert exact["forms"] == ["{answer}", "{Answer}"]
    assert exact["probs"]["hearts"] == pytest.approx(0.5)
    assert exact["probs"]["spades"] == pytest.approx(0.2)  # scored as "Spades"
    assert exact["probs"]["clubs"] == 0  # "clubs." is not an exact form
    metrics = run_metrics(tmp_path, config(samples=5))
    assert metrics["tasks"]["card_suit"]["exact"]["valid_mass"] == pytest.approx(0.7)
    json.dumps(metrics)
