"""Where a reply states its answer: answer markers, the final segment of a reasoning reply, and numbers as
replies write them (extraction, normalisation, comparison). Shared by parsing and by verifiable tasks.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# "Answer:", "the answer is", "**Answer**:"; `tasks.verifiable` reads numbers after the same markers.
ANSWER_MARKER = r"\banswer\**\s*(?:is\b|:)\s*:?"
_ANSWER_MARKER = re.compile(ANSWER_MARKER, re.IGNORECASE)


def final_segment(text: str) -> tuple[str, bool]:
    """The part of a reasoning reply that holds its answer, and whether an answer marker introduced it.

    >>> final_segment("Primes are 2, 3, 5. Answer: 7\\nThat is all.")
    ('7', True)
    >>> final_segment("<think>maybe 4</think>Blue")
    ('Blue', False)
    """
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    markers = list(_ANSWER_MARKER.finditer(text))
    if not markers:
        return text, False
    return text[markers[-1].end():].split("\n", 1)[0], True


# A number as written in a reply: optional sign (a '-' right after a word or digit is a hyphen or a
# subtraction, not a sign), thousands separated by commas or plain digits, optional decimals.
_NUMBER = r"(?:(?<![\w.])-)?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
_AFTER_HASHES = re.compile(r"####\s*\$?\s*(" + _NUMBER + ")")
# "The answer is $18.", "**Answer**: 42", "the final answer is: -3", "\\boxed{18}": a marker, then the number
# directly (markup aside), ending the expression, so "the answer is 3 + 4 = 7" states no number there.
# The lookahead also stops the number from matching only a prefix of itself ("3" of "3.5 + 1", "1" of
# "1,250") while a comma that ends a clause ("18, which is ...") still ends the number.
_NUMBER_MARKER = re.compile(ANSWER_MARKER + r"|\\boxed\{", re.IGNORECASE)
_MARKED_NUMBER = re.compile(
    r"\s*[*$\\({\s]*(" + _NUMBER + r")(?!\d|,\d|\.\d|\s*[-+*/×÷=xX·]\s*\d)"
)
_ANY_NUMBER = re.compile("(" + _NUMBER + ")")


def extract_final_number(text: str) -> str | None:
    """The final numeric answer of a free-text GSM8K reply, normalised; None when the reply has no number.

    Precedence: the answer the reply states (`extract_marked_number`); else the last number in the text.
    Normalisation: commas and `$` dropped, trailing zeros of decimals dropped ("7.0" -> "7", "2.50" -> "2.5"),
    sign kept.

    >>> extract_final_number("16 - 3 - 4 = 9 eggs, 9 * 2 = 18\\n#### 1,234")
    '1234'
    >>> extract_final_number("So she makes $18 a day. The answer is $18.")
    '18'
    >>> extract_final_number("The temperature fell to -3 degrees.")
    '-3'
    >>> extract_final_number("Each costs 2.50, so 3 cost 7.50 and the answer is 7.0")
    '7'
    >>> extract_final_number("I don't know.") is None
    True
    """
    marked = extract_marked_number(text)
    if marked is not None:
        return marked
    numbers = _ANY_NUMBER.findall(text)
    return normalise_number(numbers[-1]) if numbers else None


def normalise_number(number: str) -> str:
    value = Decimal(number.replace(",", "").replace("$", ""))
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def same_number(a: str | None, b: str) -> bool:
    return a is not None and Decimal(a) == Decimal(b)


def extract_marked_number(text: str) -> str | None:
    """The answer a reply states explicitly: after the last `####`; else right after the last answer
    marker ("answer is", "answer:", "**Answer**:", `\\boxed{`), None if no number ends the expression
    there; else a reply that is only a number. The strict reading: it never guesses from a stray number.

    >>> extract_marked_number("9 * 2 = 18 dollars. The answer is 18, which is 3 more than 15.")
    '18'
    >>> extract_marked_number("The answer is 5. Recheck: so the answer is 2 + 4 = 6.") is None
    True
    >>> extract_marked_number(" 1,250 ")
    '1250'
    >>> extract_marked_number("She has 9 * 2 = 18 dollars.") is None
    True
    """
    hashes = _AFTER_HASHES.findall(text)
    if hashes:
        return normalise_number(hashes[-1])
    markers = list(_NUMBER_MARKER.finditer(text))
    if markers:
        match = _MARKED_NUMBER.match(text, markers[-1].end())
        return normalise_number(match.group(1)) if match else None
    bare = text.strip().strip("$*`").strip().rstrip(".").strip()
    return normalise_number(bare) if re.fullmatch(_NUMBER, bare) else None


def same_answer(found: str | None, reference: str, kind: str) -> bool:
    if found is None:
        return False
    if kind == "number":
        try:
            return Decimal(found) == Decimal(reference.replace(",", ""))
        except InvalidOperation:
            return False
    return " ".join(found.split()).casefold() == " ".join(reference.split()).casefold()
