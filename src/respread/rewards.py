"""TRL reward functions that pay for spread (`make_reward`), at the import path a TRL user reaches for.

    from respread.rewards import make_reward
    GRPOTrainer(..., reward_funcs=[make_reward("log-rarity", task="integer_1_100", num_generations=8)])

The formulas and their definitions live in `respread.restore.rewards`.
"""

from respread.restore.rewards import REWARD_KINDS, make_reward, parse_reward_spec

__all__ = ["REWARD_KINDS", "make_reward", "parse_reward_spec"]
