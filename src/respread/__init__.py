"""respread: find where a language model's output diversity collapsed, and restore it.

The Python API (`respread.evaluate`, `respread.study`) runs what the command line runs; the pieces a TRL user
reaches for are `respread.rewards.make_reward`, `respread.callbacks.DiversityMonitor` and
`respread.restore.share_prompts`. Heavy modules load on first use, so `import respread` stays light.
"""

from respread.errors import RespreadError

__version__ = "0.1.0"
__all__ = [
    "RespreadError", "__version__", "evaluate", "study", "Results", "StudyResults", "ModelOptions", "load_backend",
    "make_reward", "share_prompts", "DiversityMonitor",
]

_LAZY = {
    "evaluate": "respread.api", "study": "respread.api", "Results": "respread.api", "StudyResults": "respread.api",
    "ModelOptions": "respread.backends.options", "load_backend": "respread.backends",
    "make_reward": "respread.restore.rewards", "share_prompts": "respread.restore.shared_prompt",
    "DiversityMonitor": "respread.restore.callbacks",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'respread' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
