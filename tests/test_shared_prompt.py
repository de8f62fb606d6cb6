"""The shared-prompt step equals the full path: log-probabilities, losses and gradients, GRPO and SFT layouts,
full and LoRA; it checks itself once and falls back; its rollouts are the sampler's, seeded per row."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer.utils import add_fused_lm_head

from respread.backends import SamplingParams
from respread.restore.shared_prompt import SharedPromptForward, _Plan

TOLERANCE = 1e-5
HEAD = list(range(40, 80))  # a common beginning long enough to be run once (shared_prefix.MIN_SHARED = 32)


def tiny_model(vocab: int = 101, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, attn_implementation="sdpa",
    )
    return LlamaForCausalLM(config).float()


def pair(lora: bool = False, temperature: float = 0.7):
    """Two identical fused-head models: one left as TRL makes it, one with the shared forward."""
    models = []
    for _ in range(2):
        model = tiny_model()
        add_fused_lm_head(model, temperature=temperature, outputs=("log_probs", "entropy", "is_top1"))
        if lora:
            from peft import LoraConfig, get_peft_model

            torch.manual_seed(1)
            model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
        models.append(model)
    full, shared = models
    base = shared.get_base_model() if lora else shared
    base.forward = SharedPromptForward(base, check=False)
    return full, shared, base.forward


def grpo_batch():
    """Three prompts (a long common beginning, tails of 3-6 tokens) left-padded; 2-4 completions each of 1-3
    tokens, right-padded: TRL's GRPO layout, labels on the completions only."""
    prompts = [HEAD + [5, 6, 7, 8, 9, 10], HEAD + [11, 12, 13], HEAD + [14, 15, 16, 17]]
    groups = [[[20, 21, 22], [23], [24, 25]], [[26, 27, 28], [29]], [[30, 31], [32, 33, 34], [35], [36, 37]]]
    width, depth = max(map(len, prompts)), 3
    ids, mask = [], []
    for prompt, completions in zip(prompts, groups):
        for c in completions:
            ids.append([0] * (width - len(prompt)) + prompt + c + [0] * (depth - len(c)))
            mask.append([0] * (width - len(prompt)) + [1] * (len(prompt) + len(c)) + [0] * (depth - len(c)))
    ids, mask = torch.tensor(ids), torch.tensor(mask)
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-depth] = -100
    return ids, mask, labels


def sft_batch():
    """SFT's layout: prompt then answer from column 0, right-padded; two prompts of different lengths."""
    rows = [(HEAD + [5, 6], [50, 51]), (HEAD + [5, 6], [52]), (HEAD + [7, 8, 9], [53, 54, 55]), (HEAD + [5, 6], [56, 57, 58]),
            (HEAD + [7, 8, 9], [59])]
    width = max(len(p) + len(a) for p, a in rows)
    ids = torch.tensor([p + a + [0] * (width - len(p) - len(a)) for p, a in rows])
    mask = torch.tensor([[1] * (len(p) + len(a)) + [0] * (width - len(p) - len(a)) for p, a in rows])
    labels = torch.tensor([[-100] * len(p) + a + [-100] * (width - len(p) - len(a)) for p, a in rows])
    return ids, mask, labels


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / max(float(a.norm()), 1e-12))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("batch", [grpo_batch, sft_batch], ids=["grpo-layout", "sft-layout"])
def test_shared_forward_gives_the_full_paths_logprobs_and_gradients(batch, lora):
    full, shared, wrapper = pair(lora=lora)
    ids, mask, labels = batch()
    outputs = []
    for model in (full, shared):
        out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        (out.loss + 0.3 * out.entropy.sum()).backward()
        outputs.append(out)
    a, b = outputs
    assert wrapper.stats["shared_calls"] == 1 and wrapper.stats["positions_run"] < ids.numel()
    for name in ("log_probs", "entropy", "is_top1", "label_mask"):
        assert getattr(a, name).shape == getattr(b, name).shape
    assert relative_gap(a.log_probs, b.log_probs) < TOLERANCE
    assert relative_gap(a.entropy, b.entropy) < TOLERANCE
    assert torch.equal(a.is_top1, b.is_top1) and torch.equal(a.label_mask, b.label_mask)
    assert abs(a.loss.item() - b.loss.item()) < TOLERANCE * abs(a.loss.item())
    trained = [(n, p, q) for (n, p), q in zip(full.named_parameters(), shared.parameters()) if p.requires_grad]
    assert trained
    for name, p, q in trained:
        assert relative_gap(p.grad, q.grad) < TOLERANCE, name


def test_rows_without_a_shared_prompt_take_trls_own_path():
    full, shared, wrapper = pair()
    ids, mask, labels = grpo_batch()
    keep = [0, 3, 5]  # one row of each prompt
    out = shared(input_ids=ids[keep], attention_mask=mask[keep], labels=labels[keep], fused_lm_head=True)
    assert wrapper.stats == {"shared_calls": 0, "full_calls": 1, "positions_run": 0, "positions_full": 0}
    assert torch.equal(out.log_probs, full(input_ids=ids[keep], attention_mask=mask[keep], labels=labels[keep], fused_lm_head=True).log_probs)


def test_the_first_batch_is_checked_and_a_disagreement_falls_back_with_one_line(monkeypatch, caplog):
    full, shared, wrapper = pair()
    wrapper.check_pending = True
    real = _Plan.to_full
    monkeypatch.setattr(_Plan, "to_full", lambda self, values: real(self, values) + 0.01)  # a broken shared path
    ids, mask, labels = grpo_batch()
    with caplog.at_level(logging.WARNING, logger="respread.restore.shared_prompt"):
        out = shared(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        again = shared(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "disagrees with the full forward" in lines[0]
    expected = full(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True).log_probs
    assert torch.allclose(out.log_probs, expected) and torch.allclose(again.log_probs, expected)
    assert not wrapper.enabled and wrapper.stats["shared_calls"] == 0


def test_a_correct_shared_path_passes_its_check():
    _, shared, wrapper = pair()
    wrapper.check_pending = True
    ids, mask, labels = grpo_batch()
    shared(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    assert wrapper.enabled and wrapper.stats["shared_calls"] == 1


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from respread.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct").load_path)


def test_packed_decoding_draws_what_the_row_by_row_sampler_draws(tokenizer):
    from respread.backends.shared_prefix import sample_packed
    from respread.backends.transformers import TransformersBackend

    model = tiny_model(vocab=len(tokenizer), seed=3).eval()
    backend = TransformersBackend.from_loaded(model, tokenizer)
    head = tokenizer.encode("You are a uniform random sampler. " * 8, add_special_tokens=False)
    prompts = [head + [100, 101], head + [102], head + [100, 101], head + [103, 104, 105], head + [102]]
    params = SamplingParams(max_new_tokens=6, temperature=1.3)
    seeds = [11, 12, 13, 14, 15]
    packed = sample_packed(backend, prompts, seeds, params)
    one_by_one = [backend._sample_ids_rowwise(p, [s], params)[0] for p, s in zip(prompts, seeds)]
    assert packed == one_by_one
    assert packed[0] != packed[2]  # same prompt, own seed, own draw


def test_rollouts_are_seeded_by_step_and_row(tokenizer):
    from types import SimpleNamespace

    from transformers import GenerationConfig

    from respread.restore.shared_prompt import SharedPromptRollouts

    model = tiny_model(vocab=len(tokenizer), seed=4)
    trainer = SimpleNamespace(
        processing_class=tokenizer, state=SimpleNamespace(global_step=0), args=SimpleNamespace(seed=7),
        accelerator=SimpleNamespace(process_index=0),
    )
    rollouts = SharedPromptRollouts(trainer, model, model.generate)
    config = GenerationConfig(do_sample=True, max_new_tokens=5, temperature=1.0, top_k=0, top_p=1.0, pad_token_id=tokenizer.pad_token_id)
    prompt = tokenizer.encode("Pick a random number. " * 3, add_special_tokens=False)
    ids = torch.tensor([[tokenizer.pad_token_id] + prompt] * 3 + [[0] + prompt[:-1] + [17]] * 2)
    mask = torch.ones_like(ids)
    mask[:, 0] = 0
    first = rollouts(input_ids=ids, attention_mask=mask, generation_config=config)
    assert torch.equal(first[:, : ids.shape[1]], ids) and first.shape[1] <= ids.shape[1] + 6
    again = SharedPromptRollouts(trainer, copy.deepcopy(model), model.generate)(input_ids=ids, attention_mask=mask, generation_config=config)
    assert torch.equal(first, again)  # same seed, step and rows: same rollouts
    trainer.state.global_step = 1
    assert not torch.equal(rollouts(input_ids=ids, attention_mask=mask, generation_config=config), first)
    assert rollouts.stats == {"shared_calls": 2, "full_calls": 0}
    beams = GenerationConfig(do_sample=True, max_new_tokens=2, repetition_penalty=1.3, pad_token_id=tokenizer.pad_token_id)
    rollouts(input_ids=ids, attention_mask=mask, generation_config=beams)  # what the sampler cannot do goes to generate
    assert rollouts.stats["full_calls"] == 1
