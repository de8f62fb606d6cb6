"""Verifiable and constrained tasks: answer and path extraction, pass@k, figures, the chain-of-thought switch."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from respread.measure.figures import verifiable_task_metrics
from respread.errors import RespreadError
from respread.locate.decompose import task_outputs
from respread.metrics.verifiable import correctness_figures, pass_at_k, path_figures
from respread.tasks import AnswerParser, TaskSpec, select_tasks
from respread.tasks.formats import ANSWER_NOW, COT_MODES, OFF_PREFILL, ON_PREFILL, THINK_FIRST, with_cot
from respread.tasks.verifiable import calculation_path, gsm8k_task

QUESTION = "A shop sells 12 apples at $3 each and 4 pears at $1.50 each. How much does it take in?"
REFERENCE = "42"

# (reply, strict answer, lenient answer, correct under lenient, calculation path)
CHAINS = [
    # well-formed, GSM8K style with calculator notes and the #### line
    ("Apples: 12 * 3 = <<12*3=36>>36\nPears: 4 * 1.5 = <<4*1.5=6>>6\nTotal 36 + 6 = 42\n#### 42", "42", "42", True, ("36", "6", "42")),
    # the instruction's own ending, with units and a dollar sign
    ("The apples bring in 12 x $3 = $36. The pears bring 4 x $1.50 = $6.00. The answer is $42.", "42", "42", True, ("36", "6", "42")),
    # same numbers in another order: another path
    ("Pears first: 4 * 1.50 = 6 dollars. Then 12 * 3 = 36 dollars. Answer: 42", "42", "42", True, ("6", "36", "42")),
    # no stated final answer: strict finds none, lenient takes the last number
    ("12 times 3 is 36, and 4 times 1.5 is 6, so together 42 dollars", None, "42", True, ("36", "6", "42")),
    # several numbers after the answer marker: the marked one counts
    ("The answer is 42 because 36 + 6 = 42 and step 3 checks it", "42", "42", True, ("42", "36", "6")),
    # thousands separators and a wrong answer
    ("12 * 3 = 36 and 4 * 1.5 = 6, so 36 * 6 = 216. Then 216 * 10 = 2,160.\n#### 2,160", "2160", "2160", False, ("36", "6", "216", "10", "2160")),
    # negative and decimal answers are read with their sign and point
    ("36 - 78 = -42.\nThe answer is -42.", "-42", "-42", False, ("36", "78", "-42")),
    ("Each pear is 1.5, each apple 3, so the mean is 2.25. The answer is 2.25", "2.25", "2.25", False, ("2.25",)),
    # a bare number is an answer under both parses; a numbered list is not a path step
    ("42", "42", "42", True, ("42",)),
    ("1. 12 * 3 = 36\n2. 4 * 1.5 = 6\n3. 36 + 6 = 42", None, "42", True, ("36", "6", "42")),
    # no number at all
    ("I am not sure how to solve this.", None, None, False, ()),
]


@pytest.fixture
def gsm_task() -> TaskSpec:
    return TaskSpec(name="shop", prompts=[QUESTION], references=[REFERENCE], answer_type="verifiable", reasoning=True)


@pytest.mark.parametrize(("reply", "strict", "lenient", "correct", "path"), CHAINS)
def test_answer_and_path_extraction_on_gsm8k_style_chains(gsm_task, reply, strict, lenient, correct, path):
    parser = AnswerParser(gsm_task)
    assert parser.parse(reply, "strict").answer == strict
    assert parser.parse(reply, "strict").valid == (strict == REFERENCE)
    assert parser.parse(reply, "lenient").answer == lenient
    assert parser.parse(reply, "lenient").valid is correct
    assert calculation_path(reply, QUESTION) == path


def test_a_think_block_is_skipped_before_reading_the_answer(gsm_task):
    reply = "<think>maybe 36 + 7 = 43? The answer is 43</think>36 + 6 = 42. The answer is 42."
    assert AnswerParser(gsm_task).parse(reply, "strict").answer == "42"


@pytest.mark.parametrize("n", [1, 2, 7, 20, 200])
def test_pass_at_k_equals_its_closed_form(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected = 1 - math.comb(n - c, k) / math.comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_properties():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the correct share
    values = [pass_at_k(30, 4, k) for k in range(1, 31)]
    assert all(a <= b for a, b in zip(values, values[1:])) and values[-1] == 1.0
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)


def test_pass_at_k_is_unbiased_for_one_minus_one_minus_p_to_the_k():
    rng = np.random.default_rng(0)
    p, n, k = 0.15, 20, 5
    estimates = [pass_at_k(n, int(c), k) for c in rng.binomial(n, p, size=20000)]
    assert np.mean(estimates) == pytest.approx(1 - (1 - p) ** k, abs=0.01)


def test_correctness_intervals_stay_honest_when_nothing_is_correct():
    figures = correctness_figures([[False] * 10 for _ in range(5)])
    accuracy = figures["accuracy"]
    assert accuracy["value"] == 0.0 and accuracy["low"] == 0.0
    assert accuracy["high"] == pytest.approx(0.0711, abs=1e-3)  # Clopper–Pearson upper bound for 0/50
    assert set(figures["pass_at_k"]) == {"1", "5", "10"}


def test_one_prompt_gets_exact_binomial_intervals():
    figures = correctness_figures([[True] * 3 + [False] * 7])
    assert figures["accuracy"]["value"] == pytest.approx(0.3)
    assert (figures["accuracy"]["low"], figures["accuracy"]["high"]) == pytest.approx((0.0667, 0.6525), abs=1e-3)
    low, high = figures["pass_at_k"]["5"]["low"], figures["pass_at_k"]["5"]["high"]
    assert low == pytest.approx(1 - (1 - 0.0667) ** 5, abs=2e-3) and high == pytest.approx(1 - (1 - 0.6525) ** 5, abs=2e-3)


def test_path_figures_count_distinct_paths_among_correct_chains():
    figures = path_figures([[("1", "2"), ("1", "2"), ("2", "1")], [("5",)], []])
    assert figures["prompts_with_correct"] == 2 and figures["correct_chains"] == 4
    assert figures["distinct_paths"]["value"] == pytest.approx((2 + 1) / 2)
    assert figures["distinct_paths_per_correct"]["value"] == pytest.approx((2 / 3 + 1) / 2)


def test_verifiable_metrics_from_records(gsm_task):
    records = [{"prompt_index": 0, "text": reply, "finished": True} for reply, *_ in CHAINS]
    metrics = verifiable_task_metrics(gsm_task, records, resamples=200, seed=0)
    lenient = metrics["parse"]["lenient"]
    correct = [c for _, _, _, c, _ in CHAINS]
    assert lenient["accuracy"]["value"] == pytest.approx(sum(correct) / len(CHAINS))
    correct_paths = {p for *_, c, p in CHAINS if c}
    assert lenient["paths"]["distinct_paths"]["value"] == len(correct_paths)
    strict = metrics["parse"]["strict"]
    assert strict["accuracy"]["value"] == pytest.approx(sum(s == REFERENCE for _, s, *_ in CHAINS) / len(CHAINS))
    assert strict["answered"] == pytest.approx(sum(s is not None for _, s, *_ in CHAINS) / len(CHAINS))


def test_decomposition_reads_verifiable_chains_as_paths(gsm_task):
    records = [{"prompt_index": 0, "text": reply} for reply, *_ in CHAINS[:3]]
    outputs = task_outputs(gsm_task, records, "lenient")
    assert [o.item for o in outputs] == ["36 → 6 → 42", "36 → 6 → 42", "6 → 36 → 42"]
    assert all(o.correct for o in outputs)


def test_gsm8k_task_from_the_jsonl_release(shared_data):
    task = gsm8k_task(str(shared_data / "gsm8k" / "test.jsonl"), 5, seed=0)
    assert task.answer_type == "verifiable" and len(task.prompts) == len(task.references) == 5
    assert all(p.endswith("End with 'The answer is N.'") for p in task.prompts)
    assert gsm8k_task(str(shared_data / "gsm8k" / "test.jsonl"), 5, seed=0) == task


# ---------------------------------------------------------------- constrained tasks
@pytest.mark.parametrize(
    ("task", "reply", "mode", "answer", "valid"),
    [
        ("prime_below_50", "7", "strict", "7", True),
        ("prime_below_50", "4", "strict", "4", False),  # an answer, but a wrong one
        ("prime_below_50", "53", "strict", "53", False),
        ("prime_below_50", "A prime number below 50 is 13.", "lenient", "50", False),  # lenient reads the first number
        ("even_1_20", "20", "strict", "20", True),
        ("even_1_20", "21", "strict", "21", False),
        ("multiple_of_7", "98.", "strict", "98", True),
        ("multiple_of_7", "0", "strict", "0", False),
        ("european_country", "**France**", "strict", "France", True),
        ("european_country", "the Czech Republic", "lenient", "Czechia", True),
        ("european_country", "UK", "strict", "United Kingdom", True),
        ("european_country", "Japan", "strict", "japan", False),
        ("word_b", "Banana", "strict", "banana", True),
        ("word_b", "apple", "strict", "apple", False),
    ],
)
def test_constrained_tasks_tell_right_from_wrong(task, reply, mode, answer, valid):
    (spec,) = select_tasks(task)
    parsed = AnswerParser(spec).parse(reply, mode)
    assert (parsed.answer, parsed.valid) == (answer, valid)


def test_constrained_group_has_the_five_tasks_and_their_sizes():
    sizes = {t.name: len(AnswerParser(t).support) for t in select_tasks("constrained")}
    assert sizes["prime_below_50"] == 15 and sizes["even_1_20"] == 10 and sizes["multiple_of_7"] == 14
    assert sizes["european_country"] == 46 and sizes["word_b"] > 5000
    assert "prime_below_50" not in select_tasks("categorical")  # the panel the study measures is unchanged


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"answer_type": "integer", "low": 1, "high": 10, "valid": [2, 11]}, "not an integer in [1, 10]"),
        ({"answer_type": "verifiable"}, "needs 'references'"),
        ({"answer_type": "verifiable", "references": ["twelve"]}, "is not a number"),
        ({"answer_type": "choice", "valid_source": "english_words", "valid_pattern": "(["}, "not a regular expression"),
        ({"answer_type": "choice", "valid": ["a"], "references": ["1"]}, "'references' are for verifiable tasks"),
    ],
)
def test_bad_verifiable_and_constrained_specs_are_refused(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TaskSpec(name="t", prompt="q", **fields)


# ---------------------------------------------------------------- reasoning and the chain-of-thought switch
def test_reasoning_replies_are_read_from_the_end():
    (spec,) = select_tasks("prime_below_50")
    spec = spec.model_copy(update={"reasoning": True})
    parser = AnswerParser(spec)
    assert parser.parse("Primes below 50 include 2, 3 and 5. Answer: 47", "strict").answer == "47"
    assert parser.parse("I considered 9 and 15, then settled on 23.", "lenient").answer == "23"
    assert parser.parse("I considered 9 and 15, then settled on 23.", "strict").answer is None


@pytest.mark.parametrize("mode", COT_MODES)
def test_cot_modes_rewrite_the_task_once(mode):
    (spec,) = select_tasks("prime_below_50")
    rewritten = with_cot(spec, mode)
    assert with_cot(rewritten, mode) == rewritten and rewritten.name == spec.name
    allow = mode.startswith("on:")
    assert rewritten.reasoning is allow
    assert rewritten.exact_scorable is (not allow)
    if mode.endswith("instruction"):
        assert rewritten.prompts[0] == f"Name a prime number below 50. {THINK_FIRST if allow else ANSWER_NOW}"
    if mode.endswith("prefill"):
        assert rewritten.prefill == (ON_PREFILL if allow else OFF_PREFILL)
    if mode.endswith("template"):
        assert rewritten.thinking is allow and rewritten.prompt().thinking is allow


def test_unknown_cot_mode_is_one_line():
    with pytest.raises(RespreadError, match="unknown --cot mode 'sideways'"):
        with_cot(select_tasks("even_1_20")[0], "sideways")


@pytest.mark.slow
def test_thinking_switch_on_a_template_without_one_fails_in_one_line(smollm):
    from respread.backends import Prompt, SamplingParams

    with pytest.raises(RespreadError, match="has no thinking switch"):
        smollm.sample(Prompt("Name a prime number below 50.", thinking=False), [0], SamplingParams(max_new_tokens=2))





@pytest.mark.slow
def test_thinking_switch_reaches_a_template_that_has_one(smollm):
    import copy

    from respread.backends import Prompt
    from respread.backends.transformers import TransformersBackend

    tokenizer = copy.deepcopy(smollm.tokenizer)
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n"
        "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n{% endif %}{% endif %}"
    )
    backend = TransformersBackend.from_loaded(smollm.model, tokenizer)
    (task,) = select_tasks("prime_below_50")
    off, on = with_cot(task, "off:template").prompt(), with_cot(task, "on:template").prompt()
    assert backend.render(off).endswith("<think>\n\n</think>\n") and not backend.render(on).endswith("</think>\n")
    assert backend.render(Prompt(task.prompts[0])) == backend.render(on)  # the template's default: thinking allowed


@pytest.mark.parametrize(
    ("reply", "strict", "lenient"),
    [
        ("The answer is 18, which is 3 more than 15.", "18", "18"),  # a comma that ends the clause
        ("The answer is 3 x 4 = 12", None, "12"),  # an expression after the marker states no number
        ("The answer is 5. Recheck: so the answer is 2 + 4 = 6.", None, "6"),  # only the last marker counts
        ("**Answer**: 18", "18", "18"),
        ("so the result is \\boxed{18}", "18", "18"),
        ("Answer: 1,250 apples", "1250", "1250"),
    ],
)
def test_the_last_stated_answer_is_read_or_nothing_is(gsm_task, reply, strict, lenient):
    from respread.tasks.verifiable import extract_final_number, extract_marked_number

    assert extract_marked_number(reply) == strict and extract_final_number(reply) == lenient


def test_lenient_choice_spans_follow_one_another():
    spec = TaskSpec(name="c", prompt="q", answer_type="choice", valid=["red", "light blue", "blue"], reasoning=True)
    parser = AnswerParser(spec)
    assert parser.parse("Maybe red, then light blue", "lenient").answer == "light blue"
    assert parser._answers_in("Maybe red light blue") == ["red", "light blue"]


def test_records_written_before_the_thinking_switch_keep_their_keys():
    import hashlib
    import json

    from respread.measure.run import EvalConfig, settings_digest

    (task,) = select_tasks("integer_1_10")
    config = EvalConfig(model="m", tasks=[task], samples=1)
    params = config.params_for(task)
    old_prompt = {"user": task.prompts[0], "system": None, "prefill": "", "few_shot": []}
    old = hashlib.sha256(json.dumps({"model": "m", "seed": 0, "params": params.as_dict(), "prompt": old_prompt},
                                    sort_keys=True, default=list).encode()).hexdigest()[:12]
    assert settings_digest(task, 0, params, config) == old
    thinking = with_cot(task, "off:template")
    assert settings_digest(thinking, 0, params, config) != old
