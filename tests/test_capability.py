"""Capability retention: answer extraction, MMLU/GSM8K loaders, and the checks on the real embedded model."""

from __future__ import annotations

import copy
import json

import pytest

from respread.errors import RespreadError
from respread.measure.capability import (
    NEUTRAL_PROMPTS,
    MMLUItem,
    capability_report,
    extract_final_number,
    gsm8k_accuracy,
    kl_from_reference,
    load_gsm8k,
    load_mmlu,
    mmlu_accuracy,
)


# Replies in the shapes SmolLM2 and GSM8K solutions actually take.
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("She sells 9 eggs.\n9 * 2 = <<9*2=18>>18\n#### 1,234", "1234"),
        ("Janet has 16 - 3 - 4 = 9 eggs left, so she makes 9 * 2 = 18 dollars. The answer is $18.", "18"),
        ("The answer is: **42**", "42"),
        ("Answer: 5 apples", "5"),
        ("The temperature drops 5 degrees from 2, so it is now -3", "-3"),
        ("Each ticket costs 2.50", "2.5"),
        ("So the total is 7.0.", "7"),
        ("The answer is 1,000,000.", "1000000"),
        ("Total: $1,250.75 in all", "1250.75"),
        ("I cannot solve this problem without more information.", None),
        ("", None),
        ("First 3 + 4 = 7, then 7 * 2 = 14, and 14 - 1 = 13", "13"),
        ("#### 72\nThe answer is 70.", "72"),  # "####" outranks "answer is"
        ("The answer is 3 + 4 = 7.", "7"),  # an expression after "answer is": the last number wins
        ("The twenty-first day: 10-3 = 7", "7"),  # a hyphen between digits is not a minus sign
    ],
)
def test_extract_final_number_on_real_looking_replies(reply, expected):
    assert extract_final_number(reply) == expected


def test_mmlu_subset_has_its_size_and_is_the_same_for_a_seed(shared_data):
    items = load_mmlu(str(shared_data / "mmlu"), 40, seed=3)
    assert len(items) == 40
    assert load_mmlu(str(shared_data / "mmlu"), 40, seed=3) == items
    assert load_mmlu(str(shared_data / "mmlu"), 40, seed=4) != items
    assert all(item.answer in "ABCD" and len(item.choices) == 4 for item in items)
    assert len({item.subject for item in items}) > 10  # spread over subjects, not the first file's rows


def test_a_smaller_mmlu_subset_is_contained_in_a_larger_one(shared_data):
    small = load_mmlu(str(shared_data / "mmlu"), 10, seed=0)
    large = load_mmlu(str(shared_data / "mmlu"), 50, seed=0)
    assert set(small) <= set(large)


def test_gsm8k_subset_has_its_size_is_deterministic_and_keeps_the_final_answer(shared_data):
    path = str(shared_data / "gsm8k" / "test.jsonl")
    items = load_gsm8k(path, 12, seed=1)
    assert len(items) == 12 and load_gsm8k(path, 12, seed=1) == items
    assert all(extract_final_number(item.answer) == item.answer for item in items)
    everything = load_gsm8k(path, 10**6)
    assert len(everything) == 1319 and everything[0].answer == "18"  # Janet's ducks


@pytest.mark.parametrize("loader", [load_mmlu, load_gsm8k])
def test_a_missing_source_is_a_one_line_error_naming_it(loader, tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(RespreadError) as info:
        loader(missing, 5)
    assert "\n" not in str(info.value) and missing in str(info.value)


def test_a_bad_mmlu_row_names_the_file_and_its_line(tmp_path):
    folder = tmp_path / "test"
    folder.mkdir()
    bad = folder / "toy_test.csv"
    bad.write_text('"What is 1+1?",1,2,3,4,B\n"A question\nover two lines",a,b,c,d,A\nWhat is 2+2?,3,4,5,C\n')
    with pytest.raises(RespreadError) as info:
        load_mmlu(str(tmp_path), 2)
    message = str(info.value)
    assert str(bad) in message and "line 4" in message and "\n" not in message


def test_a_gsm8k_answer_without_its_final_number_names_the_line(tmp_path):
    path = tmp_path / "gsm.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "#### 4"}) + "\n"
                    + json.dumps({"question": "q", "answer": "four"}) + "\n")
    with pytest.raises(RespreadError, match=r"line 2: field 'answer' must end with '#### <number>'"):
        load_gsm8k(str(path), 2)


# ---------------------------------------------------------------- the real model
@pytest.mark.slow
def test_mmlu_accuracy_is_a_proportion_inside_its_interval_and_ignores_batching(smollm, shared_data):
    items = load_mmlu(str(shared_data / "mmlu"), 6, seed=0)
    import copy

    together = mmlu_accuracy(smollm, items)
    single = copy.copy(smollm)
    single.batch_size = 1
    alone = mmlu_accuracy(single, items)
    assert together["predicted"] == alone["predicted"]  # left padding and position ids change nothing
    accuracy = together["accuracy"]
    assert 0 <= accuracy["low"] <= accuracy["value"] <= accuracy["high"] <= 1
    assert together["n"] == 6 and accuracy["value"] == together["correct"] / 6 and together["chance"] == 0.25


@pytest.mark.slow
def test_mmlu_scoring_picks_the_letter_a_plain_forward_pass_prefers(smollm):
    import torch

    from respread.measure.capability import mmlu_prompt

    item = MMLUItem("toy/0", "elementary_mathematics", "What is 2 + 3?", ("4", "5", "6", "7"), "B")
    result = mmlu_accuracy(smollm, [item])
    ids = torch.tensor([smollm.tokenizer.encode(mmlu_prompt(item))])
    with torch.inference_mode():
        logprobs = smollm.model(input_ids=ids).logits[0, -1].log_softmax(-1)
    letters = [smollm.tokenizer.encode(f" {letter}", add_special_tokens=False)[0] for letter in "ABCD"]
    assert result["predicted"] == ["ABCD"[int(logprobs[letters].argmax())]]


@pytest.mark.slow
def test_gsm8k_accuracy_reports_replies_and_what_was_extracted(smollm, shared_data):
    items = load_gsm8k(str(shared_data / "gsm8k" / "test.jsonl"), 2, seed=0)
    result = gsm8k_accuracy(smollm, items, max_new_tokens=48)
    assert result["n"] == 2 and 0 <= result["correct"] <= 2
    assert result["accuracy"]["low"] <= result["accuracy"]["value"] <= result["accuracy"]["high"]
    for example, item in zip(result["examples"], items):
        assert example["reply"].strip() and example["reference"] == item.answer
        assert example["extracted"] == extract_final_number(example["reply"])


@pytest.mark.slow
def test_kl_of_a_model_with_itself_is_zero_and_of_a_perturbed_copy_positive(smollm):
    import torch

    prompts = NEUTRAL_PROMPTS[:3]
    same = kl_from_reference(smollm, smollm, prompts, reply_tokens=8)
    assert same["value"] == pytest.approx(0.0, abs=1e-6) and same["method"] == "bootstrap-prompts"
    assert same["n_prompts"] == 3 and 3 <= same["n_tokens"] <= 24

    from respread.backends.transformers import TransformersBackend

    perturbed = copy.deepcopy(smollm.model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weight = perturbed.model.layers[0].mlp.down_proj.weight
        weight.add_(0.02 * torch.randn(weight.shape, generator=generator))
    moved = kl_from_reference(TransformersBackend.from_loaded(perturbed, smollm.tokenizer), smollm, prompts, reply_tokens=8)
    assert moved["value"] > 1e-4
    assert moved["low"] <= moved["value"] <= moved["high"] and moved["n"] == moved["n_tokens"]
    assert [p["reply"] for p in moved["per_prompt"]] == [p["reply"] for p in same["per_prompt"]]  # reference's text


@pytest.mark.slow
def test_capability_report_is_json_and_times_each_part(shared_data):
    lines: list[str] = []
    report = capability_report("smollm2-135m-instruct", mmlu=str(shared_data / "mmlu"), mmlu_subset=4,
                               progress=lines.append)
    json.dumps(report)
    assert report["mmlu"]["n"] == 4 and "gsm8k" not in report and "kl" not in report
    assert set(report["wall_seconds"]) == {"load", "mmlu", "total"}
    assert lines and lines[-1].startswith("MMLU")
