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

import random
from collections.abc import Iterable
from dataclasses import dataclass

from respread.restore.baselines.verbalized_parse import _clean, _extract_items

STATUSES: tuple[str, ...] = ("ok", "missing_probabilities", "unparseable")
SOURCES: tuple[str, ...] = ("json", "xml", "lines", "none")
SUM_TOLERANCE = 0.01  # stated probabilities summing to within 1 ± this are not counted as renormalised



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
