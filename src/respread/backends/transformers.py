"""transformers engine: seeded batched sampling that shares the prompt's KV cache, and exact scoring
(`respread.backends.scoring`).

Sampling. The prompt is run once; its KV cache is repeated across the batch, and rows that finish are
dropped from the batch, so a batch of short answers costs little more than its longest member.
Each row draws its tokens by the Gumbel-max trick from its own noise stream, seeded by that row's seed,
so a completion does not depend on which other rows shared its batch. (Inverse-CDF sampling was tried
first: it flips a draw whenever batch-size-dependent float rounding moves any of ~50k CDF boundaries
past the uniform, which here changed 2 of 64 completions; Gumbel-max only flips on a near-tie of the
two best perturbed logits.)

Scoring. Teacher forcing: the prompt is run once, then every candidate answer (plus the end-of-turn
marker) is scored in one padded batch. The warping the sampler applies (logit bias, temperature, top-k,
top-p, min-p) is applied to each step's distribution too, so a score is the exact probability the sampler
gives that reply.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
import logging
from typing import Sequence

from respread.types import Completion, Prompt, SamplingParams
from respread._compat import cache_keyword, forward_parameters, keep_cache_prefix, last_logits_only
from respread.backends.options import ModelOptions, resolve_device, resolve_dtype
from respread.backends.prompting import PromptRenderer
from respread.backends.scoring import TeacherForcing
from respread.backends.shared_prefix import MIN_SHARED, common_prefix_length, sample_packed
from respread.backends.warping import gumbel_draw as _draw
from respread.errors import RespreadError
from respread.models import merged_adapter, resolve_model

log = logging.getLogger(__name__)

PREFILL_MEMO = 16  # prompts whose prefill is kept (~2 MB each for a 135M model at 50 tokens)
PREFILL_MEMO_BYTES = 256 * 2**20  # and at most this much KV cache, for large models and long prompts
PACKED_FROM = 256  # prompts of at least this many tokens are decoded packed behind one cache row (shared_prefix)


class TransformersBackend(TeacherForcing):
    def __init__(self, model: str, options: ModelOptions | None = None, **overrides) -> None:
        """Load `model` (alias, path, hub id, or a PEFT adapter folder) as `options` say (keyword overrides win)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        options = ModelOptions(**((options or ModelOptions()).as_dict() | overrides))
        resolved = resolve_model(model)
        self.name = resolved.name
        device = resolve_device(options.device)
        dtype = resolve_dtype(options.dtype, device)
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        hub = {"revision": options.revision} if options.revision else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(resolved.load_path, trust_remote_code=options.trust_remote_code, **hub)
            self.model = AutoModelForCausalLM.from_pretrained(
                resolved.load_path, dtype=torch_dtype, trust_remote_code=options.trust_remote_code, **hub
            )
        except (OSError, ValueError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RespreadError(f"cannot load model '{model}': {first_line}") from exc
        for adapter in [a for a in (resolved.adapter, options.adapter) if a]:
            self.model = merged_adapter(self.model, adapter)
        self.model.to(device).eval()
        self.dtype = dtype
        self._setup(device, options.batch_size, PromptRenderer(
            self.tokenizer, name=self.name, chat_template=options.chat_template, system_prompt=options.system_prompt
        ))
        # Weights this backend loaded never change, so a prompt's prefill can be reused: exact scoring and
        # sampling of the same prompt (`eval --exact`) run it once. A `from_loaded` model may be training.
        self._prefills: OrderedDict | None = OrderedDict()

    @classmethod
    def from_loaded(cls, model, tokenizer, *, name: str = "in-memory", batch_size: int = 64, renderer: PromptRenderer | None = None) -> "TransformersBackend":
        """A backend over a model already in memory (e.g. the one a Trainer is training), loading nothing.

        The caller owns the model's train/eval mode; scoring and sampling run under `torch.inference_mode`.
        """
        backend = cls.__new__(cls)
        backend.name, backend.model, backend.tokenizer = name, model, tokenizer
        parameter = next(model.parameters())
        backend.dtype = str(parameter.dtype).removeprefix("torch.")
        backend._setup(str(parameter.device), batch_size, renderer or PromptRenderer(tokenizer, name=name))
        backend._prefills = None
        return backend

    def _setup(self, device: str, batch_size: int, renderer: PromptRenderer) -> None:
        self.device = device
        self.batch_size = batch_size
        self.renderer = renderer
        self.use_chat_template = renderer.chat
        self.end_token_ids = self._end_token_ids()
        # Only the last position's logits are read after a prompt; most causal LMs can skip the others.
        # A PEFT model (a LoRA run's monitor) passes these keywords through to its base model's forward.
        parameters = forward_parameters(self.model)
        self._last_logits_only = last_logits_only(parameters)
        self._cache_name = cache_keyword(parameters)
        self.end_of_answer_ids = renderer.end_of_answer_ids()
        self.line_ends_reply = renderer.line_ends_reply

    def _forward(self, cache, **inputs):
        """(model output, its KV cache): the forward pass extending `cache` (None: a new one)."""
        out = self.model(**inputs, use_cache=True, **({} if cache is None else {self._cache_name: cache}))
        return out, out[self._cache_name]

    # ---------------------------------------------------------------- prompts
    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees before its reply (`PromptRenderer`)."""
        return self.renderer.render(prompt)

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        return self.renderer.token_ids(prompt)

    def _end_token_ids(self) -> set[int]:
        ids = set()
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        return ids

    def _prefill(self, prompt_ids: Sequence[int], *, writable: bool = True):
        """(cache, last logits [1, V]) after the prompt. With `writable` the cache is the caller's own to extend
        or reshape; without, it may be the memo's and must only be read (or deep-copied). The logits are
        always read-only."""
        import torch

        key = tuple(prompt_ids)
        memo = self._prefills
        if memo is None or key not in memo:
            cache, start = self._memo_beginning(key)
            with torch.inference_mode():
                out, cache = self._forward(cache, input_ids=torch.tensor([list(prompt_ids[start:])], device=self.device), **self._last_logits_only)
            state = (cache, out.logits[:, -1, :].float().clone())  # clone: not a view pinning [1, L, V]
            if memo is None:
                return state
            memo[key] = state
            while len(memo) > 1 and (len(memo) > PREFILL_MEMO or sum(_cache_bytes(c) for c, _ in memo.values()) > PREFILL_MEMO_BYTES):
                memo.popitem(last=False)
        memo.move_to_end(key)
        cache, logits = memo[key]
        return (copy.deepcopy(cache) if writable else cache), logits

    def _memo_beginning(self, key: tuple[int, ...]):
        """(a copy of the memo's cache cropped to the longest beginning `key` shares with a remembered prompt, its
        length), or (None, 0) when none shares MIN_SHARED tokens: listed prompts differ only by their request id."""
        best, length = None, 0
        for other in self._prefills or ():
            shared = min(common_prefix_length([key, other]), len(key) - 1)
            if shared > length:
                best, length = other, shared
        if best is None or length < MIN_SHARED or not self._can_merge_caches():
            return None, 0
        cache = copy.deepcopy(self._prefills[best][0])
        keep_cache_prefix(cache, length)
        return cache, length

    # ---------------------------------------------------------------- sampling
    def sample(self, prompt: Prompt, seeds: Sequence[int], params: SamplingParams) -> list[Completion]:
        prompt_ids = self._prompt_ids(prompt)
        completions: list[Completion] = []
        for start in range(0, len(seeds), self.batch_size):
            completions += self._sample_batch(prompt_ids, seeds[start : start + self.batch_size], params)
        return completions

    def sample_many(self, requests: Sequence[tuple[Prompt, Sequence[int]]], params: SamplingParams) -> list[list[Completion]]:
        """`sample` for several prompts at once: rows of different prompts share each batch.

        A task with many prompts and few samples each (12 creative prompts × 10) would otherwise run
        batches of 10; here they fill batches of `batch_size`. Each prompt is still prefilled once, alone;
        the prompts' caches are left-padded to one length and the padding masked, so a row computes what
        it would alone up to float rounding (its draws come from its own seed either way).
        """
        prompt_ids = [self._prompt_ids(prompt) for prompt, _ in requests]
        rows = [(r, seed) for r, (_, seeds) in enumerate(requests) for seed in seeds]
        results: list[list[Completion]] = [[] for _ in requests]
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            by_prompt: dict[int, list[int]] = {}
            for r, _ in chunk:
                by_prompt.setdefault(r, [])
            if len(by_prompt) == 1 or not self._can_merge_caches():
                for r in by_prompt:
                    results[r] += self._sample_batch(prompt_ids[r], [seed for q, seed in chunk if q == r], params)
                continue
            completions = self._sample_batch([prompt_ids[r] for r, _ in chunk], [seed for _, seed in chunk], params)
            for (r, _), completion in zip(chunk, completions):
                results[r].append(completion)
        return results

    def _can_merge_caches(self) -> bool:
        """Merging left-padded caches needs plain full-attention cache layers and a mask the model reads."""
        if getattr(self, "_merge_ok", None) is None:
            from transformers import DynamicCache
            from transformers.cache_utils import DynamicLayer

            layers = DynamicCache(config=self.model.config).layers
            self._merge_ok = self._tree_mask_kind() is not None and bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
        return self._merge_ok

    def _prefill_rows(self, row_prompts: list[list[int]]):
        """Cache, last logits [rows, V] and a 2D attention mask for rows with different prompts (left-padded)."""
        import torch
        import torch.nn.functional as F

        unique = list(dict.fromkeys(tuple(p) for p in row_prompts))
        width = max(len(p) for p in unique)
        # The first cache is rebuilt in place below; the others are only read.
        prefills = [self._prefill(p, writable=i == 0) for i, p in enumerate(unique)]
        which = torch.tensor([unique.index(tuple(p)) for p in row_prompts], device=self.device)
        cache = prefills[0][0]
        for index, layer in enumerate(cache.layers):
            for name in ("keys", "values"):
                padded = torch.cat([
                    F.pad(getattr(prompt_cache.layers[index], name), (0, 0, width - len(p), 0)) for (prompt_cache, _), p in zip(prefills, unique)
                ])
                setattr(layer, name, padded.index_select(0, which))
        logits = torch.cat([last for _, last in prefills]).index_select(0, which)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in row_prompts], device=self.device)
        return cache, logits, mask

    def _sample_batch(self, prompt_ids: list[int] | list[list[int]], seeds: Sequence[int], params: SamplingParams) -> list[Completion]:
        """Sample one completion per seed; `prompt_ids` is one prompt for all rows or one per row."""
        return [
            Completion(text=self._decode(ids, params.stop), n_tokens=len(ids), finished=finished)
            for ids, _, finished in self._sample_ids(prompt_ids, seeds, params)
        ]

    def sample_token_ids(self, prompts: Sequence[Sequence[int]], seeds: Sequence[int], params: SamplingParams) -> list[tuple[list[int], int | None]]:
        """(token ids, the end-of-turn token that closed the reply, or None) per row, one prompt (ids) per row.

        Rows with the same prompt share its prefill. For a trainer's rollouts, where the ids are what the loss
        is taken over: a reply closed by a stop string or a base model's line end has end None, as a cut one.
        """
        prompts = [list(p) for p in prompts]
        rows = self._sample_ids(prompts[0] if len({tuple(p) for p in prompts}) == 1 else prompts, seeds, params)
        return [(ids, end) for ids, end, _ in rows]

    def _sample_ids(self, prompt_ids: list[int] | list[list[int]], seeds: Sequence[int], params: SamplingParams) -> list[tuple[list[int], int | None, bool]]:
        """(ids, end-of-turn token drawn or None, finished) per seed; see `_sample_batch`."""

        per_row = bool(prompt_ids) and isinstance(prompt_ids[0], list)
        rows = prompt_ids if per_row else [prompt_ids] * len(seeds)
        if len(seeds) > 1 and min(len(p) for p in rows) >= PACKED_FROM and self._tree_mask_kind() is not None:
            # A long prompt copied into every row's cache would cost rows × its length in memory and attention.
            return sample_packed(self, rows, seeds, params)
        return self._sample_ids_rowwise(prompt_ids, seeds, params)

    def _sample_ids_rowwise(self, prompt_ids: list[int] | list[list[int]], seeds: Sequence[int], params: SamplingParams) -> list[tuple[list[int], int | None, bool]]:
        """`_sample_ids` with each row's own copy of its prompt's cache."""
        import torch

        per_row = bool(prompt_ids) and isinstance(prompt_ids[0], list)

        n = len(seeds)
        # Each row's noise comes from its own generator: the draw never depends on the batch.
        generators = [torch.Generator().manual_seed(int(seed) % 2**63) for seed in seeds]
        generated: list[list[int]] = [[] for _ in range(n)]
        ended: list[int | None] = [None] * n  # the end-of-turn token a row drew
        stopped = [False] * n  # ended by a stop string or a base model's line end
        active = torch.arange(n)
        with torch.inference_mode():
            mask = positions = None
            if per_row:
                cache, logits, mask = self._prefill_rows(prompt_ids)
                positions = torch.tensor([len(p) for p in prompt_ids], device=self.device)
            else:
                cache, logits = self._prefill(prompt_ids)
                cache.batch_repeat_interleave(n)
                logits = logits.expand(n, -1)
            for step in range(params.max_new_tokens):
                rows = active.tolist()
                noise = torch.empty(len(rows), logits.shape[-1])
                for i, row in enumerate(rows):
                    noise[i].uniform_(generator=generators[row])  # the same stream torch.rand(V, generator) gives
                tokens = _draw(logits, params, noise.to(logits.device))
                keep = []
                for i, (row, token) in enumerate(zip(rows, tokens.tolist())):
                    if token in self.end_token_ids:
                        ended[row] = token
                        continue
                    generated[row].append(token)
                    if (params.stop or self.line_ends_reply) and self._hits_stop(generated[row], params.stop):
                        stopped[row] = True
                        continue
                    keep.append(i)
                if not keep or step == params.max_new_tokens - 1:
                    break
                if len(keep) < len(rows):
                    keep_index = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(keep_index)
                    tokens = tokens[keep_index]
                    active = active[torch.tensor(keep)]
                    if per_row:
                        mask, positions = mask[keep_index], positions[keep_index]
                extra = {}
                if per_row:
                    mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                    extra = {"attention_mask": mask, "position_ids": (positions + step)[:, None]}
                out, cache = self._forward(cache, input_ids=tokens[:, None].to(self.device), **extra)
                logits = out.logits[:, -1, :].float()
        return [(ids, end, end is not None or stop) for ids, end, stop in zip(generated, ended, stopped)]

    def _hits_stop(self, ids: list[int], stop: tuple[str, ...]) -> bool:
        if self.line_ends_reply and "\n" in self.tokenizer.decode(ids, skip_special_tokens=True).lstrip():
            return True
        tail = self.tokenizer.decode(ids[-8:], skip_special_tokens=True)
        return any(s in tail for s in stop)

    def _decode(self, ids: list[int], stop: tuple[str, ...]) -> str:
        # Byte-level tokens can end mid-character; the tokenizer replaces such bytes with U+FFFD,
        # so records are always valid UTF-8 and the damage stays visible.
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        for s in stop:
            cut = text.find(s)
            if cut != -1:
                text = text[:cut]
        if self.line_ends_reply:
            lead = len(text) - len(text.lstrip())
            cut = text.find("\n", lead)
            if cut != -1:
                text = text[:cut]
        return text


def _cache_bytes(cache) -> int:
    tensors = (getattr(layer, name, None) for layer in getattr(cache, "layers", ()) for name in ("keys", "values"))
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)
