"""Reading a verbalized-sampling reply: probabilities in any form a model writes them, and the list of responses
out of JSON (repaired), XML or plain lines. The rules and why they are what they are: `verbalized`."""

from __future__ import annotations

import math
import re
from typing import Any

import json_repair

_TEXT_KEYS = ("text", "response", "answer", "value", "content", "output")
_PROB_KEYS = ("probability", "prob", "p", "confidence", "likelihood", "weight")
_LIST_KEYS = ("responses", "answers", "samples", "candidates", "options", "results")

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
