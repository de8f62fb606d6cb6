"""Every place respread bends to a library version: transformers, TRL and inflect. One file, so an upgrade is
checked here and nowhere else.
"""

from __future__ import annotations

import inspect
import warnings
from contextlib import contextmanager


def forward_parameters(model) -> dict:
    """The keyword parameters of a causal LM's forward (of its base model, for a PEFT model); {} if unreadable."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return dict(inspect.signature(base.forward).parameters)
    except (TypeError, ValueError):  # a wrapped forward without a readable signature
        return {}


def cache_keyword(parameters: dict) -> str:
    """transformers 5.24 renamed the forward's `past_key_values` to `cache` (and its output field); the old name
    still works there but warns on every call."""
    return "cache" if "cache" in parameters else "past_key_values"


def last_logits_only(parameters: dict) -> dict:
    """`logits_to_keep=1` where the model can skip the logits of every position but the last."""
    return {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}


def checkpointing_args(on: bool) -> dict:
    """transformers 5.24 renamed `gradient_checkpointing` to `activation_checkpointing`; the old name warns there,
    and TRL's configs still default it to True, so the switch is set under whichever name this version has."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return {"activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing": on}


def sequential_sampling_args() -> dict:
    """Training rows in dataset order (`train_sampling_strategy`, transformers 5); older versions shuffle."""
    from transformers import TrainingArguments

    return {"train_sampling_strategy": "sequential"} if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__ else {}


@contextmanager
def quiet_trl_deprecations():
    """TRL reads the model's `is_gradient_checkpointing`, which transformers 5.24 deprecates: nothing a user
    can change, so the warning is muted while TRL trains."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def keep_cache_prefix(cache, length: int) -> None:
    """Cut a plain (DynamicLayer) KV cache to its first `length` positions; `crop`'s meaning changed across
    transformers versions (a positive length is refused since 5.24), so the layers are sliced."""
    for layer in cache.layers:
        layer.keys, layer.values = layer.keys[..., :length, :], layer.values[..., :length, :]


def import_inflect():
    """inflect's engine. inflect wraps its methods in typeguard's @typechecked, which re-parses and recompiles each
    one from source at import (most of the import's time); respread passes plain str words, so inflect is
    imported with that decorator as the identity, for inflect's own import only."""
    import sys

    try:
        import typeguard
    except ImportError:  # an inflect without typeguard: nothing to skip
        typeguard = None
    if "inflect" not in sys.modules and typeguard is not None:
        checked = typeguard.typechecked
        typeguard.typechecked = lambda target=None, **_: target if target is not None else (lambda f: f)
        try:
            import inflect
        finally:
            typeguard.typechecked = checked
    import inflect

    return inflect.engine()
