"""Restore diversity: TRL reward functions, a collapse monitor, training, capability retention and the study.

`make_reward`, `share_prompts` and `DiversityMonitor` are meant for users' own TRL scripts; `respread train`
and `respread study` are built from the same pieces.
"""

from respread.restore.rewards import REWARD_KINDS, make_reward
from respread.restore.shared_prompt import share_prompts

__all__ = ["REWARD_KINDS", "make_reward", "share_prompts", "DiversityMonitor"]


def __getattr__(name: str):
    # The monitor imports transformers; keep `import respread.restore` light for reward-only users.
    if name == "DiversityMonitor":
        from respread.restore.callbacks import DiversityMonitor

        return DiversityMonitor
    raise AttributeError(name)
