"""Capability retention: did a model keep its skills after diversity training?

Three checks, each comparable before and after training:

* MMLU, zero-shot, scored as lm-evaluation-harness's `mmlu` task scores it: the prompt ends in
  "Answer:" and the prediction is the letter among " A", " B", " C", " D" with the highest log-probability.
* GSM8K, greedy generation with a step-by-step instruction; the final number of the reply is compared
  with the reference answer.
* KL from a reference model (normally the model before training) on fixed neutral prompts, measured on a
  reply the reference wrote, so both models are scored on identical text.

Every check runs through the Backend interface, so it runs wherever `respread eval` does: on any device and
dtype, with an adapter, and (MMLU and GSM8K) against a served model that returns log-probabilities.

Accuracies come with exact Clopper–Pearson 95% intervals, because the subsets are small (tens to a few
hundred items) and a normal-approximation interval would be too narrow near 0 and 1.

Data are read from a path the user gives (the formats of the original releases) or from a `datasets` hub id.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from respread.errors import RespreadError
from respread.types import Estimate
from respread.tasks.verifiable import (  # GSM8K loading and answer parsing live with the tasks
    GSM8KItem,
    check_subset,
    extract_final_number,
    hub_rows,
    load_gsm8k,
    same_number,
    seeded_subset,
)

LETTERS = ("A", "B", "C", "D")
MMLU_HUB = ("all", "test")  # config and split of `cais/mmlu`
GSM8K_INSTRUCTION = "Solve the problem step by step. End with 'The answer is N.'\n\n"

NEUTRAL_PROMPTS: tuple[str, ...] = (
    "Explain what a noun is.",
    "List three uses of a paperclip.",
    "Describe how rain forms.",
    "What is the capital of France?",
    "Give two tips for writing a clear email.",
    "Explain why the sky is blue.",
    "Summarise the plot of Cinderella in two sentences.",
    "What does a thermometer measure?",
    "Name three vegetables that grow underground.",
    "How do you boil an egg?",
    "What is the difference between weather and climate?",
    "Translate 'good morning' into Spanish.",
    "Explain what a prime number is.",
    "Write one sentence about the ocean.",
    "Why do people use calendars?",
    "What is photosynthesis?",
)



@dataclass(frozen=True)
class MMLUItem:
    id: str  # "<subject>/<row>", row counted from 0 within the subject's test file
    subject: str  # file-name form, e.g. "high_school_biology"
    question: str
    choices: tuple[str, str, str, str]
    answer: str  # "A".."D"



# ---------------------------------------------------------------- data
def load_mmlu(source: str, subset: int, seed: int = 0) -> list[MMLUItem]:
    """`subset` MMLU test items from a local folder (the original CSV release) or a `datasets` hub id.

    A local `source` is a folder holding `test/<subject>_test.csv` (or those files directly), each row
    `question,A,B,C,D,answer_letter` without a header. The sample is uniform without replacement over all
    items (so accuracy on it estimates MMLU's item-averaged accuracy), drawn by shuffling the items in
    (subject, row) order with `random.Random(seed)` and taking the first `subset`: the same seed gives the
    same items, and a smaller subset lies inside a larger one. Items come back in (subject, row) order;
    a `subset` above the number of items gives them all.
    """
    check_subset(subset)
    path = Path(source).expanduser()
    items = _read_mmlu_dir(path) if path.exists() else _mmlu_from_hub(source)
    return seeded_subset(items, subset, seed)


def _read_mmlu_dir(root: Path) -> list[MMLUItem]:
    folder = root / "test" if (root / "test").is_dir() else root
    files = sorted(folder.glob("*_test.csv")) if folder.is_dir() else []
    if not files:
        raise RespreadError(f"MMLU folder {root}: no test/<subject>_test.csv files; "
                            "point it at the MMLU release folder")
    items: list[MMLUItem] = []
    for path in files:
        subject = path.name.removesuffix("_test.csv")
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            line = 1  # a quoted field may span lines: report the line a row starts on
            for row_number, row in enumerate(reader):
                if len(row) != 6 or row[5].strip() not in LETTERS:
                    got = f"answer {row[5]!r}" if len(row) == 6 else f"{len(row)} fields"
                    raise RespreadError(f"MMLU file {path}, line {line}: expected question,A,B,C,D,answer with the "
                                        f"answer one of A-D (got {got}); fix or remove the row")
                items.append(MMLUItem(f"{subject}/{row_number}", subject, row[0], tuple(row[1:5]), row[5].strip()))
                line = reader.line_num + 1
    return items


def _mmlu_from_hub(source: str) -> list[MMLUItem]:
    rows = hub_rows(source, *MMLU_HUB, what="MMLU")
    items = []
    for i, row in enumerate(rows):
        try:
            items.append(MMLUItem(f"{row['subject']}/{i}", row["subject"], row["question"], tuple(row["choices"]),
                                  LETTERS[int(row["answer"])]))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RespreadError(f"MMLU dataset {source}, row {i}: expected fields subject, question, "
                                f"choices (4), answer (0-3); {type(exc).__name__}: {exc}") from exc
    return items


def _proportion(correct: int, n: int) -> dict[str, float]:
    """Accuracy k/n with its exact (Clopper–Pearson) 95% interval."""
    from respread.metrics.uncertainty import clopper_pearson

    low, high = clopper_pearson(correct, n)
    return Estimate(correct / n, low, high, "clopper-pearson", n).as_dict()


# ---------------------------------------------------------------- MMLU
def mmlu_prompt(item: MMLUItem) -> str:
    """lm-evaluation-harness's zero-shot `mmlu` prompt (subject with spaces, question stripped)."""
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, item.choices))
    return (f"The following are multiple choice questions (with answers) about {item.subject.replace('_', ' ')}.\n\n"
            f"{item.question.strip()}{options}\nAnswer:")


def _letter_token_ids(tokenizer) -> list[int]:
    # Scoring reads one next-token distribution, so each continuation " A".." D" must be one token, and
    # the token must be what the tokenizer produces after "Answer:" (no merge across the boundary).
    ids = []
    for letter in LETTERS:
        pieces = tokenizer.encode(f" {letter}", add_special_tokens=False)
        joined = tokenizer.encode(f"Answer: {letter}", add_special_tokens=False)
        prefix = tokenizer.encode("Answer:", add_special_tokens=False)
        if len(pieces) != 1 or joined != prefix + pieces:
            raise RespreadError(f"this tokenizer splits the MMLU answer ' {letter}' into {pieces} after 'Answer:'; "
                                "single-token letter scoring needs a tokenizer that keeps ' A'..' D' whole")
        ids.append(pieces[0])
    return ids


def mmlu_accuracy(backend, items: Sequence[MMLUItem]) -> dict:
    """Zero-shot MMLU accuracy by answer-letter log-probability.

    prediction = argmax_{ℓ ∈ {A,B,C,D}} log P(" ℓ" | prompt), with the lm-evaluation-harness prompt
    (`mmlu_prompt`) as plain text, through the backend's `loglikelihoods` (lm-eval's `loglikelihood` request;
    the local model reads all four letters from one forward pass). Ties go to the earlier letter.

    Returns n, correct, accuracy {value, low, high} (Clopper–Pearson 95%), chance (0.25) and the predicted
    letter of every item, in item order.
    """
    if not items:
        raise RespreadError("MMLU: no items to score")
    if not hasattr(backend, "loglikelihoods"):
        raise RespreadError(f"MMLU needs log-probabilities of given text, which {backend.name} does not give")
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is not None:
        _letter_token_ids(tokenizer)
    scores = backend.loglikelihoods([(mmlu_prompt(item), f" {letter}") for item in items for letter in LETTERS])
    predicted = []
    for i in range(len(items)):
        four = scores[4 * i : 4 * i + 4]
        predicted.append(LETTERS[max(range(4), key=lambda k: (four[k], -k))])
    correct = sum(p == item.answer for p, item in zip(predicted, items))
    return {"n": len(items), "correct": correct, "accuracy": _proportion(correct, len(items)), "chance": 0.25,
            "predicted": predicted}


# ---------------------------------------------------------------- GSM8K
def gsm8k_accuracy(backend, items: Sequence[GSM8KItem], *, max_new_tokens: int = 256, n_examples: int = 3) -> dict:
    """GSM8K accuracy of greedy replies: correct when `extract_final_number(reply)` equals the reference
    numerically.

    The user turn is `GSM8K_INSTRUCTION + question`, rendered as every respread prompt is (the chat template
    when the model has one); replies are greedy (temperature 0) and stop at the end of turn or after
    `max_new_tokens`. Without a chat template a reply ends at its first line break, as everywhere in respread.

    Returns n, correct, accuracy {value, low, high} (Clopper–Pearson 95%), and the first `n_examples`
    items as {question, reply, extracted, reference}.
    """
    from respread.types import Prompt, SamplingParams

    if not items:
        raise RespreadError("GSM8K: no items to score")
    requests = [(Prompt(user=GSM8K_INSTRUCTION + item.question), [0]) for item in items]
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    many = getattr(backend, "sample_many", None)
    replies_per = many(requests, params) if many else [backend.sample(p, seeds, params) for p, seeds in requests]
    replies = [r[0].text for r in replies_per]
    extracted = [extract_final_number(reply) for reply in replies]
    correct = sum(same_number(x, item.answer) for x, item in zip(extracted, items))
    examples = [{"question": item.question, "reply": reply, "extracted": x, "reference": item.answer}
                for item, reply, x in list(zip(items, replies, extracted))[:n_examples]]
    return {"n": len(items), "correct": correct, "accuracy": _proportion(correct, len(items)), "examples": examples}


# ---------------------------------------------------------------- KL from a reference
def kl_from_reference(backend, reference, prompts: Sequence[str] = NEUTRAL_PROMPTS, *,
                      reply_tokens: int = 32, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean per-token KL(reference ‖ model) on replies the reference writes to neutral prompts, in nats.

    For prompt j (a user turn, rendered by the reference's renderer), the reference writes a greedy reply y_j
    of up to `reply_tokens` tokens (its end-of-turn token included when it stops). Both models then read
    prompt+reply, and at each reply position t

        KL_t = Σ_v P_ref(v | x_j, y_<t) · (log P_ref(v | x_j, y_<t) − log P_model(v | x_j, y_<t)),

    over the whole vocabulary. The reported mean pools all reply positions:
    mean_kl_nats = Σ_j Σ_t KL_{j,t} / Σ_j |y_j|. Its 95% interval is a percentile bootstrap over prompts
    (prompts resampled with replacement, the pooled ratio recomputed, `n_boot` times). A model compared
    with itself scores exactly 0. Both backends must give whole next-token distributions (a local model),
    over one vocabulary.

    Returns the mean as an `Estimate` (value, low, high, method `bootstrap-prompts`, n = reply tokens), with
    n_prompts, n_tokens and per_prompt [{prompt, reply, n_tokens, mean_kl_nats}].
    """
    import numpy as np

    from respread.types import Prompt, SamplingParams

    if not prompts:
        raise RespreadError("KL from reference: no prompts")
    if reply_tokens < 1:
        raise RespreadError(f"reply_tokens must be at least 1 (got {reply_tokens})")
    for b in (backend, reference):
        if not hasattr(b, "sequence_logprobs"):
            raise RespreadError(f"KL from the original needs whole next-token distributions, which {b.name} does not give; "
                                "run the capability check on a local model (--engine transformers)")
    rendered = [reference.renderer.token_ids(Prompt(user=p)) for p in prompts]
    greedy = reference.sample_token_ids(rendered, [0] * len(rendered), SamplingParams(temperature=0.0, max_new_tokens=reply_tokens))
    replies = [ids + ([end] if end is not None else []) for ids, end in greedy]
    per_prompt = []
    for start in range(0, len(prompts), backend.batch_size):
        rows = range(start, min(start + backend.batch_size, len(prompts)))
        keep = max(len(replies[j]) for j in rows)
        sequences = [rendered[j] + replies[j] for j in rows]
        ref_logp = reference.sequence_logprobs(sequences, keep)
        model_logp = backend.sequence_logprobs(sequences, keep).to(ref_logp.device)
        if ref_logp.shape[-1] != model_logp.shape[-1]:
            raise RespreadError(f"KL from reference: the models' vocabularies differ ({ref_logp.shape[-1]} vs "
                                f"{model_logp.shape[-1]} tokens); compare models that share a tokenizer")
        kl = (ref_logp.exp() * (ref_logp - model_logp)).sum(-1)  # [rows, keep]
        for j, row in zip(rows, kl):
            reply = replies[j]
            per_prompt.append({"prompt": prompts[j], "reply": reference.tokenizer.decode(reply, skip_special_tokens=True),
                               "n_tokens": len(reply), "mean_kl_nats": float(row[-len(reply):].mean())})
    counts = np.array([p["n_tokens"] for p in per_prompt])
    sums = np.array([p["mean_kl_nats"] for p in per_prompt]) * counts
    draws = np.random.default_rng(seed).integers(0, len(per_prompt), size=(n_boot, len(per_prompt)))
    boot = sums[draws].sum(1) / counts[draws].sum(1)
    low, high = np.percentile(boot, [2.5, 97.5])
    kl = Estimate(float(sums.sum() / counts.sum()), float(low), float(high), "bootstrap-prompts", int(counts.sum()))
    return kl.as_dict() | {"n_prompts": len(per_prompt), "n_tokens": int(counts.sum()), "per_prompt": per_prompt}


# ---------------------------------------------------------------- one call
def capability_report(model_path_or_spec: str, *, mmlu: str | None = None, gsm8k: str | None = None,
                      reference: str | None = None, mmlu_subset: int = 100, gsm8k_subset: int = 20, seed: int = 0,
                      gsm8k_max_new_tokens: int = 256, options=None, reference_options=None, engine: str = "transformers",
                      progress: Callable[[str], None] | None = None) -> dict:
    """Load a model as `options` say (a `ModelOptions`: device, dtype, adapter, ...) and run the checks that
    were given a source; one JSON-able dict.

    `mmlu` / `gsm8k` are data sources as `load_mmlu` / `load_gsm8k` take them; `reference` is a model spec
    (alias, path, hub id) for `kl_from_reference` on `NEUTRAL_PROMPTS`, loaded with `reference_options`
    (default: the same options less the adapter). Each part records its wall seconds; `progress` receives a short line as each part starts.
    """
    from respread.backends import load_backend
    from respread.backends.options import ModelOptions

    options = options or ModelOptions()
    report_progress = progress or (lambda _message: None)
    started = time.perf_counter()
    report_progress(f"loading {model_path_or_spec}")
    backend = load_backend(model_path_or_spec, engine, options=options)
    report: dict[str, Any] = {"model": backend.name, "seed": seed, "wall_seconds": {"load": time.perf_counter() - started}}
    if mmlu is not None:
        part_started = time.perf_counter()
        items = load_mmlu(mmlu, mmlu_subset, seed)
        report_progress(f"MMLU: {len(items)} items")
        report["mmlu"] = {"source": mmlu, **mmlu_accuracy(backend, items), "ids": [item.id for item in items]}
        report["wall_seconds"]["mmlu"] = time.perf_counter() - part_started
    if gsm8k is not None:
        part_started = time.perf_counter()
        items = load_gsm8k(gsm8k, gsm8k_subset, seed)
        report_progress(f"GSM8K: {len(items)} problems, up to {gsm8k_max_new_tokens} new tokens each")
        report["gsm8k"] = {"source": gsm8k, "max_new_tokens": gsm8k_max_new_tokens,
                           **gsm8k_accuracy(backend, items, max_new_tokens=gsm8k_max_new_tokens),
                           "ids": [item.id for item in items]}
        report["wall_seconds"]["gsm8k"] = time.perf_counter() - part_started
    if reference is not None:
        part_started = time.perf_counter()
        report_progress(f"KL from {reference} on {len(NEUTRAL_PROMPTS)} neutral prompts")
        original = load_backend(reference, engine, options=reference_options or options.without_adapter())
        report["kl"] = {"reference": original.name, **kl_from_reference(backend, original, seed=seed)}
        del original
        report["wall_seconds"]["kl"] = time.perf_counter() - part_started
    report["wall_seconds"]["total"] = time.perf_counter() - started
    return report
