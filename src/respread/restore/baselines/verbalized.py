"""Verbalized sampling (Zhang et al. 2025, "Verbalized Sampling: How to Mitigate Mode Collapse and Unlock LLM
Diversity"), VS-Standard: ask for k answers *with their probabilities* in one reply, then draw one answer from the
distribution the model stated. This module holds the prompt and the parser; it loads no model.

**What was taken from the authors' package** (PyPI `verbalized-sampling` 0.1.3, read, not installed or imported):

* The VS-Standard wording: "Generate {k} responses to the input prompt", "Randomly sample the responses from the
  full distribution.", the JSON shape `{"responses": [{"text": ..., "probability": ...}]}`, "'text': the
  response string only (no explanation or extra text)", the "explicit" probability definition used by its
  `verbalize()` API ("the estimated probability from 0.0 to 1.0 of this response given the input prompt
  (relative to the full distribution)") and "Return ONLY the JSON object, with no additional explanations or
  text." (`methods/prompt.py`, `BasePromptTemplate.get_format_prompt("vs_standard")`).
* From its parser (`methods/parser.py`, `ResponseParser._extract_json`): look inside ```json fences, cut to the
  outermost braces, drop trailing commas; and the renames `response` -> `text`, `confidence` -> `probability`.
* From its weight repair (`selection.py`, `repair_weight` / `postprocess_responses`): "70%" means 0.70;
  NaN/inf/non-numeric are invalid; stated weights are renormalised to sum to 1; sampling from the stated
  distribution with `random.Random(seed)`.

**Where this differs, and why:**

* One user turn instead of a system prompt plus the question as the user turn: small chat models (and chat
  templates without a system role) follow an instruction in the user turn more reliably. The question sits in
  `<question>` tags (as the package README's copy-paste prompt does with `<user_query>`), the "text" field is
  told to take the form the question asks for (our questions end "Reply with only the number."), and a
  one-line skeleton of the JSON is shown, since small models copy a shape better than they follow a
  description of one.
* The package's parser falls back to a single empty response when `json.loads` fails; this one reads
  malformed JSON with the `json-repair` package (single quotes, unquoted keys, missing or trailing commas,
  Python literals), truncated JSON (keeping complete items), JSON lines, the package README's
  `<response><text>..</text><probability>..</probability></response>` format, and bulleted/numbered lines,
  and reports *which* of these it had to do (`VerbalizedReply.status`, `.source`, `.truncated`,
  `.renormalised`) so a report can state the share of replies that did not follow the format.
* `repair_weight` clips values > 1 to 1 (so a bare 30 meaning 30% becomes 1.0) and gives a missing probability
  the weight 1.0, and invalid ones 0.0. Here bare numbers are read as percentages when the largest is in
  (1, 100], missing/invalid/negative probabilities are *missing*, and missing ones get a documented share
  (see `stated_distribution`). Duplicate texts are merged (the package keeps them as separate items).
* No tau filtering / `min_k_survivors` (the package's `verbalize()` default drops items with p < 0.12): the
  baseline is the paper's VS-Standard, which samples from the whole stated distribution.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import json_repair

STATUSES: tuple[str, ...] = ("ok", "missing_probabilities", "unparseable")
SOURCES: tuple[str, ...] = ("json", "xml", "lines", "none")
SUM_TOLERANCE = 0.01  # stated probabilities summing to within 1 ± this are not counted as renormalised

_TEXT_KEYS = ("text", "response", "answer", "value", "content", "output")
_PROB_KEYS = ("probability", "prob", "p", "confidence", "likelihood", "weight")
_LIST_KEYS = ("responses", "answers", "samples", "candidates", "options", "results")


def verbalized_prompt(question: str, k: int = 5) -> str:
    """The user-turn text for VS-Standard: `question` (stripped, inside `<question>` tags) and a request for
    `k` responses to it, each a JSON object with "text" (the bare answer, in the form the question asks for)
    and "probability" (0.0 to 1.0, relative to the full distribution), returned as ONLY the JSON object
    `{"responses": [...]}`. Raises ValueError if the question is blank or k < 1.

    >>> print(verbalized_prompt("Name a random color. Reply with only the color name.", k=3))
    Generate 3 responses to the question below, each with its probability. Randomly sample the responses from the full distribution.
    <BLANKLINE>
    <question>
    Name a random color. Reply with only the color name.
    </question>
    <BLANKLINE>
    Return the responses in JSON format with the key "responses" (a list of 3 objects). Each object must include:
    - "text": the response only, in exactly the form the question asks for (no explanation or extra text).
    - "probability": the estimated probability from 0.0 to 1.0 of this response given the question (relative to the full distribution).
    <BLANKLINE>
    Return ONLY the JSON object, with no additional explanations or text, like this:
    {"responses": [{"text": "...", "probability": ...}, ...]}
    """
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    noun = "response" if k == 1 else "responses"
    objects = "object" if k == 1 else "objects"
    return (
        f"Generate {k} {noun} to the question below, each with its probability. "
        "Randomly sample the responses from the full distribution.\n"
        "\n"
        f"<question>\n{question}\n</question>\n"
        "\n"
        f'Return the responses in JSON format with the key "responses" (a list of {k} {objects}). '
        "Each object must include:\n"
        '- "text": the response only, in exactly the form the question asks for '
        "(no explanation or extra text).\n"
        '- "probability": the estimated probability from 0.0 to 1.0 of this response given the question '
        "(relative to the full distribution).\n"
        "\n"
        "Return ONLY the JSON object, with no additional explanations or text, like this:\n"
        '{"responses": [{"text": "...", "probability": ...}, ...]}'
    )


@dataclass(frozen=True)
class VerbalizedReply:
    """One parsed reply.

    responses: (text, probability) in order of first appearance; text stripped but otherwise as written;
        probability is the stated value read as a fraction (percentages divided by 100), *before*
        renormalisation, or None when missing or unusable.
    status: "ok" (at least one response, every one with a probability), "missing_probabilities" (at least one
        response, some or all without a probability), or "unparseable" (no response found; `responses` empty).
    renormalised: the distribution of `stated_distribution` is not the stated numbers as they are: see there.
    source: where the responses came from: "json", "xml" (`<response>` tags), "lines" (list lines), "none".
    truncated: the JSON ended before its closing bracket (cut at max tokens); only complete items were kept.
    """

    responses: tuple[tuple[str, float | None], ...]
    status: str
    renormalised: bool = False
    source: str = "none"
    truncated: bool = False


def parse_verbalized(text: str) -> VerbalizedReply:
    """Parse a VS-Standard reply. The rules, in order:

    1. **Where.** JSON first: inside each ``` fence (a fence left open runs to the end), then in the whole
       reply, a value is read from each `{` or `[` in turn; the first that yields at least one response is
       used. If that value is a single response object, further single response objects after it are added
       (JSON lines). A value's span runs to its matching bracket (brackets in quoted strings do not count)
       and is read with `json_repair.loads`, which mends single quotes, unquoted keys and strings, trailing
       or missing commas, `None/True/False/NaN` and bare percentages (`30%` reads as 30: rule 3 then applies);
       a span opened by `{` must read as an object and one opened by `[` as a list, so prose such as
       "{text, probability}" is not JSON. **Truncation** (`truncated=True`): when the reply ends before the
       span closes, the span is cut back to the end of the last complete element of the innermost list
       still open, so a response cut anywhere before its closing bracket (text, probability or brace
       missing) is dropped whole and the complete ones before it are kept; with no list open, an object
       keeps its members before its last comma, and a cut JSON-lines object after the first is dropped.
       Failing JSON, `<response>` blocks holding `<text>` and `<probability>` tags. Failing those, lines: a
       line is a response if it starts with a list marker (`-`, `*`, `•`, `1.`, `1)`, `(1)`, `Response 1:`)
       or ends with a probability (`red: 0.3`, `blue - 25%`, `42 (probability: 0.2)`, `| red | 0.3 |`;
       without a marker the probability must carry `%`, a decimal point, a `/` or a label such as
       "probability", so that "numbers: 42, 17, 88" is not read as "numbers: 42, 17" with 88%); a
       probability after the text is split off, and lines of a total (`Total: 1.0`) are skipped. Anything
       else (prose, a bare "42", a comma list inside a sentence) gives "unparseable".
    2. **Which JSON shapes.** `{"responses": [...]}` (also `answers`, `samples`, `candidates`, `options`,
       `results`, or a dict's only list); a bare list; a single response object; `{"red": 0.3, ...}`
       (at least 2 entries, all values numbers) as text -> probability, also as the value of "responses".
       An item is an object (text from `text`/`response`/`answer`/`value`/`content`/`output`, else its only
       other key holding a string or number, e.g. `{"color": "red", ...}`; probability from
       `probability`/`prob`/`p`/`confidence`/`likelihood`/`weight`, keys case-insensitive), a
       `[text, probability]` pair, or a bare string or number (no probability).
    3. **Probabilities.** A number, or a string holding a number, `30%`/`30 percent` (divided by 100) or
       a fraction `1/5`. Numbers without `%` are percentages (all divided by 100) when the largest of them
       is above 1 and at most 100; above 100 they stay as they are (relative weights, renormalised later).
       Negative, NaN, infinite, boolean and non-numeric values are missing (None); the response stays.
    4. **Texts.** Stripped; empty ones, and ones of only dots (the prompt's "..." placeholder echoed back),
       are dropped with their probability. Texts equal after strip+casefold
       are merged into the first one's spelling, with the sum of the probabilities the copies have (None if
       none of them has one).
    5. **Status** as in `VerbalizedReply`; `renormalised` as in `stated_distribution`.

    >>> reply = parse_verbalized('Sure! ```json {"responses": [{"text": "Red", "probability": 30}, {"text": "Blue"')
    >>> reply.responses, reply.status, reply.renormalised, reply.source, reply.truncated
    ((('Red', 0.3),), 'ok', True, 'json', True)
    """
    raw, source, truncated = _extract_items(text or "")
    responses = _clean(raw)
    if not responses:
        return VerbalizedReply((), "unparseable", False, "none", False)
    status = "ok" if all(p is not None for _, p in responses) else "missing_probabilities"
    _, renormalised = _distribution(responses)
    return VerbalizedReply(responses, status, renormalised, source, truncated)


def stated_distribution(reply: VerbalizedReply) -> dict[str, float]:
    """Response text -> probability, in response order, summing to 1; `{}` if the reply has no responses.

    With S the sum of the stated probabilities present and m the number missing, out of n responses:

    * none missing: p / S each (uniform if S = 0); `renormalised` iff |S - 1| > SUM_TOLERANCE (or S = 0);
    * all missing: 1/n each; not `renormalised`;
    * some missing and S < 1 - SUM_TOLERANCE: stated ones unchanged, each missing one gets (1 - S)/m;
      not `renormalised`;
    * some missing and S >= 1 - SUM_TOLERANCE (nothing left to share): each missing one gets the mean of the
      stated ones, then all are divided by their sum; `renormalised`.

    A response stated with probability 0 keeps 0 (it is never picked).
    """
    weights, _ = _distribution(reply.responses)
    return {text: w for (text, _), w in zip(reply.responses, weights, strict=True)}


def pick_answer(reply: VerbalizedReply, seed: int) -> str | None:
    """One response text drawn from `stated_distribution(reply)`: u = random.Random(seed).random(), then the
    first response, in response order, whose cumulative probability exceeds u (the last one with positive
    probability if rounding leaves u above the total). Deterministic per seed; None if unparseable.
    """
    dist = stated_distribution(reply)
    if not dist:
        return None
    u = random.Random(seed).random()
    cumulative = 0.0
    last = None
    for text, p in dist.items():
        if p <= 0:
            continue
        cumulative += p
        last = text
        if u < cumulative:
            return text
    return last


def summarise_statuses(replies: Iterable[VerbalizedReply]) -> dict[str, float]:
    """Share of replies with each status, for every status in STATUSES (order kept, absent ones 0.0); the
    shares sum to 1, or are all 0.0 when there are no replies."""
    counts = dict.fromkeys(STATUSES, 0)
    for reply in replies:
        counts[reply.status] += 1
    total = sum(counts.values())
    return {status: (c / total if total else 0.0) for status, c in counts.items()}


# ------------------------------------------------------------------------------------------ distribution
def _distribution(responses: tuple[tuple[str, float | None], ...]) -> tuple[list[float], bool]:
    """The rule of `stated_distribution`: (weights summing to 1, renormalised)."""
    n = len(responses)
    if n == 0:
        return [], False
    stated = [p for _, p in responses if p is not None]
    missing = n - len(stated)
    total = sum(stated)
    if not stated:
        return [1.0 / n] * n, False
    if missing == 0:
        if total <= 0:
            return [1.0 / n] * n, True
        return [p / total for _, p in responses], abs(total - 1.0) > SUM_TOLERANCE
    if total < 1.0 - SUM_TOLERANCE:
        share = (1.0 - total) / missing
        return [share if p is None else p for _, p in responses], False
    fill = total / len(stated)
    raw = [fill if p is None else p for _, p in responses]
    norm = sum(raw)
    return [w / norm for w in raw], True


# ------------------------------------------------------------------------------------------ cleaning
_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_PERCENT_RE = re.compile(rf"~?\s*({_NUM})\s*(?:%|percent)", re.IGNORECASE)
_FRACTION_RE = re.compile(r"(\d+)\s*/\s*(\d+)")
_PLAIN_RE = re.compile(rf"~?\s*({_NUM})")
_PLACEHOLDER_RE = re.compile(r"[.…]+")  # the prompt skeleton's "..." echoed back


def _read_probability(raw: Any) -> tuple[float | None, bool]:
    """(value, bare): value None if unusable; bare means a number without % (subject to the percent rule)."""
    if isinstance(raw, bool) or raw is None:
        return None, False
    if isinstance(raw, (int, float)):
        return float(raw), True
    if not isinstance(raw, str):
        return None, False
    s = raw.strip()
    if m := _PERCENT_RE.fullmatch(s):
        return float(m.group(1)) / 100.0, False
    if m := _FRACTION_RE.fullmatch(s):
        den = int(m.group(2))
        return (int(m.group(1)) / den, False) if den else (None, False)
    if m := _PLAIN_RE.fullmatch(s):
        return float(m.group(1)), True
    return None, False


def _text_of(raw: Any) -> str | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, str):
        return "" if _PLACEHOLDER_RE.fullmatch(raw.strip()) else raw.strip()
    if isinstance(raw, (int, float)):
        return str(raw)
    return None


def _clean(items: list[tuple[Any, Any]]) -> tuple[tuple[str, float | None], ...]:
    """Rules 3 and 4 of `parse_verbalized`."""
    read = [(_text_of(t), *_read_probability(p)) for t, p in items]
    bare = [v for _, v, is_bare in read if is_bare and v is not None and math.isfinite(v) and v >= 0]
    percent = bool(bare) and 1.0 < max(bare) <= 100.0
    merged: dict[str, list] = {}  # casefolded text -> [text as first written, summed probability or None]
    for text, value, is_bare in read:
        if not text:
            continue
        if value is not None and is_bare and percent:
            value /= 100.0
        if value is not None and (not math.isfinite(value) or value < 0):
            value = None
        key = text.casefold()
        if key not in merged:
            merged[key] = [text, value]
        elif value is not None:
            merged[key][1] = value if merged[key][1] is None else merged[key][1] + value
    return tuple((t, p) for t, p in merged.values())


# ------------------------------------------------------------------------------------------ extraction
def _extract_items(text: str) -> tuple[list[tuple[Any, Any]], str, bool]:
    """(raw (text, probability) items, source, truncated): rule 1 of `parse_verbalized`."""
    fences = [m.group(1) for m in re.finditer(r"```[A-Za-z0-9_+-]*\n?(.*?)(?:```|\Z)", text, re.DOTALL)]
    for region in [*fences, text]:
        items, truncated = _items_from_json_text(region)
        if any(_text_of(t) for t, _ in items):
            return items, "json", truncated
    items = _items_from_xml(text)
    if any(_text_of(t) for t, _ in items):
        return items, "xml", False
    items = _items_from_lines(text)
    if any(_text_of(t) for t, _ in items):
        return items, "lines", False
    return [], "none", False


def _items_from_json_text(region: str) -> tuple[list[tuple[Any, Any]], bool]:
    for start in (i for i, c in enumerate(region) if c in "{["):
        span, end, truncated = _json_span(region, start)
        value = _load(span)
        items = _items_from_value(value)
        if not any(_text_of(t) for t, _ in items):
            continue
        if isinstance(value, dict) and _is_item(value):  # JSON lines: further single objects follow
            while not truncated and (nxt := region.find("{", end)) != -1:
                span, end, truncated = _json_span(region, nxt)
                more = _load(span)
                if truncated or not (isinstance(more, dict) and _is_item(more)):
                    break  # a cut object is dropped whole
                items.extend(_items_from_value(more))
        return items, truncated
    return [], False


def _json_span(s: str, start: int) -> tuple[str, int, bool]:
    """(span, end, truncated) of the value opening at s[start], cut as rule 1 of `parse_verbalized` says. A `'`
    opens a string only where a key or value starts (so an apostrophe in an unquoted word does not)."""
    stack: list[list] = []  # [opening bracket, end of its last complete member]
    quote, prev, i = "", "", start
    while i < len(s):
        c = s[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
                if stack[-1][0] == "[":
                    stack[-1][1] = i + 1
        elif c == '"' or (c == "'" and prev in "{[,:"):
            quote = c
        elif c in "{[":
            stack.append([c, i + 1])
        elif c in "}]":
            stack.pop()
            if not stack:
                return s[start:i + 1], i + 1, False
            stack[-1][1] = i + 1
        elif c == ",":
            stack[-1][1] = i
        if not c.isspace():
            prev = c
        i += 1
    innermost = next((entry for entry in reversed(stack) if entry[0] == "["), stack[-1])
    return s[start:innermost[1]], len(s), True


def _load(span: str) -> Any:
    """The value json-repair reads from `span`, or None unless `{...}` reads as an object and `[...]` as a
    list (json-repair turns prose such as "{text, probability}" into a list of strings)."""
    try:
        value = json_repair.loads(span)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict if span.startswith("{") else list) else None


def _lower_keys(d: dict) -> dict:
    return {str(k).strip().casefold(): v for k, v in d.items()}


def _first(d: dict, keys: tuple[str, ...]) -> tuple[bool, Any]:
    for k in keys:
        if k in d:
            return True, d[k]
    return False, None


def _is_item(d: dict) -> bool:
    low = _lower_keys(d)
    return _first(low, _TEXT_KEYS)[0] or _first(low, _PROB_KEYS)[0]


def _is_number_like(v: Any) -> bool:
    return _read_probability(v)[0] is not None


def _items_from_value(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, list):
        return [it for v in value if (it := _item(v)) is not None]
    if not isinstance(value, dict):
        return []
    low = _lower_keys(value)
    found, inner = _first(low, _LIST_KEYS)
    if found:
        if isinstance(inner, dict):
            return _mapping_items(inner) or ([it] if (it := _item(inner)) else [])
        return _items_from_value(inner) if isinstance(inner, list) else []
    if _is_item(value):
        it = _item(value)
        return [it] if it is not None else []
    lists = [v for v in value.values() if isinstance(v, list)]
    if len(lists) == 1:
        return _items_from_value(lists[0])
    return _mapping_items(value)


def _mapping_items(d: dict) -> list[tuple[Any, Any]]:
    if len(d) >= 2 and all(_is_number_like(v) for v in d.values()):
        return [(str(k), v) for k, v in d.items()]
    return []


def _item(v: Any) -> tuple[Any, Any] | None:
    if isinstance(v, dict):
        low = _lower_keys(v)
        has_prob, prob = _first(low, _PROB_KEYS)
        has_text, text = _first(low, _TEXT_KEYS)
        if not has_text:
            others = [x for k, x in low.items() if k not in _PROB_KEYS and _text_of(x) is not None]
            if len(others) != 1:
                return None
            text = others[0]
        return text, (prob if has_prob else None)
    if isinstance(v, list) and len(v) == 2 and _text_of(v[0]) is not None:
        return v[0], v[1]
    if _text_of(v) is not None:
        return v, None
    return None


_XML_RESPONSE_RE = re.compile(r"<response>(.*?)</response>", re.DOTALL | re.IGNORECASE)
_XML_TEXT_RE = re.compile(r"<text>(.*?)</text>", re.DOTALL | re.IGNORECASE)
_XML_PROB_RE = re.compile(r"<probability>(.*?)</probability>", re.DOTALL | re.IGNORECASE)


def _items_from_xml(text: str) -> list[tuple[Any, Any]]:
    items = []
    for block in _XML_RESPONSE_RE.findall(text):
        t = _XML_TEXT_RE.search(block)
        p = _XML_PROB_RE.search(block)
        if t:
            items.append((t.group(1), p.group(1) if p else None))
    return items


_MARKER_RE = re.compile(
    r"^(?:[-*•+]\s+|\(?\d{1,3}[.)]\s+|\(\d{1,3}\)\s*|(?:response|answer|option)\s*#?\d{1,3}\s*[:.)-]\s*)",
    re.IGNORECASE,
)
_PROB_TOKEN = rf"(?:{_NUM}\s*(?:%|percent)?|\d+\s*/\s*\d+)"
_LABEL = r"(?:probability|prob\.?|p|likelihood|confidence|chance)"
_PAREN_RE = re.compile(
    rf"^(?P<text>.*?)\s*[(\[]\s*(?P<label>{_LABEL}\s*[:=]?\s*)?(?P<prob>{_PROB_TOKEN})\s*[)\]]\s*[.,;]?$", re.IGNORECASE
)
_SEP_RE = re.compile(
    rf"^(?P<text>.*?)\s*(?:[:=|,;]|\s[-–—]+|->|→|\swith(?:\s+a)?)\s*(?P<label>{_LABEL}\s*[:=]?\s*)?"
    rf"(?P<prob>{_PROB_TOKEN})\s*[.,;]?$",
    re.IGNORECASE,
)
_LABEL_PREFIX_RE = re.compile(r"^(?:text|response|answer)\s*[:=]\s*", re.IGNORECASE)
_TOTAL_RE = re.compile(r"^(?:total|sum)\b", re.IGNORECASE)


def _items_from_lines(text: str) -> list[tuple[Any, Any]]:
    items = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|") and len(line) > 1:  # markdown table row
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) >= 2 and re.fullmatch(_PROB_TOKEN, cells[-1]) and not _TOTAL_RE.match(cells[0]):
                items.append((cells[0], cells[-1]))
            continue
        marker = _MARKER_RE.match(line)
        body = line[marker.end():].strip() if marker else line
        m = _PAREN_RE.match(body) or _SEP_RE.match(body)
        if m and not marker and not (m.group("label") or re.search(r"[%./]|percent", m.group("prob"), re.IGNORECASE)):
            m = None  # an unmarked line ending in a bare integer is prose ("numbers: 42, 17, 88")
        if m:
            item_text = _LABEL_PREFIX_RE.sub("", m.group("text")).strip()
            if item_text and not _TOTAL_RE.match(item_text):
                items.append((item_text, m.group("prob")))
            continue
        if marker and body:
            items.append((_LABEL_PREFIX_RE.sub("", body), None))
    return items
