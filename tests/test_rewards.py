"""respread's TRL reward functions on constructed groups: formulas, TRL's calling convention, state, processes."""

from __future__ import annotations

import math
import os
import socket
from types import SimpleNamespace

import pytest
import torch.multiprocessing as mp

from respread.errors import RespreadError
from respread.restore.rewards import REWARD_KINDS, make_reward, parse_reward_spec

PROMPT = "Pick a random integer between 1 and 10. Reply with only the number."


def conversational(texts):
    return [[{"role": "assistant", "content": t}] for t in texts]


def call(reward, texts, groups=None, **extra):
    """Call a reward the way GRPOTrainer does: keyword arguments, dataset columns, trainer_state, log_metric."""
    columns = {"group_id": groups} if groups is not None else {}
    return reward(
        prompts=[PROMPT] * len(texts), completions=texts, completion_ids=[[1, 2]] * len(texts), **columns, **extra
    )


def test_every_kind_has_trl_signature_and_readable_name():
    for kind in REWARD_KINDS:
        reward = make_reward(kind, task="integer_1_10")
        assert reward.__name__ == f"{kind.replace('-', '_')}_integer_1_10"
        rewards = call(reward, ["3", "3", "seven", "11"], groups=[0, 0, 0, 0], trainer_state=None, log_extra=None)
        assert len(rewards) == 4 and all(isinstance(r, float) for r in rewards)


def test_validity_is_one_exactly_for_strictly_valid_answers_in_plain_and_chat_completions():
    reward = make_reward("validity", task="integer_1_10")
    texts = ["7", " **7.** ", "I pick 7", "11", ""]
    assert call(reward, texts) == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert call(reward, conversational(texts)) == [1.0, 1.0, 0.0, 0.0, 0.0]
    lenient = make_reward("validity", task="integer_1_10", parse="lenient")
    assert call(lenient, texts)[2] == 1.0


def test_spread_group_divides_by_the_answer_count_within_each_group():
    reward = make_reward("spread-group", task="integer_1_10")
    rewards = call(reward, ["3", "3", "5", "x", "3", "4"], groups=[0, 0, 0, 0, 1, 1])
    assert rewards == [0.5, 0.5, 1.0, 0.0, 1.0, 1.0]


def test_spread_group_without_a_group_column_cuts_a_repeated_prompt_into_num_generations_blocks():
    reward = make_reward("spread-group", task="integer_1_10", num_generations=2)
    # The same prompt twice in one batch: two groups of two, so "3" is unique in each.
    assert call(reward, ["3", "4", "3", "5"]) == [1.0, 1.0, 1.0, 1.0]
    whole = make_reward("spread-group", task="integer_1_10")
    assert call(whole, ["3", "4", "3", "5"]) == [0.5, 1.0, 0.5, 1.0]


def test_spread_history_pays_less_for_an_answer_the_policy_keeps_giving():
    reward = make_reward("spread-history", task="integer_1_10", alpha=0.0, half_life=1e9)
    first = call(reward, ["3"] * 8)
    assert first == [pytest.approx(0.1)] * 8  # share 1 with k = 10: reward 1/(k·1)
    second = call(reward, ["4", "5"])
    # History: 3 -> 8, 4 -> 1, 5 -> 1 (total 10); 4 and 5 have share 0.1 = 1/k, so they earn the full 1.
    assert second == [pytest.approx(1.0), pytest.approx(1.0)]


def test_spread_history_reaches_full_reward_only_at_uniform():
    reward = make_reward("spread-history", task="integer_1_10", alpha=0.0, half_life=1e9)
    uniform = call(reward, [str(i) for i in range(1, 11)] * 3)
    assert uniform == [1.0] * 30
    skewed = make_reward("spread-history", task="integer_1_10", alpha=0.0, half_life=1e9)
    rewards = call(skewed, [str(i) for i in range(1, 10)] + ["1"])  # 1 twice, 10 never
    assert rewards[0] < 1.0 and min(rewards[1:9]) == 1.0


def test_spread_history_lives_in_trainer_state_and_resumes_from_it():
    state = SimpleNamespace(stateful_callbacks={})
    reward = make_reward("spread-history", task="integer_1_10", alpha=0.0, half_life=1e9)
    call(reward, ["3"] * 4, trainer_state=state)
    saved = state.stateful_callbacks["respread/spread_history/integer_1_10"]
    assert saved["counts"] == {"3": 4.0}
    # A fresh reward function (a resumed process) continues from the state read back from the checkpoint.
    resumed = make_reward("spread-history", task="integer_1_10", alpha=0.0, half_life=1e9)
    restored = SimpleNamespace(stateful_callbacks={"respread/spread_history/integer_1_10": {"counts": dict(saved["counts"])}})
    assert call(resumed, ["3"], trainer_state=restored) == call(reward, ["3"], trainer_state=state)


def test_spread_history_decays_old_answers_and_logs_its_figures():
    logged = {}
    reward = make_reward("spread-history", task="integer_1_10", alpha=0.0, half_life=4)
    call(reward, ["3"] * 4, log_metric=logged.__setitem__)
    call(reward, ["5"] * 4, log_metric=logged.__setitem__)
    assert reward.history["counts"] == {"3": pytest.approx(2.0), "5": 4.0}  # halved after 4 completions
    assert logged["spread_history_integer_1_10/history_distinct"] == 2.0
    assert 0.0 < logged["spread_history_integer_1_10/history_tv"] < 1.0


def test_log_rarity_on_the_issues_group_of_four():
    reward = make_reward("log-rarity", task="integer_1_100")
    got = reward(prompts=["p"] * 4, completions=["7", "7", "9", "not a number"])
    assert got == pytest.approx([math.log(2), math.log(2), math.log(4), -1.0], abs=1e-12)


def test_log_rarity_counts_invalid_completions_in_the_group_size_and_takes_its_options():
    reward = make_reward("log-rarity", task="integer_1_10", num_generations=4, invalid_penalty=2.0)
    texts = ["3", "3", "3", "3", "5", "x", "x", "x"]
    # Group 0: everyone said 3 (reward log 1 = 0). Group 1: 5 is alone among K = 4 (log 4), three invalid (−2).
    assert call(reward, texts) == pytest.approx([0, 0, 0, 0, math.log(4), -2, -2, -2])
    clipped = make_reward("log-rarity", task="integer_1_10", clip=0.5)
    assert call(clipped, ["3", "4", "x", "y"], groups=[0, 0, 0, 0]) == pytest.approx([0.5, 0.5, -1, -1])
    with pytest.raises(RespreadError, match="clip > 0"):
        make_reward("log-rarity", task="integer_1_10", clip=0)


def test_darling_multiplies_quality_by_partition_diversity_with_a_floor():
    reward = make_reward("darling", task="integer_1_10", floor=0.1)
    # Classes by canonical answer: {3, 3.}, {5}, {junk}; Div = (n - |class|)/(n - 1), n = 4.
    rewards = call(reward, ["3", "3.", "5", "junk"], groups=[0, 0, 0, 0])
    assert rewards == [pytest.approx(2 / 3), pytest.approx(2 / 3), 1.0, 0.0]
    collapsed = call(reward, ["3", "3"], groups=[0, 0])
    assert collapsed == [0.1, 0.1]
    additive = make_reward("darling", task="integer_1_10", combine="additive", quality=lambda p, t: 0.5)
    assert call(additive, ["3", "5"], groups=[0, 0]) == [1.5, 1.5]


def test_darling_on_a_text_task_uses_the_quality_check_and_a_text_judge():
    reward = make_reward("darling", task="creative", max_completion_length=10)
    texts = ["the sea is blue and calm", "the sea is blue and calm", "a cat sat on a mat", "  "]
    ids = [[1] * 5, [1] * 5, [1] * 10, [1]]  # the third was cut at max length: fails quality
    rewards = reward(prompts=["p"] * 4, completions=texts, completion_ids=ids, group_id=[0] * 4)
    assert rewards[0] == rewards[1] == pytest.approx(2 / 3) and rewards[2] == 0.0 and rewards[3] == 0.0


def test_bad_reward_requests_are_one_line_errors():
    with pytest.raises(RespreadError, match="unknown reward kind"):
        make_reward("entropy", task="integer_1_10")
    with pytest.raises(RespreadError, match="unknown task"):
        make_reward("validity", task="nope")
    with pytest.raises(RespreadError, match="unknown option"):
        make_reward("validity", task="integer_1_10", colour=1)
    with pytest.raises(RespreadError, match="free text"):
        make_reward("spread-history", task="creative")
    with pytest.raises(RespreadError, match="weight"):
        parse_reward_spec("validity:lots")


# ------------------------------------------------------------------ a group split over two processes
BATCH = ["3", "3", "5", "x", "7", "7", "7", "2"]
GROUPS = [0, 0, 0, 0, 1, 1, 1, 1]
SPLIT = 3  # process 0 gets 3 completions, process 1 gets 5: group 0 straddles the two


def _rewards_in_process(rank: int, port: int, results) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        part = slice(0, SPLIT) if rank == 0 else slice(SPLIT, None)
        out = {}
        for kind in ("spread-group", "spread-history", "log-rarity", "darling"):
            reward = make_reward(kind, task="integer_1_10")
            state = SimpleNamespace(stateful_callbacks={})
            call(reward, BATCH[part], GROUPS[part], trainer_state=state)  # a first step fills the history
            out[kind] = call(reward, BATCH[part], GROUPS[part], trainer_state=state)
            out[kind + "/state"] = state.stateful_callbacks
        results[rank] = out
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_group_split_over_two_processes_gets_the_rewards_of_one_process():
    context = mp.get_context("spawn")
    with context.Manager() as manager:
        results = manager.dict()
        port = _free_port()
        processes = [context.Process(target=_rewards_in_process, args=(rank, port, results)) for rank in (0, 1)]
        for p in processes:
            p.start()
        for p in processes:
            p.join(timeout=120)
            assert p.exitcode == 0
        results = dict(results)
    for kind in ("spread-group", "spread-history", "log-rarity", "darling"):
        single = make_reward(kind, task="integer_1_10")
        state = SimpleNamespace(stateful_callbacks={})
        call(single, BATCH, GROUPS, trainer_state=state)
        expected = call(single, BATCH, GROUPS, trainer_state=state)
        assert results[0][kind] + results[1][kind] == expected, kind
        # The history is the same on every process, and equal to the single-process one.
        assert results[0][kind + "/state"] == results[1][kind + "/state"] == state.stateful_callbacks
