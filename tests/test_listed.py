"""The listed panel: the published prompts and lists, request ids from the seed, `listed_<task>` for closed tasks."""

from __future__ import annotations

import re

import pytest

from respread.errors import RespreadError
from respread.tasks import GROUPS, AnswerParser, registry, select_tasks
from respread.tasks.listed import listed
from respread.tasks.spec import TaskSpec

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_the_listed_group_is_the_published_panel_in_its_order_with_its_list_sizes():
    tasks = select_tasks("listed")
    sizes = {t.name: len(AnswerParser(t).support) for t in tasks}
    assert list(sizes) == GROUPS["listed"] == [
        "listed_integer_1_100", "listed_color", "listed_fruit", "listed_integer_1_10", "listed_integer_1_1000",
        "listed_animal", "listed_first_name", "listed_word", "listed_emoji", "listed_card_suit",
    ]
    assert sizes == {
        "listed_integer_1_100": 100, "listed_color": 20, "listed_fruit": 20, "listed_integer_1_10": 10,
        "listed_integer_1_1000": 1000, "listed_animal": 20, "listed_first_name": 20, "listed_word": 50,
        "listed_emoji": 20, "listed_card_suit": 4,
    }
    assert all(t.is_closed and t.exact_scorable for t in tasks)


def test_listed_prompts_are_the_published_messages_with_every_candidate():
    suits = select_tasks("listed_card_suit")[0]
    assert suits.system == (
        "You are a uniform random sampler. Output ONLY one card suit from the list below, exactly as written. "
        "No punctuation, no extra words.\n\nValid card suits: Spades, Hearts, Diamonds, Clubs"
    )
    assert len(suits.prompts) == 4
    for prompt in suits.prompts:
        match = re.fullmatch(r"Pick a random card suit\. \(Request ID: (.+) - ignore this, it is only for deduplication\.\)", prompt)
        assert match and UUID4.fullmatch(match.group(1))
    thousand = select_tasks("listed_integer_1_1000")[0]
    assert thousand.system.endswith("Valid integer between 1 and 1000s: " + ", ".join(str(i) for i in range(1, 1001)))
    assert AnswerParser(thousand).surface_forms("7") == ["7"]  # scored exactly as listed
    names = select_tasks("listed_first_name")[0]
    assert AnswerParser(names).surface_forms("Alice") == ["Alice"]
    assert AnswerParser(names).parse("alice").answer == "Alice"  # the parser still folds case


def test_request_ids_come_from_the_seed():
    first, again, other = (select_tasks("listed_color", seed=s)[0].prompts for s in (0, 0, 1))
    assert first == again
    assert len(set(first)) == 4 and not set(first) & set(other)
    # Training draws its own ids, apart from the measured ones.
    template = registry()["listed_color"]
    assert "{request_id}" in template.prompts[0] and template.request_ids == 4
    trained = template.instantiate(0, count=8, namespace="train").prompts
    assert len(trained) == 8 and not set(trained) & set(first)


def test_every_closed_task_can_be_asked_listed_including_a_users_own(tmp_path):
    tasks_file = tmp_path / "tasks.yaml"
    tasks_file.write_text(
        "tasks:\n  - name: planet\n    prompt: Name a planet.\n    answer_type: choice\n"
        "    valid: [Mercury, Venus, Earth, Mars]\n    closed: true\n    kind: planet of the solar system\n"
        "  - name: mood\n    prompt: Name a mood.\n    answer_type: choice\n    valid_source: fruits\n",
        encoding="utf-8",
    )
    tasks = registry([tasks_file])
    planet = tasks["listed_planet"].instantiate(0)
    assert planet.system.endswith("Valid planet of the solar systems: Mercury, Venus, Earth, Mars")
    assert planet.prompts[0].startswith("Pick a random planet of the solar system. (Request ID: ")
    assert tasks["listed_prime_below_50"].system.endswith("2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47")
    assert "listed_mood" not in tasks and "listed_color" in tasks  # open tasks have no list; the panel's colour list is its own
    with pytest.raises(ValueError, match="open"):
        listed(tasks["mood"])


def test_a_prompt_template_without_its_request_id_slot_is_refused():
    with pytest.raises(ValueError, match="request_id"):
        TaskSpec(name="x", prompt="Pick one.", answer_type="choice", valid=["a", "b"], closed=True, request_ids=2)


def test_an_unknown_listed_task_is_a_one_line_error():
    with pytest.raises(RespreadError, match="unknown task 'listed_word_b'"):
        select_tasks("listed_word_b")  # word_b is open: it has no list to show
