"""User task files: good ones load and run; malformed ones fail naming file, task and field."""

from __future__ import annotations

import pytest

from respread.errors import RespreadError
from respread.tasks import AnswerParser, TaskSpec, load_tasks_file, select_tasks

GOOD = """\
tasks:
  - name: planet
    prompt: Name a random planet of the solar system. Reply with only the name.
    answer_type: choice
    valid: [mercury, venus, earth, mars, jupiter, saturn, uranus, neptune]
    closed: true
  - name: dice
    prompts: ["Roll a die. Reply with only the number.", "Throw a six-sided die; answer with the number only."]
    answer_type: integer
    low: 1
    high: 6
    few_shot: [["Roll a die. Reply with only the number.", "4"]]
"""


def write(tmp_path, text, name="tasks.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_adds_tasks_usable_by_name(tmp_path):
    path = write(tmp_path, GOOD)
    tasks = select_tasks("planet,dice,card_suit", [path])
    assert [t.name for t in tasks] == ["planet", "dice", "card_suit"]
    planet = AnswerParser(tasks[0])
    assert planet.parse("Mars.").answer == "mars" and tasks[0].is_closed
    assert len(tasks[1].prompts) == 2 and tasks[1].prompt(0).few_shot == (("Roll a die. Reply with only the number.", "4"),)


@pytest.mark.parametrize(
    "body,expected",
    [
        ("- name: colour\n  prompt: Pick\n  answer_type: choice\n  valid: 'red, blue'\n",
         "task 'colour': field 'valid': Input should be a valid list (got: 'red, blue')"),
        ("- name: colour\n  prompt: Pick\n  answer_type: choice\n  valid: []\n",
         "task 'colour': field 'valid': must be a non-empty list"),
        ("- name: n\n  prompt: Pick\n  answer_type: integer\n  low: 10\n  high: 1\n",
         "task 'n': 'low' (10) must be below 'high' (1)"),
        ("- name: n\n  prompt: Pick\n  answer_type: number\n  low: 1\n  high: 2\n",
         "task 'n': field 'answer_type'"),
        ("- name: n\n  prompt: ''\n  answer_type: integer\n  low: 1\n  high: 2\n",
         "task 'n': field 'prompts': prompt 0 is empty"),
        ("- name: n\n  prompt: Pick\n  answer_type: integer\n  low: 1\n  high: 2\n  colour: red\n",
         "task 'n': field 'colour': Extra inputs are not permitted"),
        ("- name: Bad Name\n  prompt: Pick\n  answer_type: integer\n  low: 1\n  high: 2\n",
         "task 'Bad Name': field 'name'"),
        ("- name: c\n  prompt: Pick\n  answer_type: choice\n  valid_source: colours\n", None),
        ("- just a string\n", "task 0: expected a mapping of fields"),
        ("tasks: []\n", "expected a non-empty list"),
        ("- name: [unclosed\n", "not valid YAML at line"),
        ("- name: a\n  prompt: P\n  answer_type: integer\n  low: 1\n  high: 3\n- name: a\n  prompt: P\n  answer_type: integer\n  low: 1\n  high: 3\n",
         "task 'a': the name is used twice"),
        ("- name: colour\n  prompt: Pick\n  answer_type: choice\n  valid: [red, blue, red]\n",
         "task 'colour': field 'valid' repeats 'red'; remove the repeats"),
        ("- name: colour\n  prompt: Pick\n  answer_type: choice\n  valid: [light blue, red, Light-Blue, red, red]\n",
         "task 'colour': field 'valid' repeats 'Light-Blue' (same answer as 'light blue'), 'red'; remove the repeats"),
        ("- name: colour\n  prompt: Pick\n  answer_type: choice\n  valid: [gray, grey]\n  aliases: {grey: gray}\n",
         "task 'colour': field 'valid' repeats 'grey' (same answer as 'gray'); remove the repeats"),
        ("- name: n\n  prompt: Pick\n  answer_type: integer\n  low: 1\n  high: 9\n  valid: [2, 3, '03']\n",
         "task 'n': field 'valid' repeats '03' (same answer as '3'); remove the repeats"),
    ],
)
def test_malformed_file_names_file_task_and_problem(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(RespreadError) as info:
        tasks = load_tasks_file(path)
        AnswerParser(tasks[0]).support  # an unknown valid_source surfaces when the list is needed
    message = str(info.value)
    assert "\n" not in message
    if expected is None:
        assert "unknown valid_source 'colours'" in message
    else:
        assert message.startswith(f"tasks file {path}") and expected in message


def test_distinct_spellings_that_parse_apart_are_not_repeats(tmp_path):
    path = write(tmp_path, "- name: fruit\n  prompt: Pick\n  answer_type: choice\n  valid: [apple, apples, grey]\n"
                           "  aliases: {grey: gray}\n")
    assert load_tasks_file(path)[0].valid == ["apple", "apples", "grey"]  # the alias's target is not in the list


def test_builtin_tasks_have_no_repeated_answers():
    for task in select_tasks("categorical,constrained"):
        TaskSpec.model_validate(task.model_dump())


@pytest.mark.parametrize("name,kind", [("integer_1_10", "task"), ("categorical", "task group")])
def test_a_task_file_may_not_reuse_a_builtin_name(tmp_path, name, kind):
    path = write(tmp_path, f"- name: {name}\n  prompt: Pick\n  answer_type: integer\n  low: 1\n  high: 3\n")
    with pytest.raises(RespreadError) as info:
        select_tasks("card_suit", [path])
    assert str(info.value) == f"tasks file {path} defines '{name}', which is a built-in {kind} name; rename it (e.g. 'my_{name}')"


def test_two_task_files_may_not_define_one_name(tmp_path):
    first = write(tmp_path, GOOD, "a.yaml")
    second = write(tmp_path, "- name: dice\n  prompt: Roll\n  answer_type: integer\n  low: 1\n  high: 6\n", "b.yaml")
    with pytest.raises(RespreadError) as info:
        select_tasks("dice", [first, second])
    assert str(info.value) == f"tasks file {second} defines 'dice', which tasks file {first} defines too; rename one of them"


def test_a_prompts_file_may_not_reuse_a_task_name(tmp_path):
    path = write(tmp_path, '{"prompt": "Tell a story."}\n', "creative.jsonl")
    with pytest.raises(RespreadError) as info:
        select_tasks("card_suit", [], [path])
    assert str(info.value) == (
        f"prompts file {path} makes task 'creative' (named after the file), which is already a task name; "
        "rename the file (e.g. 'my_creative.jsonl')"
    )


def test_a_builtin_name_in_a_task_file_fails_the_cli_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from respread.cli import app

    path = write(tmp_path, "- name: integer_1_10\n  prompt: Pick\n  answer_type: integer\n  low: 1\n  high: 3\n")
    result = CliRunner().invoke(app, ["eval", "--tasks-file", str(path), "--tasks", "integer_1_10", "--out", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert result.stderr.strip() == (
        f"error: tasks file {path} defines 'integer_1_10', which is a built-in task name; rename it (e.g. 'my_integer_1_10')"
    )


def test_non_utf8_file_is_reported_with_the_byte_offset(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("- name: café\n".encode("latin-1"))
    with pytest.raises(RespreadError, match=r"not UTF-8 \(bad byte at offset 11\)"):
        load_tasks_file(path)


def test_missing_file_and_unknown_task_are_clear(tmp_path):
    with pytest.raises(RespreadError, match="cannot read it"):
        load_tasks_file(tmp_path / "nope.yaml")
    with pytest.raises(RespreadError, match="unknown task 'colour'; known: categorical"):
        select_tasks("colour")
