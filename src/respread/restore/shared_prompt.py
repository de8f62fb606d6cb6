"""Train at the cost of the completions: each distinct prompt of a batch is run once, inside TRL's own trainers.

A GRPO group is G completions of one prompt, and `diffuse` scores many answers after one prompt, but TRL's
`GRPOTrainer` and `SFTTrainer` run the whole prompt forward and backward once per row. `share_prompts(trainer)`
makes such a trainer compute every distinct prompt once per batch, with gradients, and let all its rows attend
to that one copy of the prompt's keys and values:

* **loss.** TRL scores completions through `model(input_ids, attention_mask, labels, fused_lm_head=True)`
  (`trl.trainer.utils.add_fused_lm_head`). The wrapper splits each row where its labels begin: the part before
  (the prompt, less its last token) is run once per distinct prompt with `use_cache=True`; the cache is indexed
  out to the rows (`index_select`, whose backward sums the rows' gradients into the one prompt); the rest of each
  row (the prompt's last token and the completion) runs through TRL's own fused forward on top of that cache,
  with each token at the position it has in the full row. The per-token outputs are put back where the full
  forward would have them. This is the same computation as the full path (attention over the same keys at the
  same positions), so log-probabilities and gradients agree to float rounding (`tests/test_shared_prompt.py`).
* **rollouts.** `GRPOTrainer` generates with `model.generate`, from one copy of the prompt per completion. The
  wrapper samples with respread's own sampler instead: each distinct prompt is prefilled once and its rows
  decode together, each row from its own seed (trainer seed, step, row), so a resumed run draws what an
  unbroken one would. Settings it cannot reproduce (beams, repetition penalties, ...) leave `generate` to TRL.
* **self-check.** The first shared batch is also run the full way on a few of its rows (no gradients); if the
  log-probabilities disagree beyond float rounding, sharing is switched off for the run with one logged line
  and that batch is computed the full way.

Anything else (multimodal inputs, no fused head in this TRL version, rows with no shared prompt) goes through
TRL unchanged. In a user's own script it is one line after building the trainer: `share_prompts(trainer)`.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections import OrderedDict

from respread._compat import cache_keyword, forward_parameters, last_logits_only
from respread.types import SamplingParams

log = logging.getLogger(__name__)

# Keyword arguments the shared forward knows how to split; any other (pixel_values, token_type_ids, ...) falls back.
_SPLITTABLE = {"input_ids", "attention_mask", "num_items_in_batch", "use_cache", "return_dict"}
CHECK_ROWS = 4  # rows of the first shared batch also run the full way by the self-check
CHECK_TOLERANCE = {"float32": 1e-4, "float64": 1e-8}  # max |Δ log p| allowed; other dtypes: 5e-2
ROLLOUT_CACHE_TOKENS = 64 * 1024  # prompt tokens (rows × prompt length) whose KV cache one decoding chunk holds


def share_prompts(trainer, *, loss: bool = True, rollouts: bool = True, check: bool = True):
    """Make `trainer` (TRL `GRPOTrainer` or `SFTTrainer`) run each distinct prompt of a batch once; returns it.

    `loss=False` keeps TRL's own forward for the loss, `rollouts=False` its own generation; `check=False` skips
    the first-batch comparison with the full path. Call it after the trainer is built (it wraps the forward
    TRL installed) and before `train()`.
    """
    model = trainer.model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if loss and getattr(base.forward, "_respread_shared", None) is None:
        base.forward = SharedPromptForward(base, check=check)
    if rollouts and hasattr(trainer, "generation_config") and getattr(model.generate, "_respread_shared", None) is None:
        model.generate = SharedPromptRollouts(trainer, model, model.generate)
    return trainer


def shared_prompt_stats(trainer) -> dict:
    """What sharing did so far: calls shared, calls left to TRL, token positions run vs the full path's."""
    model = trainer.model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    shared = getattr(base.forward, "_respread_shared", None)
    return dict(shared.stats) if shared is not None else {}


class SharedPromptForward:
    """The model's forward, with `fused_lm_head=True` calls computed once per distinct prompt (see module doc)."""

    def __init__(self, model, *, check: bool = True) -> None:
        self.model = model
        self.inner = model.forward  # TRL's fused forward (bound); with fused_lm_head=False, the model's own
        self.check_pending = check
        self.enabled = True
        self._respread_shared = self
        parameters = forward_parameters(model)
        self.cache_name = cache_keyword(parameters)
        self.keep_last = last_logits_only(parameters)
        # The completions of one prompt are packed in one row behind its cache, kept apart by a 4D mask, which
        # sdpa takes as booleans and eager as additive floats; other attention kernels take no such mask.
        kind = getattr(model.config, "_attn_implementation", None)
        self.mask_kind = kind if kind in ("sdpa", "eager") else None
        self.stats = {"shared_calls": 0, "full_calls": 0, "positions_run": 0, "positions_full": 0}
        try:  # keep the signature readers see (generate validates model kwargs against it)
            self.__signature__ = inspect.signature(self.inner)
        except (TypeError, ValueError):
            pass

    def __getattr__(self, name):  # __func__, __self__, ... of the wrapped bound method
        return getattr(self.__dict__["inner"], name)

    def __call__(self, *args, fused_lm_head: bool = False, labels=None, **kwargs):
        plan = None
        given = {k for k, v in kwargs.items() if v is not None}  # PEFT passes inputs_embeds=None and the like
        if (self.enabled and self.mask_kind and fused_lm_head and labels is not None and not args and given <= _SPLITTABLE
                and not self._checkpointing()):
            kwargs = {k: kwargs[k] for k in given}
            plan = _plan(kwargs["input_ids"], kwargs.get("attention_mask"), labels)
        if plan is None:
            self.stats["full_calls"] += int(fused_lm_head)
            return self.inner(*args, fused_lm_head=fused_lm_head, labels=labels, **kwargs)
        if self.check_pending:
            self.check_pending = False
            if not self._agrees(plan, labels, kwargs):
                self.enabled = False
                return self.inner(fused_lm_head=True, labels=labels, **kwargs)
        self.stats["shared_calls"] += 1
        self.stats["positions_run"] += plan.positions_run
        self.stats["positions_full"] += int(labels.numel())
        return self._shared(plan, labels, kwargs)

    def _shared(self, plan: "_Plan", labels, kwargs):
        import torch

        from respread.backends.shared_prefix import as_attention_mask, packed_mask, run_prompts

        input_ids = kwargs["input_ids"]
        mask = kwargs.get("attention_mask")
        mask = torch.ones_like(input_ids) if mask is None else mask

        def forward(cache, **inputs):
            out = self.inner(**inputs, use_cache=True, **self.keep_last, **({} if cache is None else {self.cache_name: cache}))
            return out, out[self.cache_name]

        cache, prompt_mask, _, _ = run_prompts(forward, plan.prefixes, input_ids.device)
        ids, valid, positions, packed_labels = plan.packed_suffixes(input_ids, mask, labels)
        attend = as_attention_mask(packed_mask(prompt_mask, valid.bool(), plan.span), self.mask_kind, next(self.model.parameters()).dtype)
        out = self.inner(
            input_ids=ids,
            attention_mask=attend,
            position_ids=positions,
            labels=packed_labels,
            fused_lm_head=True,
            **{self.cache_name: cache},
            **({"num_items_in_batch": kwargs["num_items_in_batch"]} if "num_items_in_batch" in kwargs else {}),
        )
        fields = {name: plan.to_full(value) if _per_token(value, ids) else value for name, value in out.items()}
        if "label_mask" in fields:
            fields["label_mask"] = labels[:, 1:] != -100
        return type(out)(**fields)

    def _checkpointing(self) -> bool:
        """Gradient checkpointing drops the KV cache in training, which the shared prompt is: TRL's path then."""
        on = self.model.training and any(getattr(m, "gradient_checkpointing", False) for m in self.model.modules())
        if on and not getattr(self, "_told_checkpointing", False):
            self._told_checkpointing = True
            log.warning("respread: shared-prompt step off while gradient checkpointing is on (it keeps no KV cache)")
        return on

    def _agrees(self, plan: "_Plan", labels, kwargs) -> bool:
        """Run a few rows the full way and the shared way; False (logged) if their log-probabilities differ."""
        import torch

        rows = plan.check_rows()
        subset = {k: (v[rows] if hasattr(v, "shape") and v.shape[:1] == labels.shape[:1] else v) for k, v in kwargs.items()}
        subset.pop("num_items_in_batch", None)
        with torch.no_grad():
            full = self.inner(fused_lm_head=True, labels=labels[rows], **subset)
            small = _plan(subset["input_ids"], subset.get("attention_mask"), labels[rows])
            shared = self._shared(small, labels[rows], subset) if small is not None else None
        dtype = str(full.log_probs.dtype).removeprefix("torch.")
        tolerance = CHECK_TOLERANCE.get(dtype, 5e-2)
        worst = float("inf") if shared is None else float((shared.log_probs - full.log_probs).abs().max())
        if worst <= tolerance:
            return True
        log.warning(
            "respread: shared-prompt step disagrees with the full forward (max |Δ log p| %.3g > %.1g); "
            "training this run the full way", worst, tolerance,
        )
        return False


def _per_token(value, suffix_ids) -> bool:
    return hasattr(value, "shape") and value.dim() == 2 and value.shape == (suffix_ids.shape[0], suffix_ids.shape[1] - 1)


class _Plan:
    """How a batch splits. Row i's prefix is its real tokens before column L_i (the column before its first label):
    each distinct prefix is run once (`run_prompts`). Its suffix, columns [L_i, T), is packed with the other
    suffixes of the same prefix into one row, slot g `span` columns wide, on top of that prefix's cache."""

    def __init__(self, starts: list[int], owner: list[int], prefixes: list[list[int]], width: int) -> None:
        self.starts = starts  # L_i per row
        self.owner = owner  # distinct prefix of each row
        self.prefixes = prefixes  # token ids of each distinct prefix
        self.width = width  # T
        seen: dict[int, int] = {}
        self.slot = []
        for u in owner:
            self.slot.append(seen.get(u, 0))
            seen[u] = self.slot[-1] + 1
        self.span = max(width - s for s in starts)  # widest suffix
        self.slots = max(seen.values())
        self.positions_run = sum(len(p) for p in prefixes) + sum(width - s for s in starts)

    def packed_suffixes(self, input_ids, mask, labels):
        """Suffixes packed per prefix: ids, real-token mask, positions, labels [U, slots·span]. A token's position is
        its index among its row's real tokens."""
        positions = (mask.long().cumsum(1) - 1).clamp(min=0)
        u_count, width = len(self.prefixes), self.slots * self.span
        ids = input_ids.new_zeros(u_count, width)
        valid = mask.new_zeros(u_count, width)
        pos = positions.new_zeros(u_count, width)
        packed_labels = labels.new_full((u_count, width), -100)
        for row, (start, u, g) in enumerate(zip(self.starts, self.owner, self.slot)):
            where = slice(g * self.span, g * self.span + self.width - start)
            ids[u, where] = input_ids[row, start:]
            valid[u, where] = mask[row, start:]
            pos[u, where] = positions[row, start:]
            packed_labels[u, where] = labels[row, start:]
            packed_labels[u, g * self.span] = -100  # the prompt's last token is no label, nor predicted across slots
        return ids, valid, pos, packed_labels

    def to_full(self, values):
        """Per-token outputs of the packed suffixes [U, slots·span − 1] at the full forward's places [B, T − 1]."""
        import torch

        device = values.device
        columns = torch.arange(self.width - 1, device=device)[None, :]
        starts = torch.tensor(self.starts, device=device)[:, None]
        base = torch.tensor([g * self.span for g in self.slot], device=device)[:, None]
        index = (base + (columns - starts).clamp(min=0)).clamp(max=values.shape[1] - 1)
        picked = values.index_select(0, torch.tensor(self.owner, device=device)).gather(1, index)
        return torch.where(columns >= starts, picked, torch.zeros_like(picked))

    def check_rows(self) -> list[int]:
        """A few rows, from two distinct prefixes where there are two, for the self-check."""
        first = [r for r, o in enumerate(self.owner) if o == self.owner[0]][: CHECK_ROWS // 2]
        others = [r for r, o in enumerate(self.owner) if o != self.owner[0]][: CHECK_ROWS - len(first)]
        return sorted(first + others) or [0]


def _plan(input_ids, attention_mask, labels) -> _Plan | None:
    """Split a batch where rows share a prompt; None when no two rows do (the full path is then as cheap)."""
    import torch

    if input_ids is None or input_ids.dim() != 2 or labels.shape != input_ids.shape or input_ids.shape[0] < 2:
        return None
    scored = labels != -100
    scored[:, 0] = False  # the label of column 0 is never predicted
    if not bool(scored.any(dim=1).all()):
        return None
    starts = (scored.int().argmax(dim=1) - 1).tolist()
    mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    ids, real = input_ids.tolist(), mask.bool().tolist()
    keys: dict[tuple, int] = {}
    owner, prefixes = [], []
    for r, start in enumerate(starts):
        prefix = tuple(t for t, keep in zip(ids[r][:start], real[r][:start]) if keep)
        if not prefix or not real[r][start]:  # nothing before the last prompt token, or that token is padding
            return None
        if prefix not in keys:
            keys[prefix] = len(prefixes)
            prefixes.append(list(prefix))
        owner.append(keys[prefix])
    if len(prefixes) == len(starts):
        return None
    return _Plan(starts, owner, prefixes, input_ids.shape[1])


class SharedPromptRollouts:
    """`model.generate` for GRPO rollouts: each distinct prompt prefilled once, rows seeded by (seed, step, row)."""

    def __init__(self, trainer, model, original) -> None:
        self.trainer = trainer
        self.model = model
        self.original = original
        self._respread_shared = self
        self._step_calls: tuple[int, int] = (-1, 0)
        self.stats = {"shared_calls": 0, "full_calls": 0}

    def __getattr__(self, name):
        return getattr(self.__dict__["original"], name)

    def __call__(self, input_ids=None, attention_mask=None, generation_config=None, **kwargs):
        params = _sampling_params(generation_config) if input_ids is not None and not (set(kwargs) - {"disable_compile"}) else None
        if params is None:
            self.stats["full_calls"] += 1
            return self.original(input_ids=input_ids, attention_mask=attention_mask, generation_config=generation_config, **kwargs)
        self.stats["shared_calls"] += 1
        return self._generate(input_ids, attention_mask, params, generation_config)

    def _generate(self, input_ids, attention_mask, params: SamplingParams, generation_config):
        import torch

        from respread.backends.transformers import TransformersBackend

        trainer = self.trainer
        tokenizer = trainer.processing_class
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        prompts = [ids[m.bool()].tolist() for ids, m in zip(input_ids.cpu(), mask.cpu())]
        step = int(trainer.state.global_step)
        calls = self._step_calls[1] + 1 if self._step_calls[0] == step else 0
        self._step_calls = (step, calls)
        rank = int(getattr(trainer.accelerator, "process_index", 0))
        seeds = [_rollout_seed(trainer.args.seed, step, calls, rank, row) for row in range(len(prompts))]
        backend = TransformersBackend.from_loaded(self.model, tokenizer, batch_size=len(prompts))
        backend._prefills = OrderedDict()  # weights are fixed during one call: a prompt is prefilled once in it
        longest = max(len(p) for p in prompts)
        chunk = max(1, min(len(prompts), ROLLOUT_CACHE_TOKENS // longest))
        completions: list[tuple[list[int], int | None]] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(prompts), chunk):
                completions += backend.sample_token_ids(prompts[start : start + chunk], seeds[start : start + chunk], params)
        finally:
            self.model.train(was_training)
        pad = generation_config.pad_token_id if generation_config.pad_token_id is not None else tokenizer.pad_token_id
        width = max(len(ids) + (end is not None) for ids, end in completions)
        rows = [ids + ([end] if end is not None else []) for ids, end in completions]
        tail = torch.tensor([row + [pad] * (width - len(row)) for row in rows], dtype=input_ids.dtype)
        return torch.cat([input_ids, tail.to(input_ids.device)], dim=1)


def _rollout_seed(seed: int, step: int, call: int, rank: int, row: int) -> int:
    digest = hashlib.sha256(f"rollout|{seed}|{step}|{call}|{rank}|{row}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


def _sampling_params(config) -> SamplingParams | None:
    """The sampler settings `config` asks for, or None when it asks for something respread's sampler lacks."""
    if config is None or not getattr(config, "do_sample", True) or (getattr(config, "num_beams", 1) or 1) != 1:
        return None
    neutral = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "encoder_repetition_penalty": 1.0,
               "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "num_return_sequences": 1}
    for name, value in neutral.items():
        if getattr(config, name, value) not in (None, value):
            return None
    if getattr(config, "bad_words_ids", None) or getattr(config, "suppress_tokens", None) or getattr(config, "stop_strings", None):
        return None
    if getattr(config, "max_new_tokens", None) is None:
        return None
    return SamplingParams(
        temperature=float(config.temperature if config.temperature is not None else 1.0),
        top_p=float(config.top_p if config.top_p is not None else 1.0),
        top_k=int(config.top_k or 0),
        min_p=float(config.min_p or 0.0),
        max_new_tokens=int(config.max_new_tokens),
    )
