"""The transformers backend on the real embedded model (SmolLM2-135M-Instruct, dequantized fp32)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from scipy import stats

from respread.backends import Prompt, SamplingParams
from respread.records import read_records

pytestmark = pytest.mark.slow

NUMBER_PROMPT = "Pick a random integer between 1 and 10. Reply with only the number."
# Two example turns make the 135M model answer with a bare number ~70% of the time, so the exact and
# sampled distributions can be compared with a few hundred samples.
FEW_SHOT = Prompt(NUMBER_PROMPT, few_shot=((NUMBER_PROMPT, "3"), (NUMBER_PROMPT, "8")))


def test_cached_copy_is_plain_fp32_safetensors_and_trainable(smollm):
    from respread.models import ALIASES, dequantized_copy

    path = dequantized_copy(ALIASES["smollm2-135m-instruct"].locate())
    assert (path / "model.safetensors").is_file() and not path.name.endswith("partial")
    assert getattr(smollm.model, "hf_quantizer", None) is None
    assert all(p.dtype == torch.float32 for p in smollm.model.parameters())
    ids = torch.tensor([smollm.tokenizer.encode("Hello there")])
    model = smollm.model
    model.train()
    try:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        assert model.get_input_embeddings().weight.grad.abs().sum() > 0
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_greedy_sampling_equals_transformers_generate(smollm):
    prompt = Prompt("Name a random animal. Reply with only the animal's name.")
    ours = smollm.sample(prompt, [0, 1], SamplingParams(temperature=0, max_new_tokens=12))
    ids = torch.tensor([smollm.tokenizer.encode(smollm.render(prompt))])
    with torch.inference_mode():
        ref = smollm.model.generate(ids, do_sample=False, max_new_tokens=12, pad_token_id=smollm.tokenizer.eos_token_id)
    expected = smollm.tokenizer.decode(ref[0, ids.shape[1] :], skip_special_tokens=True)
    assert ours[0].text == ours[1].text == expected


def test_a_sample_does_not_depend_on_its_batch(smollm):
    prompt = Prompt("Pick a random integer between 1 and 100. Reply with only the number.")
    params = SamplingParams(max_new_tokens=16)
    seeds = list(range(100, 140))
    together = [c.text for c in smollm.sample(prompt, seeds, params)]
    alone = [smollm.sample(prompt, [s], params)[0].text for s in seeds[:8]]
    reordered = [c.text for c in smollm.sample(prompt, seeds[::-1], params)][::-1]
    assert together[:8] == alone
    assert together == reordered


FREED_AFTER_FROZEN_LOAD = """
import gc, weakref
from respread.backends import Prompt, SamplingParams, load_backend
backend = load_backend("smollm2-135m-instruct")  # the process's first load: what is alive before it is frozen
assert gc.get_freeze_count() > 100_000, gc.get_freeze_count()
backend.sample(Prompt("Name a colour."), [0, 1], SamplingParams(max_new_tokens=4))
backend.score(Prompt("Name a colour."), ["red", "blue"])
model, weights = weakref.ref(backend.model), weakref.ref(backend.model.lm_head.weight)
gc.disable()  # no collection may help: reference counts alone must free them
del backend
print(model() is None and weights() is None)
"""


def test_a_frozen_first_load_still_frees_its_model_when_its_backend_goes():
    """`load_backend` freezes what is alive before the process's first load; the model must not be kept by that."""
    done = subprocess.run([sys.executable, "-c", FREED_AFTER_FROZEN_LOAD], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"


def test_score_equals_a_plain_forward_pass(smollm):
    prompt = Prompt(NUMBER_PROMPT)
    answers = ["7", "10", "hearts"]
    scores = smollm.score(prompt, answers, SamplingParams())
    prompt_ids = smollm.tokenizer.encode(smollm.render(prompt))
    for answer, score in zip(answers, scores):
        cont = smollm.tokenizer.encode(answer, add_special_tokens=False) + [smollm.tokenizer.eos_token_id]
        ids = torch.tensor([prompt_ids + cont])
        with torch.inference_mode():
            logprobs = smollm.model(input_ids=ids).logits[0].float().log_softmax(-1)
        expected = sum(logprobs[len(prompt_ids) - 1 + i, t].item() for i, t in enumerate(cont))
        assert score == pytest.approx(expected, abs=1e-3)


def test_no_call_uses_a_deprecated_cache_keyword(smollm):
    # transformers 5.24 renamed the forward's `past_key_values` to `cache`: the old name still works there
    # but warns. Every path that passes a cache runs here: shared and per-row sampling, trie and forced scoring.
    smollm._prefills.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        smollm.sample(Prompt(NUMBER_PROMPT), [1, 2], SamplingParams(max_new_tokens=3))
        smollm.sample_many([(Prompt(NUMBER_PROMPT), [3]), (Prompt("Name a colour."), [4])], SamplingParams(max_new_tokens=3))
        smollm.score(Prompt(NUMBER_PROMPT), ["7", "10"], SamplingParams())
        smollm.teacher_forced_logits(Prompt(NUMBER_PROMPT), ["7", "10"])
    assert not [str(w.message) for w in caught if "past_key_values" in str(w.message)]


def _digit_bias(smollm) -> tuple[tuple[int, float], ...]:
    ids = [smollm.tokenizer.convert_tokens_to_ids(d) for d in ("7", "3")]
    return ((ids[0], 2.0), (ids[1], -1.0))


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(max_new_tokens=4),
        SamplingParams(temperature=0.7, min_p=0.05, max_new_tokens=4),
        SamplingParams(temperature=1.5, max_new_tokens=4),
        "logit_bias",
    ],
    ids=["t1", "t0.7-min_p", "t1.5", "logit_bias"],
)
def test_exact_distribution_agrees_with_sampling(smollm, params):
    """Replies that are exactly a bare number are counted and tested against the exact probabilities."""
    if params == "logit_bias":
        params = SamplingParams(max_new_tokens=4, logit_bias=_digit_bias(smollm))
    answers = [str(i) for i in range(1, 11)]
    exact = np.exp(smollm.score(FEW_SHOT, answers, params))
    n = 400
    completions = smollm.sample(FEW_SHOT, list(range(n)), params)
    counts = Counter(c.text for c in completions if c.finished)
    observed = np.array([counts.get(a, 0) for a in answers] + [n - sum(counts.get(a, 0) for a in answers)])
    expected = np.append(exact, 1 - exact.sum()) * n
    impossible = expected == 0  # truncated away by top-k/min-p: must never be sampled
    assert observed[impossible].sum() == 0
    observed, expected = observed[~impossible], expected[~impossible]
    # Pool cells with tiny expectations so the χ² approximation holds.
    small = expected < 5
    if small.sum() > 0:
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    p_value = stats.chisquare(observed, expected).pvalue
    assert p_value > 1e-3, (observed, expected.round(1))
    # The valid mass lies inside the sampled validity's 99% Wilson interval.
    hits = sum(counts.get(a, 0) for a in answers)
    low, high = stats.binomtest(hits, n).proportion_ci(0.99, method="wilson")
    assert low <= exact.sum() <= high


def test_min_p_and_top_k_really_truncate(smollm):
    prompt = Prompt(NUMBER_PROMPT)
    full = np.exp(smollm.score(prompt, [str(i) for i in range(1, 11)], SamplingParams()))
    greedy_like = np.exp(smollm.score(prompt, [str(i) for i in range(1, 11)], SamplingParams(top_k=1)))
    assert (greedy_like > 0).sum() <= 1 and (full > 0).all()


def _eval_cmd(out, extra=()):
    return [sys.executable, "-m", "respread.cli", "eval", "--tasks", "integer_1_10,card_suit", "--samples", "48",
            "--batch-size", "8", "--exact", "--out", str(out), *extra]


def test_kill_9_mid_run_then_resume_equals_an_unbroken_run(tmp_path):
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    unbroken = tmp_path / "unbroken"
    subprocess.run(_eval_cmd(unbroken), check=True, env=env, capture_output=True, timeout=600)

    broken = tmp_path / "broken"
    proc = subprocess.Popen(_eval_cmd(broken), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = broken / "samples.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if samples.exists() and samples.read_bytes().count(b"\n") >= 20:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = {r["key"]: r["text"] for r in read_records(samples)}
    assert 20 <= len(kept) < 96

    result = subprocess.run(_eval_cmd(broken), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    resumed = {r["key"]: r["text"] for r in read_records(samples)}
    assert all(resumed[k] == v for k, v in kept.items())  # nothing written was lost or changed
    assert resumed == {r["key"]: r["text"] for r in read_records(unbroken / "samples.jsonl")}
    assert len(read_records(samples)) == 96  # and nothing was done twice
    assert (broken / "metrics.json").read_text() == (unbroken / "metrics.json").read_text()


def test_plain_text_mode_ends_a_reply_at_the_first_line_break():
    """Without a chat template (as for a base model) a reply ends at its first line break after some text."""
    from respread.backends import load_backend

    plain = load_backend("smollm2-135m-instruct", chat_template=False)
    prompt = Prompt("Q: Pick a random integer between 1 and 10.\nA:")
    assert plain.render(prompt) == "Q: Pick a random integer between 1 and 10.\nA:\n"
    completions = plain.sample(prompt, list(range(24)), SamplingParams(max_new_tokens=24))
    for c in completions:
        assert "\n" not in c.text.lstrip()
    assert any(c.finished for c in completions)
    # Exact scoring ends the answer with the same line break.
    (with_newline,) = plain.score(prompt, ["7"], SamplingParams())
    ids = plain.tokenizer.encode(plain.render(prompt)) + plain.tokenizer.encode("7\n", add_special_tokens=False)
    with torch.inference_mode():
        logprobs = plain.model(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)
    n_prompt = len(plain.tokenizer.encode(plain.render(prompt)))
    expected = sum(logprobs[n_prompt - 1 + i, t].item() for i, t in enumerate(ids[n_prompt:]))
    assert with_newline == pytest.approx(expected, abs=1e-3)
