"""Task specs: what a task asks, what counts as a valid answer, and how replies are normalised.

Built-in tasks and user YAML files produce the same `TaskSpec`, validated by pydantic, so a malformed
file fails with the field and the problem named.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from respread.types import Prompt

NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


REQUEST_ID = "{request_id}"


def request_id(seed: int, namespace: str, task: str, template: int, index: int) -> str:
    """A version-4 UUID that is a function of its arguments, so a rerun asks exactly the same prompts.

    >>> request_id(0, "eval", "listed_color", 0, 0) == request_id(0, "eval", "listed_color", 0, 0)
    True
    >>> request_id(0, "eval", "listed_color", 0, 0) != request_id(1, "eval", "listed_color", 0, 0)
    True
    """
    digest = hashlib.sha256(f"{seed}|{namespace}|{task}|{template}|{index}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def answer_key(text: str) -> str:
    """What spellings of one answer share: case-folded, spaces and hyphens dropped (`Light-Blue` = `lightblue`)."""
    return re.sub(r"[\s\-]+", "", text.casefold())


class TaskSpec(BaseModel):
    """One task: a categorical "random choice" task or a set of free-text prompts.

    `answer_type` picks the parser family: `integer` answers in [low, high] (or only those listed in
    `valid`: "a prime below 50"); `choice` answers from a list (`valid` inline, or `valid_source` naming a
    built-in list such as `css_colors`, `english_words`, optionally filtered by the regex `valid_pattern`);
    `text` is open-ended: replies are judged by text-diversity metrics, and `quality` says which replies
    pass (`finished`: non-empty and ended by end-of-turn, not cut at max_new_tokens; `nonempty`);
    `verifiable` has one right answer per prompt (`references`, e.g. GSM8K's final numbers, compared as
    numbers when `answer_kind` is `number`), and replies may reason before it.
    `closed: true` says the list is the whole answer set, which enables exact scoring. `exact_forms` are
    the surface forms exact mode scores for each answer (each followed by end-of-turn), as templates with
    `{answer}` (canonical), `{Answer}` (capitalised) or `{ANSWER}`.
    `request_ids: N` makes each prompt a template holding `{request_id}`: the task is asked N times per
    template, each time with its own id drawn from the run's seed (`instantiate`); `kind` is the noun a
    listed prompt names (`respread.tasks.listed`).
    `reasoning: true` says replies may think before answering, so the parser reads the final answer (after
    the last "Answer:", else the last answer-like span) instead of the whole reply; `thinking` sets the
    chat template's thinking switch (`enable_thinking`) where the model's template has one.
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # `valid: [2, 3, 5]` in YAML

    name: str = Field(pattern=NAME_PATTERN)
    prompts: list[str] = Field(min_length=1)
    answer_type: Literal["integer", "choice", "text", "verifiable"]
    low: int | None = None
    high: int | None = None
    valid: list[str] | None = None
    valid_source: str | None = None
    valid_pattern: str | None = None
    references: list[str] | None = None
    answer_kind: Literal["number", "text"] = "number"
    aliases: dict[str, str] = Field(default_factory=dict)
    closed: bool = False
    plurals: bool = True
    exact_forms: list[str] | None = None
    system: str | None = None
    prefill: str = ""
    few_shot: list[tuple[str, str]] = Field(default_factory=list)
    max_new_tokens: int = Field(default=16, ge=1, le=4096)
    quality: Literal["finished", "nonempty"] = "finished"
    reasoning: bool = False
    thinking: bool | None = None
    kind: str | None = None
    request_ids: int = Field(default=0, ge=0, le=100_000)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _single_prompt(cls, data):
        if isinstance(data, dict) and "prompt" in data:
            if "prompts" in data:
                raise ValueError("give either 'prompt' or 'prompts', not both")
            data = dict(data)
            prompt = data.pop("prompt")
            data["prompts"] = [prompt] if isinstance(prompt, str) else prompt
        if isinstance(data, dict) and "max_new_tokens" not in data:
            # Free text and worked solutions need room; a bare answer does not.
            if data.get("answer_type") == "text":
                data = dict(data) | {"max_new_tokens": 128}
            elif data.get("answer_type") == "verifiable" or data.get("reasoning"):
                data = dict(data) | {"max_new_tokens": 256}
        return data

    @field_validator("prompts")
    @classmethod
    def _non_empty_prompts(cls, prompts: list[str]) -> list[str]:
        for i, p in enumerate(prompts):
            if not p.strip():
                raise ValueError(f"prompt {i} is empty")
        return prompts

    @field_validator("valid")
    @classmethod
    def _non_empty_valid(cls, valid: list[str] | None) -> list[str] | None:
        if valid is not None:
            if not valid:
                raise ValueError("must be a non-empty list")
            blanks = [i for i, v in enumerate(valid) if not str(v).strip()]
            if blanks:
                raise ValueError(f"entry {blanks[0]} is empty")
        return valid

    @field_validator("valid_pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from exc
        return pattern

    @field_validator("exact_forms")
    @classmethod
    def _forms_have_answer(cls, forms: list[str] | None) -> list[str] | None:
        for form in forms or []:
            if not any(slot in form for slot in ("{answer}", "{Answer}", "{ANSWER}")):
                raise ValueError(f"form {form!r} has no {{answer}} slot")
        return forms

    @model_validator(mode="after")
    def _consistent(self) -> "TaskSpec":
        if self.answer_type == "integer":
            if self.low is None or self.high is None:
                raise ValueError("an integer task needs 'low' and 'high'")
            if self.low >= self.high:
                raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
            if self.high - self.low >= 1_000_000:
                raise ValueError("the integer range is too wide (at most 1,000,000 values)")
            if self.valid_source or self.valid_pattern:
                raise ValueError("an integer task takes 'low'/'high' (and optionally 'valid'), not 'valid_source'/'valid_pattern'")
            for entry in self.valid or []:
                if not re.fullmatch(r"[+-]?\d+", str(entry).strip()) or not self.low <= int(entry) <= self.high:
                    raise ValueError(f"'valid' entry {entry!r} is not an integer in [{self.low}, {self.high}]")
        elif self.answer_type in ("text", "verifiable"):
            kind = self.answer_type
            if self.valid or self.valid_source or self.low is not None or self.high is not None or self.closed:
                raise ValueError(f"a {kind} task takes no 'valid'/'valid_source'/'low'/'high'/'closed'")
            if kind == "verifiable" and (self.references is None or len(self.references) != len(self.prompts)):
                raise ValueError("a verifiable task needs 'references': one right answer per prompt")
            if kind == "verifiable" and self.answer_kind == "number":
                bad = [r for r in self.references if not _NUMBER.fullmatch(str(r).replace(",", "").strip())]
                if bad:
                    raise ValueError(f"reference {bad[0]!r} is not a number (set answer_kind: text for other answers)")
        else:
            if (self.valid is None) == (self.valid_source is None):
                raise ValueError("a choice task needs exactly one of 'valid' (a list) or 'valid_source' (a list name)")
            if self.low is not None or self.high is not None:
                raise ValueError("'low'/'high' are for integer tasks")
            if self.closed and self.valid is None:
                raise ValueError("'closed: true' needs the answer set inline in 'valid'")
        if self.references is not None and self.answer_type != "verifiable":
            raise ValueError("'references' are for verifiable tasks")
        if self.request_ids:
            missing = [i for i, p in enumerate(self.prompts) if REQUEST_ID not in p]
            if missing:
                raise ValueError(f"'request_ids' is set, but prompt {missing[0]} has no {REQUEST_ID} slot")
        self._no_repeated_answers()
        return self

    def _no_repeated_answers(self) -> None:
        """Entries of `valid` that parse as one answer (`red`/`Red`, `5`/`05`, an alias and its target) are refused."""
        if not self.valid:
            return
        if self.answer_type == "integer":
            keys = [str(int(entry)) for entry in self.valid]
        else:
            keys = [answer_key(str(entry).strip()) for entry in self.valid]
            aliases = {answer_key(alias): answer_key(target) for alias, target in self.aliases.items()}
            keys = [aliases[k] if aliases.get(k) in keys else k for k in keys]  # as the parser folds them
        first: dict[str, str] = {}
        repeats: dict[str, None] = {}
        for entry, key in zip(self.valid, keys):
            if key not in first:
                first[key] = entry
            else:
                earlier = first[key]
                repeats[repr(entry) if entry == earlier else f"{entry!r} (same answer as {earlier!r})"] = None
        if repeats:
            raise ValueError(f"field 'valid' repeats {', '.join(repeats)}; remove the repeats")

    @property
    def is_closed(self) -> bool:
        return self.answer_type == "integer" or self.closed

    @property
    def exact_scorable(self) -> bool:
        """Exact mode scores answers right after the prompt, so it needs a closed set and no reasoning first."""
        return self.is_closed and not self.reasoning

    @property
    def is_categorical(self) -> bool:
        """One answer from a known set (integer or choice): the figures of `metrics.categorical` apply."""
        return self.answer_type in ("integer", "choice")

    def instantiate(self, seed: int, count: int | None = None, namespace: str = "eval") -> "TaskSpec":
        """The task with every `{request_id}` filled: `count` (default `request_ids`) prompts per template,
        ids drawn from (seed, namespace, task, template, index). Tasks without request ids come back as they are.
        """
        if not self.request_ids:
            return self
        count = self.request_ids if count is None else count
        prompts = [
            template.replace(REQUEST_ID, request_id(seed, namespace, self.name, t, i))
            for t, template in enumerate(self.prompts)
            for i in range(count)
        ]
        return self.model_copy(update={"prompts": prompts, "request_ids": 0})

    def prompt(self, index: int = 0) -> Prompt:
        return Prompt(
            user=self.prompts[index],
            system=self.system,
            prefill=self.prefill,
            few_shot=tuple(tuple(pair) for pair in self.few_shot),
            thinking=self.thinking,
        )
