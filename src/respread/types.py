"""The values every layer passes around: what a model is asked (`Prompt`, `SamplingParams`), what it answers
(`Completion`), the engine interface (`Backend`), and a figure with its uncertainty (`Estimate`).

Nothing here imports the rest of respread, so every layer can use these without pointing up.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

from respread.errors import RespreadError


@dataclass(frozen=True)
class Prompt:
    """What the model is asked: one user turn, optionally preceded by a system prompt and few-shot turns.

    `prefill` is text the assistant's reply is forced to start with; it is not part of the completion.
    `thinking` sets the chat template's `enable_thinking` switch (None: the template's default).
    """

    user: str
    system: str | None = None
    prefill: str = ""
    few_shot: tuple[tuple[str, str], ...] = ()  # (user, assistant) pairs before the real question
    thinking: bool | None = None


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings. Defaults are the model's own distribution: no top-k/top-p/min-p truncation.

    transformers' `generate` silently applies top_k=50 unless told otherwise; respread never truncates
    unless asked, because truncation is itself a diversity intervention.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    max_new_tokens: int = 32
    stop: tuple[str, ...] = field(default=())
    # (token id, bias) pairs added to the raw logits before any warping, as OpenAI-style `logit_bias`
    # and transformers' logits processors do (processors run before temperature and truncation).
    logit_bias: tuple[tuple[int, float], ...] = field(default=())

    def __post_init__(self) -> None:
        checks = [
            (math.isfinite(self.temperature) and self.temperature >= 0, "temperature must be a finite number >= 0"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.top_k >= 0, "top_k must be >= 0 (0 = no truncation)"),
            (0 <= self.min_p < 1, "min_p must be in [0, 1)"),
            (self.max_new_tokens >= 1, "max_new_tokens must be >= 1"),
            (all(int(t) >= 0 and math.isfinite(b) for t, b in self.logit_bias), "logit_bias needs token ids >= 0 and finite biases"),
        ]
        for ok, message in checks:
            if not ok:
                raise RespreadError(f"bad sampling settings: {message} (got {self.as_dict()})")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        if self.logit_bias:
            d["logit_bias"] = {str(token): bias for token, bias in self.logit_bias}
        else:
            del d["logit_bias"]  # absent when unused, so runs recorded before it existed keep their keys
        return d


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int
    finished: bool  # ended by end-of-turn or a stop string; False means cut at max_new_tokens


class Backend(Protocol):
    name: str

    def sample(self, prompt: Prompt, seeds: Sequence[int], params: SamplingParams) -> list[Completion]:
        """One completion per seed; the same (prompt, seed, params) always gives the same completion."""
        ...

    def score(self, prompt: Prompt, answers: Sequence[str], params: SamplingParams) -> list[float]:
        """log P(answer followed by end-of-turn | prompt) under the sampler's distribution at `params`."""
        ...


@dataclass(frozen=True)
class Estimate:
    """One figure with its uncertainty: `value`, an interval [`low`, `high`] that means what `method` says, and
    the number of units `n` it rests on.

    Methods: `exact` (no sampling error, so no interval: low and high are None), `clopper-pearson` (exact binomial 95%),
    `bootstrap` (95% percentile bootstrap over replies: how far a rerun at the same n would move the figure),
    `eb-profile` (the calibrated estimate's 95% interval for the population value), `subsampling`
    (m-out-of-n within prompt), `bootstrap-prompts` (percentile bootstrap over prompts), `t` (Student-t over
    seeds). Serialised one way (`as_dict`): value, low, high, method, n, plus a figure's own extras (a
    bootstrap's `bias`).

    >>> Estimate(0.5, 0.4, 0.6, "bootstrap", 100).as_dict()
    {'value': 0.5, 'low': 0.4, 'high': 0.6, 'method': 'bootstrap', 'n': 100}
    >>> Estimate.exact(0.25).as_dict()["low"] is None
    True
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    method: str = "exact"
    n: int | None = None
    extra: tuple[tuple[str, object], ...] = ()

    @classmethod
    def exact(cls, value: float | None, n: int | None = None) -> "Estimate":
        return cls(value, None, None, "exact", n)

    @classmethod
    def from_dict(cls, data: dict, method: str | None = None, n: int | None = None) -> "Estimate":
        """Read any shape respread has written: {value, low, high[, method, n, ...]} or the older
        {mean_kl_nats, ci_low, ci_high}."""
        if "mean_kl_nats" in data:
            return cls(data["mean_kl_nats"], data.get("ci_low"), data.get("ci_high"), method or "bootstrap-prompts", data.get("n_tokens", n))
        known = {"value", "low", "high", "method", "n"}
        extra = tuple((k, v) for k, v in data.items() if k not in known)
        return cls(data.get("value"), data.get("low"), data.get("high"), data.get("method", method or "exact"), data.get("n", n), extra)

    def as_dict(self) -> dict:
        out = {"value": self.value, "low": self.low, "high": self.high, "method": self.method, "n": self.n}
        return out | dict(self.extra)
