"""Verbalized-sampling prompt and parser, on a table of well- and badly-formed replies of small instruct models."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from respread.restore.baselines.verbalized import (
    STATUSES,
    VerbalizedReply,
    parse_verbalized,
    pick_answer,
    stated_distribution,
    summarise_statuses,
    verbalized_prompt,
)

OK, MISSING, UNPARSEABLE = "ok", "missing_probabilities", "unparseable"

# (id, reply, expected responses as (text, stated probability or None), status, renormalised, source)
TABLE = [
    (
        "valid_json",
        ('{"responses": [{"text": "42", "probability": 0.3}, {"text": "17", "probability": 0.5}, '
        '{"text": "88", "probability": 0.2}]}'),
        [("42", 0.3), ("17", 0.5), ("88", 0.2)], OK, False, "json",
    ),
    (
        "bare_list",
        '[{"text": "red", "probability": 0.6}, {"text": "blue", "probability": 0.4}]',
        [("red", 0.6), ("blue", 0.4)], OK, False, "json",
    ),
    (
        "prose_before_fence_trailing_commas",
        ('Sure! Here are 3 random numbers with their probabilities:\n\n```json\n{\n  "responses": [\n'
        '    {"text": "7", "probability": 0.5},\n    {"text": "3", "probability": 0.25},\n'
        '    {"text": "9", "probability": 0.25},\n  ],\n}\n```\nLet me know if you need more!'),
        [("7", 0.5), ("3", 0.25), ("9", 0.25)], OK, False, "json",
    ),
    (
        "single_quotes_python_dict",
        "{'responses': [{'text': 'Apple', 'probability': 0.5}, {'text': 'Mango', 'probability': 0.5}]}",
        [("Apple", 0.5), ("Mango", 0.5)], OK, False, "json",
    ),
    (
        "truncated_mid_item",
        ('{"responses": [{"text": "42", "probability": 0.2}, {"text": "17", "probability": 0.2}, '
        '{"text": "8'),
        [("42", 0.2), ("17", 0.2)], OK, True, "json",
    ),
    (
        "truncated_mid_number",
        '```json\n{"responses": [{"text": "cat", "probability": 0.4}, {"text": "dog", "probability": 0.',
        [("cat", 0.4)], OK, True, "json",
    ),
    (
        "percent_strings",
        '{"responses": [{"text": "Blue", "probability": "30%"}, {"text": "Green", "probability": "70 %"}]}',
        [("Blue", 0.3), ("Green", 0.7)], OK, False, "json",
    ),
    (
        "bare_percent_numbers",
        ('{"responses": [{"text": "Emma", "probability": 30}, {"text": "Liam", "probability": 45}, '
        '{"text": "Noah", "probability": 25}]}'),
        [("Emma", 0.3), ("Liam", 0.45), ("Noah", 0.25)], OK, False, "json",
    ),
    (
        "numeric_strings",
        '{"responses": [{"text": "5", "probability": "0.6"}, {"text": "6", "probability": "0.4"}]}',
        [("5", 0.6), ("6", 0.4)], OK, False, "json",
    ),
    (
        "sum_1_7",
        ('{"responses": [{"text": "hearts", "probability": 0.5}, {"text": "spades", "probability": 0.6}, '
        '{"text": "clubs", "probability": 0.6}]}'),
        [("hearts", 0.5), ("spades", 0.6), ("clubs", 0.6)], OK, True, "json",
    ),
    (
        "duplicates_case_and_space",
        ('{"responses": [{"text": "Red", "probability": 0.3}, {"text": "red ", "probability": 0.2}, '
        '{"text": "Blue", "probability": 0.5}]}'),
        [("Red", 0.5), ("Blue", 0.5)], OK, False, "json",
    ),
    (
        "missing_and_null_probabilities",
        ('{"responses": [{"text": "lion", "probability": 0.5}, {"text": "tiger"}, '
        '{"text": "bear", "probability": null}]}'),
        [("lion", 0.5), ("tiger", None), ("bear", None)], MISSING, False, "json",
    ),
    (
        "non_numeric_probability",
        '{"responses": [{"text": "owl", "probability": "high"}, {"text": "fox", "probability": 0.4}]}',
        [("owl", None), ("fox", 0.4)], MISSING, False, "json",
    ),
    (
        "negative_and_nan",
        ('{"responses": [{"text": "a", "probability": -0.2}, {"text": "b", "probability": NaN}, '
        '{"text": "c", "probability": 0.5}]}'),
        [("a", None), ("b", None), ("c", 0.5)], MISSING, False, "json",
    ),
    (
        "missing_with_full_mass",
        '{"responses": [{"text": "x", "probability": 0.6}, {"text": "y", "probability": 0.4}, {"text": "z"}]}',
        [("x", 0.6), ("y", 0.4), ("z", None)], MISSING, True, "json",
    ),
    (
        "list_of_strings_no_probabilities",
        '{"responses": ["42", "17", "88", "3", "61"]}',
        [("42", None), ("17", None), ("88", None), ("3", None), ("61", None)], MISSING, False, "json",
    ),
    (
        "empty_text_dropped",
        ('{"responses": [{"text": "", "probability": 0.5}, {"text": "  ", "probability": 0.1}, '
        '{"text": "Olivia", "probability": 0.4}]}'),
        [("Olivia", 0.4)], OK, True, "json",
    ),
    (
        "other_field_names",
        '{"responses": [{"response": "grape", "confidence": 0.7}, {"fruit": "kiwi", "Probability": 0.3}]}',
        [("grape", 0.7), ("kiwi", 0.3)], OK, False, "json",
    ),
    (
        "numbers_as_json_numbers",
        '{"responses": [{"text": 42, "probability": 0.5}, {"text": 7, "probability": 0.5}]}',
        [("42", 0.5), ("7", 0.5)], OK, False, "json",
    ),
    (
        "json_lines",
        ('{"text": "oak", "probability": 0.5}\n{"text": "elm", "probability": 0.3}\n'
        '{"text": "ash", "probability": 0.2}'),
        [("oak", 0.5), ("elm", 0.3), ("ash", 0.2)], OK, False, "json",
    ),
    (
        "mapping_text_to_probability",
        '{"red": 0.3, "blue": 0.7}',
        [("red", 0.3), ("blue", 0.7)], OK, False, "json",
    ),
    (
        "xml_tags_from_package_readme",
        ("<response><text>42</text><probability>0.4</probability></response>\n"
        "<response><text>7</text><probability>0.6</probability></response>"),
        [("42", 0.4), ("7", 0.6)], OK, False, "xml",
    ),
    (
        "numbered_lines_with_probability",
        "Here are my picks:\n1. 42 (probability: 0.2)\n2. 17 (probability: 0.3)\n3. 88 (probability: 0.5)",
        [("42", 0.2), ("17", 0.3), ("88", 0.5)], OK, False, "lines",
    ),
    (
        "bullets_colon",
        "Here are some colors:\n- red: 0.3\n- blue: 0.5\n- green",
        [("red", 0.3), ("blue", 0.5), ("green", None)], MISSING, False, "lines",
    ),
    (
        "unmarked_dash_percent",
        "blue - 25%\nred - 75%",
        [("blue", 0.25), ("red", 0.75)], OK, False, "lines",
    ),
    (
        "bullets_without_probabilities",
        "Sure!\n* Luna\n* Max\n* Bella",
        [("Luna", None), ("Max", None), ("Bella", None)], MISSING, False, "lines",
    ),
    (
        "markdown_table",
        "| Color | Probability |\n|-------|-------------|\n| red | 0.3 |\n| blue | 0.7 |",
        [("red", 0.3), ("blue", 0.7)], OK, False, "lines",
    ),
    (
        "labelled_lines_with_total",
        "Text: red, Probability: 0.3\nText: blue, Probability: 0.7\nTotal: 1.0",
        [("red", 0.3), ("blue", 0.7)], OK, False, "lines",
    ),
    ("garbled_comma_list_in_prose", "Sure! Here are some numbers: 42, 17, 88", [], UNPARSEABLE, False, "none"),
    ("bare_answer", "42", [], UNPARSEABLE, False, "none"),
    ("refusal", "I can't do that", [], UNPARSEABLE, False, "none"),
    ("empty", "", [], UNPARSEABLE, False, "none"),
    ("echoed_skeleton", '{"responses": [{"text": "...", "probability": ...}, ...]}', [], UNPARSEABLE, False, "none"),
    ("prose_with_braces", "I would use the format {text, probability} but I cannot.", [], UNPARSEABLE, False, "none"),
]


@pytest.mark.parametrize(
    ("reply", "responses", "status", "renormalised", "source"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_parse_table(reply, responses, status, renormalised, source):
    parsed = parse_verbalized(reply)
    assert [t for t, _ in parsed.responses] == [t for t, _ in responses]
    for (_, got), (_, want) in zip(parsed.responses, responses, strict=True):
        assert (got is None) == (want is None)
        if want is not None:
            assert got == pytest.approx(want)
    assert parsed.status == status
    assert parsed.renormalised == renormalised
    assert parsed.source == source


@pytest.mark.parametrize("reply", [row[1] for row in TABLE], ids=[row[0] for row in TABLE])
def test_stated_distribution_sums_to_one_when_parseable(reply):
    parsed = parse_verbalized(reply)
    dist = stated_distribution(parsed)
    if parsed.status == UNPARSEABLE:
        assert dist == {}
        assert pick_answer(parsed, seed=0) is None
    else:
        assert list(dist) == [t for t, _ in parsed.responses]
        assert math.fsum(dist.values()) == pytest.approx(1.0)
        assert all(p >= 0 for p in dist.values())
        assert pick_answer(parsed, seed=0) in dist


def test_truncated_flag():
    assert parse_verbalized('{"responses": [{"text": "a", "probability": 0.5}, {"te').truncated
    assert not parse_verbalized('{"responses": [{"text": "a", "probability": 1.0}]}').truncated


@pytest.mark.parametrize(
    ("reply", "responses"),
    [
        # a response cut before its closing brace is dropped whole, whatever it was missing
        ('[{"text": "a", "probability": 0.5}, {"text": "b", "probability": 0.5', [("a", 0.5)]),
        ('[{"text": "a", "probability": 0.5}, {"text": "b"', [("a", 0.5)]),
        ('[{"text": "a", "probability": 0.5}, {"text": "b', [("a", 0.5)]),
        # complete items before the cut are kept, also when only the closing brackets are missing
        ('{"responses": [{"text": "a", "probability": 0.5}, {"text": "b", "probability": 0.5}', [("a", 0.5), ("b", 0.5)]),
        ('{"responses": [{"text": "a", "probability": 0.5}, ', [("a", 0.5)]),
        # a list of strings: the cut string is dropped, a closed one kept
        ('{"responses": ["42", "17", "8', [("42", None), ("17", None)]),
        ('{"responses": ["42", "17"', [("42", None), ("17", None)]),
        # JSON lines: the cut object is dropped
        ('{"text": "oak", "probability": 0.5}\n{"text": "elm", "probability": 0.', [("oak", 0.5)]),
        # brackets and quotes inside strings do not count
        ('[{"text": "a]}\\"", "probability": 0.5}, {"text": "b', [('a]}"', 0.5)]),
    ],
)
def test_truncation_rule(reply, responses):
    parsed = parse_verbalized(reply)
    assert parsed.truncated and parsed.source == "json"
    assert list(parsed.responses) == responses


def test_fill_rules():
    # some missing, mass left: the missing share it equally, the stated stay
    reply = parse_verbalized('[{"text": "a", "probability": 0.5}, {"text": "b"}, {"text": "c"}]')
    assert stated_distribution(reply) == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.25})
    # some missing, no mass left: the missing get the mean of the stated, then all renormalised
    reply = parse_verbalized('[{"text": "a", "probability": 0.6}, {"text": "b", "probability": 0.4}, {"text": "c"}]')
    assert stated_distribution(reply) == pytest.approx({"a": 0.4, "b": 0.8 / 3, "c": 1 / 3})
    # all missing: uniform
    reply = parse_verbalized('["a", "b", "c", "d"]')
    assert stated_distribution(reply) == pytest.approx(dict.fromkeys("abcd", 0.25))
    # all stated zero: uniform, flagged
    reply = parse_verbalized('[{"text": "a", "probability": 0}, {"text": "b", "probability": 0}]')
    assert stated_distribution(reply) == pytest.approx({"a": 0.5, "b": 0.5}) and reply.renormalised
    # a stated zero is never picked
    reply = parse_verbalized('[{"text": "a", "probability": 0}, {"text": "b", "probability": 1}]')
    assert {pick_answer(reply, seed) for seed in range(200)} == {"b"}


def test_pick_answer_deterministic_per_seed():
    reply = parse_verbalized(TABLE[0][1])
    assert [pick_answer(reply, s) for s in range(50)] == [pick_answer(reply, s) for s in range(50)]
    assert len({pick_answer(reply, s) for s in range(50)}) > 1


@pytest.mark.parametrize(
    "reply",
    [
        TABLE[0][1],  # 0.3 / 0.5 / 0.2
        ('{"responses": [{"text": "a", "probability": 0.05}, {"text": "b", "probability": 0.9}, '
        '{"text": "c", "probability": 0.05}]}'),
        '{"responses": [{"text": "a", "probability": 3}, {"text": "b", "probability": 1}]}',  # percent; renormalised
        "- x: 0.1\n- y\n- z",  # missing: y and z get 0.45 each
    ],
)
def test_pick_answer_frequencies_match_stated_distribution(reply):
    parsed = parse_verbalized(reply)
    dist = stated_distribution(parsed)
    n = 4000
    counts = Counter(pick_answer(parsed, seed) for seed in range(n))
    assert set(counts) <= set(dist)
    for text, p in dist.items():
        assert counts[text] / n == pytest.approx(p, abs=0.03)


def test_summarise_statuses():
    replies = [parse_verbalized(r) for r in (TABLE[0][1], TABLE[0][1], '["a", "b"]', "I can't do that")]
    shares = summarise_statuses(replies)
    assert list(shares) == list(STATUSES)
    assert shares == {OK: 0.5, MISSING: 0.25, UNPARSEABLE: 0.25}
    assert summarise_statuses([]) == dict.fromkeys(STATUSES, 0.0)


def test_reply_is_frozen():
    reply = parse_verbalized(TABLE[0][1])
    assert isinstance(reply, VerbalizedReply)
    with pytest.raises(AttributeError):
        reply.status = "ok"  # type: ignore[misc]


@pytest.mark.parametrize("k", [1, 5, 10])
def test_prompt_contains_question_and_k(k):
    question = "Pick a random integer between 1 and 100. Reply with only the number."
    prompt = verbalized_prompt(question, k=k)
    assert question in prompt
    assert f"Generate {k} response" in prompt
    assert f"a list of {k} object" in prompt
    assert '"responses"' in prompt and '"text"' in prompt and '"probability"' in prompt


def test_prompt_rejects_bad_input():
    with pytest.raises(ValueError):
        verbalized_prompt("   ")
    with pytest.raises(ValueError):
        verbalized_prompt("Name a color.", k=0)
