"""Restore on real models: exact scoring of a listed task against sampled frequencies, and GRPO with and without
the shared-prompt loss ending on the same weights."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from safetensors.torch import load_file
from scipy import stats

from respread.backends import SamplingParams, load_backend
from respread.models import resolve_model
from respread.restore.train import TrainConfig, run_train
from respread.tasks import AnswerParser, select_tasks

pytestmark = pytest.mark.slow


def test_exact_scoring_of_a_listed_task_matches_sampled_frequencies(tmp_path):
    # The untrained model rarely answers in the listed form; a few diffuse steps make most replies valid.
    config = TrainConfig(method="diffuse", task="listed_integer_1_10", steps=6, batch_size=10, save_every=100, monitor_every=100)
    run_train(config, tmp_path / "trained")
    backend = load_backend(str(tmp_path / "trained" / "final"))
    task = select_tasks("listed_integer_1_10", seed=3)[0]
    parser = AnswerParser(task)
    params = SamplingParams(max_new_tokens=task.max_new_tokens)
    expected: Counter = Counter()
    observed: Counter = Counter()
    for index in range(len(task.prompts)):  # 4 request ids × 100 replies
        logprobs = backend.score(task.prompt(index), list(parser.support), params)
        for answer, logprob in zip(parser.support, logprobs):
            expected[answer] += 100 * float(torch.tensor(logprob).exp())
        replies = backend.sample(task.prompt(index), list(range(1000 * index, 1000 * index + 100)), params)
        observed.update(a if (a := parser.parse(r.text).answer) in parser.support else "other" for r in replies)
    expected["other"] = 400 - sum(expected.values())
    assert sum(observed.values()) == 400 and observed["other"] < 200  # mostly valid: the comparison has power
    # Answers expected fewer than 5 times are pooled, so the chi-square approximation holds.
    small = [a for a in expected if expected[a] < 5 and a != "other"]
    for a in small:
        expected["other"] += expected.pop(a)
        observed["other"] += observed.pop(a, 0)
    cells = sorted(expected)
    statistic, p = stats.chisquare([observed.get(a, 0) for a in cells], [expected[a] for a in cells])
    assert p > 0.001, (statistic, dict(observed), {a: round(v, 1) for a, v in expected.items()})


def test_two_grpo_steps_with_and_without_the_shared_prompt_loss_end_on_the_same_weights(tmp_path, monkeypatch):
    import respread.restore.train as train_module
    from respread.restore.shared_prompt import share_prompts

    # A small random model with the embedded model's tokenizer: the full path on 16 long prompts stays cheap.
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct").load_path)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    ))
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    finals = {}
    for shared_loss in (True, False):
        build = train_module._grpo_trainer

        def trainer_with(*args, shared_loss=shared_loss, **kwargs):
            return share_prompts(build(*args, **kwargs), loss=shared_loss)  # rollouts shared (seeded) in both

        monkeypatch.setattr(train_module, "_grpo_trainer", trainer_with)
        # Random text often holds an English word (lenient parse), so rewards differ within groups from the start.
        config = TrainConfig(
            model=str(tmp_path / "tiny"), task="word", rewards=["spread-group"], parse="lenient", steps=2, group_size=4,
            batch_size=8, max_completion_length=4, learning_rate=1e-3, save_every=100, shared_prompt=False,
        )
        record = run_train(config, tmp_path / f"shared-{shared_loss}")
        monkeypatch.setattr(train_module, "_grpo_trainer", build)
        finals[shared_loss] = load_file(tmp_path / f"shared-{shared_loss}" / "final" / "model.safetensors")
        assert any(h.get("grad_norm", 0) > 0 for h in record["log_history"])  # a gradient flowed
    shared, full = finals[True], finals[False]
    original = model.state_dict()
    moved = max((shared[k] - original[k]).abs().max().item() for k in shared)
    apart = max((shared[k] - full[k]).abs().max().item() for k in shared)
    assert moved > 1e-4 and apart < 1e-5, (moved, apart)
