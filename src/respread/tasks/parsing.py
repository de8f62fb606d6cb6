"""Turn a raw reply into a canonical answer, and decide whether it is valid.

Two modes, because parsing decides validity and the choice moves the headline numbers a lot:

* **strict** (default): after trimming whitespace, wrapping quotes/backticks/markdown emphasis and one
  trailing `.`/`!`, the reply *is* one answer: `42`, `"Blue."`, `**hearts**`. A sentence around the
  answer makes it invalid. This is what "reply with only the answer" asked for.
* **lenient**: strict first; otherwise the first answer-looking span anywhere in the reply: for integers
  the first number (so the numbered list "1. Pick ..." reads as 1, which is why lenient is reported
  beside strict and never instead of it); for choices the first word span (up to 3 words, or an emoji)
  that is a valid answer ("My favourite colour is blue!" -> blue).

Tasks with `reasoning: true` (a chain of thought before the answer) are read from the end instead:
strict takes the text after the last "Answer:" / "answer is" (or a reply that is only the answer) and
needs it to be exactly one answer; lenient takes the first answer-like span after that marker, or,
without one, the *last* answer-like span of the reply. A `<think>...</think>` block is skipped.
Verifiable tasks compare the answer read this way with the prompt's reference (`tasks.verifiable`), so
for them `valid` means correct.

Canonicalisation (both modes): case-folded, inner whitespace collapsed, hyphens/spaces ignored when
matching (`light-blue` = `lightblue`), aliases applied (`♥` -> hearts, `grey` -> gray), singular/plural
folded to whichever form the valid list holds (`apples` -> apple, `heart` -> hearts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

from respread.errors import RespreadError
from respread.tasks.answers import ANSWER_MARKER, extract_final_number, extract_marked_number, final_segment, same_answer  # noqa: F401
from respread.tasks.spec import TaskSpec, answer_key as _squash
from respread.tasks.valid_sets import load_valid_set

ParseMode = Literal["strict", "lenient"]
PARSE_MODES: tuple[str, ...] = ("strict", "lenient")

_WRAPPERS = "\"'`*_“”‘’«»"
_INTEGER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)


@dataclass(frozen=True)
class Parsed:
    answer: str | None  # canonical answer, or the normalised reply when it is not a valid one; None: no answer
    valid: bool  # a valid answer; for a verifiable task, the right one


def strip_reply(text: str) -> str:
    """Trim whitespace, wrapping quotes/emphasis and one trailing '.'/'!' from a reply.

    >>> strip_reply('  **"Blue."** ')
    'Blue'
    >>> strip_reply("42!\\n")
    '42'
    """
    text = text.replace("\ufe0f", "").strip()
    previous = None
    while text != previous:
        previous = text
        text = text.strip().strip(_WRAPPERS).strip()
        if text[-1:] in (".", "!"):
            text = text[:-1]
    return " ".join(text.split())


@lru_cache(maxsize=64)
def _singular_plural(word: str) -> tuple[str, ...]:
    engine = _inflect_engine()
    forms = []
    singular = engine.singular_noun(word)
    if singular:
        forms.append(singular)
    try:
        forms.append(engine.plural_noun(word))
    except Exception:  # noqa: BLE001 - inflect rejects some inputs; no plural then
        pass
    return tuple(forms)


@lru_cache(maxsize=1)
def _inflect_engine():
    from respread._compat import import_inflect

    return import_inflect()


class AnswerParser:
    """Parser, canonicaliser and validity rule for one task."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec

    @cached_property
    def support(self) -> tuple[str, ...]:
        """Every valid canonical answer (the set a uniform sampler would draw from)."""
        if self.spec.answer_type == "integer":
            if self.spec.valid:
                return tuple(str(v) for v in sorted({int(v) for v in self.spec.valid}))
            return tuple(str(v) for v in range(self.spec.low, self.spec.high + 1))
        if self.spec.answer_type == "verifiable":
            return ()
        answers = self.spec.valid if self.spec.valid is not None else load_valid_set(self.spec.valid_source)
        if self.spec.valid_pattern:
            pattern = re.compile(self.spec.valid_pattern)
            answers = [a for a in answers if pattern.search(str(a).strip())]
            if not answers:
                raise RespreadError(f"task '{self.spec.name}': no answer of its list matches valid_pattern {self.spec.valid_pattern!r}")
        # Spellings that differ only by spaces/hyphens/case ("dragon fruit", "dragonfruit") are one answer.
        unique: dict[str, str] = {}
        for answer in answers:
            unique.setdefault(_squash(str(answer).strip()), str(answer).strip())
        return tuple(unique.values())

    @cached_property
    def _lookup(self) -> dict[str, str]:
        table = {_squash(answer): answer for answer in self.support}
        for alias, target in self.spec.aliases.items():
            canonical = table.get(_squash(target))
            if canonical is not None:
                table[_squash(alias)] = canonical
        return table

    @cached_property
    def _max_words(self) -> int:
        return max(len(a.split()) for a in self.support) if self.spec.answer_type == "choice" else 1

    def canonical(self, candidate: str) -> str | None:
        """The valid answer `candidate` denotes, or None."""
        key = _squash(candidate)
        if not key:
            return None
        if key in self._lookup:
            return self._lookup[key]
        # inflect's singular and plural of a noun begin with its first letter (mouse/mice, goose/geese), so a
        # word no answer begins like cannot match; skipping it spares the 2 s inflect import on junk replies.
        if self.spec.plurals and candidate.isascii() and candidate.replace(" ", "").isalpha() and key[:1] in self._initials:
            for form in _singular_plural(candidate.casefold()):
                if _squash(form) in self._lookup:
                    return self._lookup[_squash(form)]
        return None

    @cached_property
    def _initials(self) -> frozenset[str]:
        return frozenset(k[:1] for k in self._lookup)

    @cached_property
    def _support_set(self) -> frozenset[str]:
        return frozenset(self.support)

    def parse(self, text: str, mode: ParseMode = "strict", prompt_index: int = 0) -> Parsed:
        """The answer in `text`; `prompt_index` picks the reference of a verifiable task."""
        if self.spec.answer_type == "verifiable":
            return self._parse_verifiable(text, mode, prompt_index)
        last = False
        if self.spec.reasoning:
            text, marked = final_segment(text)
            last = not marked  # no marker: the answer is the last thing the reply names
        if self.spec.answer_type == "integer":
            return self._parse_integer(text, mode, last)
        return self._parse_choice(text, mode, last)

    def _parse_verifiable(self, text: str, mode: ParseMode, prompt_index: int) -> Parsed:

        if "</think>" in text:
            text = text.rsplit("</think>", 1)[1]
        if self.spec.answer_kind == "number":
            found = extract_marked_number(text) if mode == "strict" else extract_final_number(text)
        else:
            segment, marked = final_segment(text)
            found = strip_reply(segment) if marked or mode == "lenient" or "\n" not in text.strip() else None
            found = found or None
        return Parsed(found, same_answer(found, self.spec.references[prompt_index], self.spec.answer_kind))

    def _parse_integer(self, text: str, mode: ParseMode, last: bool = False) -> Parsed:
        reply = strip_reply(text)
        match = _INTEGER.fullmatch(reply)
        if match is None and mode == "lenient":
            matches = list(_INTEGER.finditer(text))
            match = (matches[-1] if last else matches[0]) if matches else None
        if match is None:
            return Parsed(None, False)
        value = str(int(match.group().replace(",", "")))
        return Parsed(value, value in self._support_set)

    def _parse_choice(self, text: str, mode: ParseMode, last: bool = False) -> Parsed:
        reply = strip_reply(text)
        if not reply:
            return Parsed(None, False)
        canonical = self.canonical(reply)
        if canonical is not None:
            return Parsed(canonical, True)
        if mode == "lenient":
            found = self._answers_in(text, first_only=not last)
            if found:
                return Parsed(found[-1] if last else found[0], True)
        # Short replies are kept (normalised) so invalid answers can still be inspected and counted.
        return Parsed(reply.casefold() if len(reply) <= 40 else None, False)

    def _answers_in(self, text: str, first_only: bool = False) -> list[str]:
        """Valid answers named in `text`, in order (at one position, the longest span wins)."""
        import emoji

        # (start, -width, end, phrase): at one position the longest span comes first
        spans: list[tuple[int, int, int, str]] = [
            (e["match_start"], 0, e["match_end"], e["emoji"]) for e in emoji.emoji_list(text)
        ]
        words = list(_WORD.finditer(text))
        for i in range(len(words)):
            for width in range(min(self._max_words, len(words) - i), 0, -1):
                phrase = " ".join(w.group() for w in words[i : i + width])
                spans.append((words[i].start(), -width, words[i + width - 1].end(), phrase))
        found: list[str] = []
        taken_until = -1
        for start, _, end, candidate in sorted(spans):
            if start < taken_until:
                continue  # inside an answer already found ("blue" of "light blue")
            canonical = self.canonical(candidate)
            if canonical is not None:
                found.append(canonical)
                if first_only:
                    break
                taken_until = end
        return found

    def exact_forms(self) -> list[str]:
        """Surface-form templates exact mode scores (each followed by the end-of-turn marker)."""
        if self.spec.exact_forms:
            return list(self.spec.exact_forms)
        if self.spec.answer_type == "integer":
            return ["{answer}"]
        return ["{answer}", "{Answer}"]

    def surface_forms(self, answer: str) -> list[str]:
        """Distinct strings exact mode scores for `answer`."""
        fills = {"answer": answer, "Answer": answer[:1].upper() + answer[1:], "ANSWER": answer.upper()}
        return list(dict.fromkeys(form.format(**fills) for form in self.exact_forms()))
