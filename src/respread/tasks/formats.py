"""The generation-format switch: the same task with chain-of-thought suppressed or allowed.

Diversity measured on bare answers may live in the format rather than the weights: a model told to
reason first can land on other answers than one told to answer at once. `with_cot(task, mode)` returns
the task rewritten for one mode, under the same name, so two run directories that differ only in mode
compare task by task (`respread compare`, `respread decompose`).

Modes are `off:` or `on:` followed by how the switch is thrown:

* `instruction`: the task's own "Reply with only ..." / "Solve the problem step by step ..." sentence is
  replaced by an instruction to answer at once (off) or to reason step by step and end with
  "Answer: ..." (on);
* `prefill`: the prompt is kept and the assistant's reply is forced to start with "The answer is" (off)
  or "Let's think step by step." (on);
* `template`: the chat template's thinking switch (`enable_thinking`), for models whose template has one;
  other models fail with one line saying so.

`task` (the default) leaves the task as written. With reasoning allowed, replies are parsed from the end
(`reasoning: true`: the text after the last "Answer:", else the last answer named).
"""

from __future__ import annotations

import re

from respread.errors import RespreadError
from respread.tasks.spec import TaskSpec

COT_MODES = ("task", "off:instruction", "off:prefill", "off:template", "on:instruction", "on:prefill", "on:template")
ANSWER_NOW = "Give only the final answer, with no explanation or working."
THINK_FIRST = "Think it through step by step first, then give your final answer on the last line as 'Answer: <answer>'."
OFF_PREFILL = "The answer is"
ON_PREFILL = "Let's think step by step."
REASONING_TOKENS = 192  # room for a short chain of thought when the task's own limit is smaller
ANSWER_TOKENS = 24

# The format sentence a built-in or GSM8K prompt ends with; anything after it is dropped with it.
# Our own two instructions match too, so rewriting a rewritten task changes nothing.
_FORMAT_SENTENCE = re.compile(
    r"\s*(?:Reply with only\b|Solve the problem step by step\b|Answer with only\b|Give only the final answer\b"
    r"|Think it through step by step first\b).*\Z",
    re.S,
)


def check_cot_mode(mode: str) -> str:
    if mode not in COT_MODES:
        raise RespreadError(f"unknown --cot mode '{mode}'; choose one of {', '.join(COT_MODES)}")
    return mode


def with_cot(task: TaskSpec, mode: str) -> TaskSpec:
    """`task` rewritten for chain-of-thought mode `mode` (see the module docstring)."""
    check_cot_mode(mode)
    if mode == "task" or task.answer_type == "text":
        return task
    allow, how = mode.split(":")
    allow = allow == "on"
    update: dict = {
        "reasoning": allow or task.answer_type == "verifiable",
        "max_new_tokens": max(task.max_new_tokens, REASONING_TOKENS) if allow else min(task.max_new_tokens, ANSWER_TOKENS),
        "description": f"{task.description.split(' [cot ')[0]} [cot {mode}]".strip(),
    }
    if how == "instruction":
        update["prompts"] = [f"{_FORMAT_SENTENCE.sub('', p).rstrip()} {THINK_FIRST if allow else ANSWER_NOW}" for p in task.prompts]
    elif how == "prefill":
        update["prefill"] = ON_PREFILL if allow else OFF_PREFILL
        if not allow and task.is_closed:
            from respread.tasks.parsing import AnswerParser

            # After "The answer is" the model writes " 7": exact mode scores the forms with that space.
            update["exact_forms"] = [" " + form.lstrip() for form in AnswerParser(task).exact_forms()]
    else:
        update["thinking"] = allow
    return task.model_copy(update=update)
