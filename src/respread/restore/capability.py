"""Capability retention: did a model keep its skills after diversity training?

Three checks, each comparable before and after training:

* MMLU, zero-shot, scored as lm-evaluation-harness's `mmlu` task scores it: the prompt ends in
  "Answer:" and the prediction is the letter among " A", " B", " C", " D" with the highest log-probability.
* GSM8K, greedy generation with a step-by-step instruction; the final number of the reply is compared
  with the reference answer.
* KL from a reference model (normally the model before training) on fixed neutral prompts, measured on a
  reply the reference wrote, so both models are scored on identical text.

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
from respread.models import resolve_model
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
    return {"value": correct / n, "low": low, "high": high}


# ---------------------------------------------------------------- model helpers
def _left_pad(sequences: Sequence[Sequence[int]], pad_id: int, device):
    """Batch token lists with padding on the left, so every row's last real token is at position −1.

    Position ids count real tokens only, so a padded row sees the same positions as it would alone.
    """
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _batches(order: list[int], batch_size: int):
    if batch_size < 1:
        raise RespreadError(f"batch_size must be at least 1 (got {batch_size})")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def _chat_prompt(tokenizer, user: str, chat_template: bool) -> list[int]:
    if chat_template and tokenizer.chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                             add_generation_prompt=True)
        # The template already places BOS where the model wants it.
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(user)


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


def mmlu_accuracy(model, tokenizer, items: Sequence[MMLUItem], *, batch_size: int = 16) -> dict:
    """Zero-shot MMLU accuracy by answer-letter log-probability.

    prediction = argmax_{ℓ ∈ {A,B,C,D}} log P(" ℓ" | prompt), with the lm-evaluation-harness prompt
    (`mmlu_prompt`) as plain text. All four letters are single tokens, so one forward pass per batch gives
    all four log-probabilities at the last position; as they share one softmax normaliser, comparing
    logits is comparing log-probabilities. Ties go to the earlier letter.

    Returns n, correct, accuracy {value, low, high} (Clopper–Pearson 95%), chance (0.25) and the predicted
    letter of every item, in item order.
    """
    import torch

    if not items:
        raise RespreadError("MMLU: no items to score")
    letter_ids = _letter_token_ids(tokenizer)
    device = next(model.parameters()).device
    prompts = [tokenizer.encode(mmlu_prompt(item)) for item in items]
    predicted: list[str] = [""] * len(items)
    # Longest first: each batch holds similar lengths (little padding), and memory peaks in the first batch.
    order = sorted(range(len(items)), key=lambda i: -len(prompts[i]))
    with torch.inference_mode():
        for batch in _batches(order, batch_size):
            ids, mask, positions = _left_pad([prompts[i] for i in batch], _pad_id(tokenizer), device)
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits
            choice = logits[:, -1, letter_ids].argmax(-1).tolist()
            for i, c in zip(batch, choice):
                predicted[i] = LETTERS[c]
    correct = sum(p == item.answer for p, item in zip(predicted, items))
    return {"n": len(items), "correct": correct, "accuracy": _proportion(correct, len(items)), "chance": 0.25,
            "predicted": predicted}


# ---------------------------------------------------------------- GSM8K
def gsm8k_accuracy(model, tokenizer, items: Sequence[GSM8KItem], *, max_new_tokens: int = 256,
                   batch_size: int = 16, chat_template: bool = True, n_examples: int = 3) -> dict:
    """GSM8K accuracy of greedy replies: correct when `extract_final_number(reply)` equals the reference
    numerically.

    The user turn is `GSM8K_INSTRUCTION + question`, through the chat template when the tokenizer has one
    and `chat_template` is set, else as plain text followed by "\\nAnswer:". Replies stop at an end-of-turn
    token or after `max_new_tokens`; a plain-text reply is also cut where the model starts a new
    "Question:", since a base model keeps writing exam items and its last number would come from those.

    Returns n, correct, accuracy {value, low, high} (Clopper–Pearson 95%), and the first `n_examples`
    items as {question, reply, extracted, reference}.
    """
    import torch

    if not items:
        raise RespreadError("GSM8K: no items to score")
    use_chat = bool(chat_template and tokenizer.chat_template)
    device = next(model.parameters()).device
    prompts = [_chat_prompt(tokenizer, GSM8K_INSTRUCTION + item.question + ("" if use_chat else "\nAnswer:"), use_chat)
               for item in items]
    pad_id = _pad_id(tokenizer)
    replies: list[str] = [""] * len(items)
    order = sorted(range(len(items)), key=lambda i: -len(prompts[i]))
    with torch.inference_mode():
        for batch in _batches(order, batch_size):
            ids, mask, _ = _left_pad([prompts[i] for i in batch], pad_id, device)
            # generate derives position ids from the attention mask itself.
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                                 pad_token_id=pad_id)
            for i, row in zip(batch, out[:, ids.shape[1]:]):
                text = tokenizer.decode(row, skip_special_tokens=True)
                replies[i] = text if use_chat else text.split("\nQuestion:")[0]
    extracted = [extract_final_number(reply) for reply in replies]
    correct = sum(same_number(x, item.answer) for x, item in zip(extracted, items))
    examples = [{"question": item.question, "reply": reply, "extracted": x, "reference": item.answer}
                for item, reply, x in list(zip(items, replies, extracted))[:n_examples]]
    return {"n": len(items), "correct": correct, "accuracy": _proportion(correct, len(items)), "examples": examples}


# ---------------------------------------------------------------- KL from a reference
def kl_from_reference(model, reference_model, tokenizer, prompts: Sequence[str] = NEUTRAL_PROMPTS, *,
                      reply_tokens: int = 32, batch_size: int = 16, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean per-token KL(reference ‖ model) on replies the reference writes to neutral prompts, in nats.

    For prompt j (rendered as a user turn with the generation prompt), the reference writes a greedy reply
    y_j of up to `reply_tokens` tokens (its end-of-turn token included when it stops). Both models then
    read prompt+reply, and at each reply position t

        KL_t = Σ_v P_ref(v | x_j, y_<t) · (log P_ref(v | x_j, y_<t) − log P_model(v | x_j, y_<t)),

    over the whole vocabulary. The reported mean pools all reply positions:
    mean_kl_nats = Σ_j Σ_t KL_{j,t} / Σ_j |y_j|. Its 95% interval is a percentile bootstrap over prompts
    (prompts resampled with replacement, the pooled ratio recomputed, `n_boot` times). A model compared
    with itself scores exactly 0. The two models must share `tokenizer`'s vocabulary. Prompts run
    `batch_size` at a time (left-padded), for generation and for scoring.

    Returns mean_kl_nats, ci_low, ci_high, n_prompts, n_tokens and per_prompt
    [{prompt, reply, n_tokens, mean_kl_nats}].
    """
    import numpy as np
    import torch

    if not prompts:
        raise RespreadError("KL from reference: no prompts")
    if reply_tokens < 1:
        raise RespreadError(f"reply_tokens must be at least 1 (got {reply_tokens})")
    ref_device = next(reference_model.parameters()).device
    device = next(model.parameters()).device
    end_ids = _end_token_ids(reference_model, tokenizer)
    pad_id = _pad_id(tokenizer)
    per_prompt = []
    with torch.inference_mode():
        for batch in _batches(list(range(len(prompts))), batch_size):
            rendered = [_chat_prompt(tokenizer, prompts[j], chat_template=True) for j in batch]
            ids, mask, _ = _left_pad(rendered, pad_id, ref_device)
            generated = reference_model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                                 max_new_tokens=reply_tokens, pad_token_id=pad_id)
            replies = []
            for row in generated[:, ids.shape[1]:].tolist():
                # generate pads rows that finished early; a reply runs up to and including its end-of-turn token.
                stop = next((k for k, token in enumerate(row) if token in end_ids), len(row) - 1)
                replies.append(row[: stop + 1])
            # Left padding puts every reply at the right edge: the last `keep` positions' logits, less the
            # final one, predict the longest reply's tokens, and row i's reply is the last len(y_i) of those.
            keep = max(len(reply) for reply in replies) + 1
            full = [prompt + reply for prompt, reply in zip(rendered, replies)]
            ref_logp = _next_token_logprobs(reference_model, full, pad_id, keep).to(device)
            model_logp = _next_token_logprobs(model, full, pad_id, keep)
            if ref_logp.shape[-1] != model_logp.shape[-1]:
                raise RespreadError(f"KL from reference: the models' vocabularies differ ({ref_logp.shape[-1]} vs "
                                    f"{model_logp.shape[-1]} tokens); compare models that share a tokenizer")
            kl = (ref_logp.exp() * (ref_logp - model_logp)).sum(-1)  # [batch, keep - 1]
            for j, reply, row in zip(batch, replies, kl):
                per_prompt.append({"prompt": prompts[j], "reply": tokenizer.decode(reply, skip_special_tokens=True),
                                   "n_tokens": len(reply), "mean_kl_nats": float(row[-len(reply):].mean())})
    counts = np.array([p["n_tokens"] for p in per_prompt])
    sums = np.array([p["mean_kl_nats"] for p in per_prompt]) * counts
    draws = np.random.default_rng(seed).integers(0, len(per_prompt), size=(n_boot, len(per_prompt)))
    boot = sums[draws].sum(1) / counts[draws].sum(1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"mean_kl_nats": float(sums.sum() / counts.sum()), "ci_low": float(low), "ci_high": float(high),
            "n_prompts": len(per_prompt), "n_tokens": int(counts.sum()), "per_prompt": per_prompt}


def _next_token_logprobs(model, sequences: Sequence[Sequence[int]], pad_id: int, keep: int):
    """log P(next token | prefix) at the `keep` − 1 positions before each sequence's last one.

    Shape [rows, keep − 1, vocab]; the sequences are left-padded, so those positions line up at the right.
    """
    ids, mask, positions = _left_pad(sequences, pad_id, next(model.parameters()).device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
    return logits[:, :-1].float().log_softmax(-1)


def _end_token_ids(model, tokenizer) -> set[int]:
    ids: set[int] = set()
    for source in (model.generation_config.eos_token_id, tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(source)
    return ids


# ---------------------------------------------------------------- one call
def capability_report(model_path_or_spec: str, *, mmlu: str | None = None, gsm8k: str | None = None,
                      reference: str | None = None, mmlu_subset: int = 100, gsm8k_subset: int = 20, seed: int = 0,
                      gsm8k_max_new_tokens: int = 256, batch_size: int = 16, device: str = "cpu",
                      progress: Callable[[str], None] | None = None) -> dict:
    """Load a model (float32, eval mode) and run the checks that were given a source; one JSON-able dict.

    `mmlu` / `gsm8k` are data sources as `load_mmlu` / `load_gsm8k` take them; `reference` is a model spec
    (alias, path, hub id) for `kl_from_reference` on `NEUTRAL_PROMPTS`. Each part records its wall seconds;
    `progress` receives a short line as each part starts.
    """
    report_progress = progress or (lambda _message: None)
    started = time.perf_counter()
    report_progress(f"loading {model_path_or_spec}")
    model, tokenizer, name = _load(model_path_or_spec, device)
    report: dict[str, Any] = {"model": name, "seed": seed, "wall_seconds": {"load": time.perf_counter() - started}}
    if mmlu is not None:
        part_started = time.perf_counter()
        items = load_mmlu(mmlu, mmlu_subset, seed)
        report_progress(f"MMLU: {len(items)} items")
        report["mmlu"] = {"source": mmlu, **mmlu_accuracy(model, tokenizer, items, batch_size=batch_size),
                          "ids": [item.id for item in items]}
        report["wall_seconds"]["mmlu"] = time.perf_counter() - part_started
    if gsm8k is not None:
        part_started = time.perf_counter()
        items = load_gsm8k(gsm8k, gsm8k_subset, seed)
        report_progress(f"GSM8K: {len(items)} problems, up to {gsm8k_max_new_tokens} new tokens each")
        report["gsm8k"] = {"source": gsm8k, "max_new_tokens": gsm8k_max_new_tokens,
                           **gsm8k_accuracy(model, tokenizer, items, max_new_tokens=gsm8k_max_new_tokens,
                                            batch_size=batch_size),
                           "ids": [item.id for item in items]}
        report["wall_seconds"]["gsm8k"] = time.perf_counter() - part_started
    if reference is not None:
        part_started = time.perf_counter()
        report_progress(f"KL from {reference} on {len(NEUTRAL_PROMPTS)} neutral prompts")
        reference_model, _, reference_name = _load(reference, device)
        report["kl"] = {"reference": reference_name, **kl_from_reference(model, reference_model, tokenizer,
                                                                           batch_size=batch_size, seed=seed)}
        del reference_model
        report["wall_seconds"]["kl"] = time.perf_counter() - part_started
    report["wall_seconds"]["total"] = time.perf_counter() - started
    return report


def _load(spec: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_model(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.load_path)
        model = AutoModelForCausalLM.from_pretrained(resolved.load_path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RespreadError(f"cannot load model '{spec}': {first_line}") from exc
    return model.to(device).eval(), tokenizer, resolved.name
