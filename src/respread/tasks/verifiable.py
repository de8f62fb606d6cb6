"""Verifiable tasks: one right answer per prompt, worked out in a reply that may reason first.

Answers are read from the end of a reply, the way GSM8K's own solutions end ("#### 18") and the way a
model told to "end with 'The answer is N'" ends. Calculation paths (`calculation_path`) are what two
correct chains must share to count as one way of solving the problem. GSM8K loads from its JSONL release
or a `datasets` hub id; `gsm8k_task` makes it a task like any other.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from respread.errors import RespreadError
from respread.records import user_jsonl_rows
from respread.tasks.answers import (  # noqa: F401  (re-exported: GSM8K users import them from here)
    _AFTER_HASHES,
    _ANY_NUMBER,
    _NUMBER,
    extract_final_number,
    extract_marked_number,
    normalise_number,
    same_answer,
    same_number,
)
from respread.tasks.spec import TaskSpec

GSM8K_HUB = ("main", "test")  # config and split of `openai/gsm8k`
GSM8K_INSTRUCTION = "Solve the problem step by step. End with 'The answer is N.'"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
@dataclass(frozen=True)
class GSM8KItem:
    id: str  # "<file>:<line>" or "<hub id>:<row>"
    question: str
    answer: str  # the final answer, normalised as `extract_final_number` normalises a reply's


def load_gsm8k(source: str, subset: int, seed: int = 0) -> list[GSM8KItem]:
    """`subset` GSM8K problems from a local JSONL file (`question`, `answer` ending in `#### N`) or a hub id.

    Sampling as in `load_mmlu`: a seeded shuffle of the file's order, the first `subset` taken, returned
    in file order.
    """
    check_subset(subset)
    path = Path(source).expanduser()
    items = _read_gsm8k_file(path) if path.exists() else _gsm8k_from_hub(source)
    return seeded_subset(items, subset, seed)


def check_subset(subset: int) -> None:
    if subset < 1:
        raise RespreadError(f"subset must be at least 1 (got {subset})")


def seeded_subset(items: list, subset: int, seed: int) -> list:
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    return [items[i] for i in sorted(order[:subset])]


def _read_gsm8k_file(path: Path) -> list[GSM8KItem]:
    if not path.is_file():
        raise RespreadError(f"GSM8K source {path} is a folder; give the JSONL file (e.g. gsm8k/test.jsonl)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RespreadError(f"GSM8K file {path}: not UTF-8 JSONL (bad byte at offset {exc.start}); give the .jsonl release") from exc
    items = [
        _gsm8k_item(row, f"{path.name}:{number}", f"GSM8K file {path}, line {number}")
        for number, row in user_jsonl_rows(text, f"GSM8K file {path}")
    ]
    if not items:
        raise RespreadError(f"GSM8K file {path}: no problems in it")
    return items


def _gsm8k_from_hub(source: str) -> list[GSM8KItem]:
    rows = hub_rows(source, *GSM8K_HUB, what="GSM8K")
    return [_gsm8k_item(row, f"{source}:{i}", f"GSM8K dataset {source}, row {i}") for i, row in enumerate(rows)]


def _gsm8k_item(row: Any, item_id: str, where: str) -> GSM8KItem:
    if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not isinstance(row.get("answer"), str):
        raise RespreadError(f"{where}: needs string fields 'question' and 'answer'")
    match = _AFTER_HASHES.search(row["answer"])
    if match is None:
        raise RespreadError(f"{where}: field 'answer' must end with '#### <number>' (the GSM8K format)")
    return GSM8KItem(item_id, row["question"], normalise_number(match.group(1)))


def hub_rows(source: str, config: str, split: str, *, what: str):
    if not _HUB_ID.match(source):
        raise RespreadError(f"{what} source '{source}' does not exist; give a local path or a hub id (org/name)")
    try:
        import datasets
    except ImportError as exc:
        raise RespreadError(f"{what} source '{source}' is a hub id and needs `datasets`: pip install datasets") from exc
    try:
        return datasets.load_dataset(source, config, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, wrong config: all are the user's to fix
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RespreadError(f"{what} source '{source}' is not a local path and could not be loaded from the hub "
                            f"(config {config}, split {split}): {first_line}") from exc


_STEP_LABEL = re.compile(r"(?im)^\s*(?:step\s*)?\d+\s*[.):]\s|\bstep\s+\d+\b")
_CALCULATOR = re.compile(r"<<[^<>]*?=\s*(" + _NUMBER + r")\s*>>")


def calculation_path(chain: str, question: str) -> tuple[str, ...]:
    """The intermediate numbers a chain computes, in order: its calculation path.

    path(chain) = the numbers of `chain`, normalised (commas, `$`, trailing decimal zeros dropped), that do
    not occur in `question`, in order of first appearance, each once. Step labels ("Step 2:", a line
    starting "3.") are not computed numbers and are skipped; a GSM8K calculator note `<<4*3=12>>` counts
    once, as its result. Two chains share a path when their paths are equal, so "4 * 3 = 12, 12 + 5 = 17"
    and "3 * 4 = 12; 5 + 12 = 17" are one path and "5 + 4 = 9, 9 * 3 = 27" another.

    >>> calculation_path("Step 1: 4 * 3 = 12. Step 2: 12 + 5 = 17. The answer is 17.", "4 boxes of 3 and 5 more")
    ('12', '17')
    """
    given = {normalise_number(n) for n in _ANY_NUMBER.findall(question)}
    text = _CALCULATOR.sub(r" \1 ", chain)
    text = _STEP_LABEL.sub(" ", text)
    path: list[str] = []
    for raw in _ANY_NUMBER.findall(text):
        number = normalise_number(raw)
        if number not in given and number not in path:
            path.append(number)
    return tuple(path)


def gsm8k_task(source: str, subset: int, seed: int = 0, *, name: str = "gsm8k") -> TaskSpec:
    """GSM8K problems as a verifiable task: the question, then the instruction to end with the answer."""
    items = load_gsm8k(source, subset, seed)
    return TaskSpec(
        name=name,
        prompts=[f"{item.question}\n\n{GSM8K_INSTRUCTION}" for item in items],
        references=[item.answer for item in items],
        answer_type="verifiable",
        reasoning=True,
        description=f"{len(items)} GSM8K problems from {source} (seed {seed}); final number vs reference",
    )
