"""Run several prompts that share text once each, and their common beginning once, for sampling and training.

Listed tasks repeat a long system message (every candidate) before a short user turn that differs by its
request id; a GRPO step holds several such prompts, each with many completions. `run_prompts` runs the common
beginning once, then each prompt's own rest once on top of it, and returns one KV cache row per prompt.
Completions are then packed behind their prompt's row, kept apart by a 4D attention mask (`packed_mask`), so
no prompt's keys and values are ever copied per completion.

Positions are each token's index among its row's real tokens (left padding skipped), as `generate` numbers
a left-padded batch; with rotary position embeddings that is the full forward's computation up to a shift
that leaves attention unchanged.
"""

from __future__ import annotations

from typing import Callable, Sequence

MIN_SHARED = 32  # a common beginning shorter than this is not worth a forward call of its own

# forward(cache or None, input_ids, attention_mask, position_ids) -> (model output with .logits, cache)
Forward = Callable[..., tuple]


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest beginning every sequence shares.

    >>> common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]])
    2
    """
    first, n = sequences[0], min(len(s) for s in sequences)
    for i in range(n):
        if any(s[i] != first[i] for s in sequences):
            return i
    return n


def run_prompts(forward: Forward, prompts: Sequence[Sequence[int]], device, *, min_shared: int = MIN_SHARED):
    """Cache [U, L] after each distinct prompt, its mask [U, L] (bool; prompts left-padded), the logits after each
    prompt's last token [U, V] and each prompt's length. The common beginning runs once when it is long enough."""
    import torch

    lengths = [len(p) for p in prompts]
    shared = min(common_prefix_length(prompts), min(lengths) - 1)
    if len(prompts) > 1 and shared >= min_shared:
        head = torch.tensor([list(prompts[0][:shared])], device=device)
        _, cache = forward(None, input_ids=head, position_ids=torch.arange(shared, device=device)[None])
        _repeat_rows(cache, len(prompts))
        tails = [list(p[shared:]) for p in prompts]
    else:
        shared, cache, tails = 0, None, [list(p) for p in prompts]
    width = max(len(t) for t in tails)
    ids = torch.tensor([[0] * (width - len(t)) + t for t in tails], device=device)
    tail_mask = torch.tensor([[False] * (width - len(t)) + [True] * len(t) for t in tails], device=device)
    mask = torch.cat([torch.ones(len(prompts), shared, dtype=torch.bool, device=device), tail_mask], dim=1)
    positions = (mask.long().cumsum(1) - 1).clamp(min=0)[:, shared:]
    out, cache = forward(cache, input_ids=ids, attention_mask=mask.long(), position_ids=positions)
    return cache, mask, out.logits[:, -1, :], lengths


def _repeat_rows(cache, rows: int) -> None:
    """One cache row made `rows` rows. `index_select` (not `expand`) so that in training each row's gradient flows
    back into the one computed row, summed."""
    import torch

    for layer in cache.layers:
        index = torch.zeros(rows, dtype=torch.long, device=layer.keys.device)
        layer.keys = layer.keys.index_select(0, index)
        layer.values = layer.values.index_select(0, index)


def packed_mask(prompt_mask, valid, span: int):
    """Boolean attention mask [U, 1, Q, L + Q] for completions packed behind their prompts' cache rows.

    `valid` [U, Q] marks real tokens of the packed completions, slot g occupying columns [g·span, (g+1)·span).
    A real token sees its prompt's real tokens and its own slot's real tokens up to itself; never another slot.
    Padding sees only itself, so no row of the mask is empty.
    """
    import torch

    width = valid.shape[1]
    index = torch.arange(width, device=valid.device)
    same_slot = (index[:, None] // span) == (index[None, :] // span)
    causal = index[None, :] <= index[:, None]
    within = (same_slot & causal)[None] & valid[:, None, :] & valid[:, :, None]
    within = within | torch.eye(width, dtype=torch.bool, device=valid.device)[None]
    prompt = prompt_mask[:, None, :] & valid[:, :, None]
    return torch.cat([prompt.expand(-1, width, -1), within], dim=2)[:, None]


def as_attention_mask(mask, kind: str, dtype):
    """A boolean 4D mask in the form the attention kernel takes: sdpa booleans, eager additive floats."""
    import torch

    if kind == "eager":
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
    return mask


def sample_packed(backend, prompts: Sequence[Sequence[int]], seeds: Sequence[int], params) -> list[tuple[list[int], int | None, bool]]:
    """(ids, end-of-turn token drawn or None, finished) per row, one prompt (token ids) per row, prompts run once.

    Each distinct prompt is run once (its common beginning with the others once too); its rows decode packed
    behind that one cache row, one slot each, under `packed_mask`. Each row's noise comes from its own seed and
    is drawn in the same order as `TransformersBackend._sample_ids` draws it, so a row gets the tokens it would get
    there, up to float rounding (which a Gumbel-max draw turns into a different token only at a near-tie).
    """
    import torch

    from respread.backends.warping import gumbel_draw

    device = backend.device
    distinct: dict[tuple, int] = {}
    owner, slot, filled = [], [], {}
    for prompt in prompts:
        u = distinct.setdefault(tuple(prompt), len(distinct))
        owner.append(u)
        slot.append(filled.get(u, 0))
        filled[u] = slot[-1] + 1
    slots = max(filled.values())
    n = len(prompts)
    generators = [torch.Generator().manual_seed(int(seed) % 2**63) for seed in seeds]
    generated: list[list[int]] = [[] for _ in range(n)]
    ended: list[int | None] = [None] * n
    stopped = [False] * n
    active = list(range(n))
    kind = backend._tree_mask_kind()
    dtype = next(backend.model.parameters()).dtype
    owner_t, slot_t = torch.tensor(owner, device=device), torch.tensor(slot, device=device)
    with torch.inference_mode():
        cache, prompt_mask, last, lengths = run_prompts(
            lambda c, **inputs: backend._forward(c, **inputs, **backend._last_logits_only), list(distinct), device
        )
        logits = last.float().index_select(0, owner_t)  # [n, V], row order
        lengths_t = torch.tensor(lengths, device=device)
        own = torch.eye(slots, dtype=torch.bool, device=device)
        for step in range(params.max_new_tokens):
            noise = torch.empty(len(active), logits.shape[-1])
            for i, row in enumerate(active):
                noise[i].uniform_(generator=generators[row])
            tokens = gumbel_draw(logits[torch.tensor(active, device=device)], params, noise.to(device)).tolist()
            still = []
            for row, token in zip(active, tokens):
                if token in backend.end_token_ids:
                    ended[row] = token
                    continue
                generated[row].append(token)
                if (params.stop or backend.line_ends_reply) and backend._hits_stop(generated[row], params.stop):
                    stopped[row] = True
                    continue
                still.append(row)
            active = still
            if not active or step == params.max_new_tokens - 1:
                break
            # Every slot takes a token each step (finished and empty slots a filler that only they see).
            ids = torch.zeros(len(distinct), slots, dtype=torch.long, device=device)
            for row in range(n):
                if generated[row]:
                    ids[owner[row], slot[row]] = generated[row][-1]
            positions = (lengths_t[:, None] + step).expand(-1, slots)
            seen = torch.cat([prompt_mask[:, None, :].expand(-1, slots, -1), own.repeat(1, step + 1)[None].expand(len(distinct), -1, -1)], dim=2)
            out, cache = backend._forward(
                cache, input_ids=ids, attention_mask=as_attention_mask(seen[:, None], kind, dtype), position_ids=positions
            )
            logits = out.logits.float()[owner_t, slot_t]  # [n, V]
    return [(ids, end, end is not None or stop) for ids, end, stop in zip(generated, ended, stopped)]
