"""The sampler's distribution: logit bias, temperature, top-k, top-p and min-p applied to raw logits, the
Gumbel-max draw, and summed log-probabilities of teacher-forced answers under the same warping.

Pure tensor functions, shared by the transformers backend's sampling and exact scoring, so a score is the
exact probability the sampler gives a reply.
"""

from __future__ import annotations

from respread.types import SamplingParams


def summed_logprobs(targets, logits, mask, params: SamplingParams) -> list[float]:
    """log P(each padded row of targets) under the warped distribution, padding masked out."""
    import torch

    n, width = targets.shape
    logprobs = warped_logprobs(logits.reshape(n * width, -1), params).reshape(n, width, -1)
    picked = logprobs.gather(-1, targets[..., None]).squeeze(-1)
    return torch.where(mask > 0, picked, torch.zeros_like(picked)).sum(dim=1).tolist()


def warped_logprobs(logits, params: SamplingParams):
    """Log-probabilities after logit bias, temperature, top-k, top-p and min-p, in transformers' order.

    Temperature 0 is greedy: the argmax gets log-probability 0, everything else −inf.
    """
    import torch

    if params.logit_bias:
        ids = torch.tensor([t for t, _ in params.logit_bias], device=logits.device)
        bias = torch.tensor([b for _, b in params.logit_bias], dtype=logits.dtype, device=logits.device)
        logits = logits.index_add(-1, ids, bias.expand(*logits.shape[:-1], -1))
    if params.temperature == 0:
        greedy = torch.full_like(logits, float("-inf"))
        return greedy.scatter(-1, logits.argmax(-1, keepdim=True), 0.0)
    if params.temperature != 1:  # dividing by 1 would only copy [rows, V]
        logits = logits / params.temperature
    if params.top_k and params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a token when the mass before it already reaches top_p; always keep the first.
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= params.top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    if params.min_p > 0:
        probs = logits.softmax(-1)
        threshold = params.min_p * probs.max(-1, keepdim=True).values
        logits = logits.masked_fill(probs < threshold, float("-inf"))
    return logits.log_softmax(-1)


def gumbel_draw(logits, params: SamplingParams, uniforms):
    """Gumbel-max draw of one token per row: argmax(log p + Gumbel noise), noise from given uniforms [rows, V].

    The uniforms are consumed: the noise −log(−log u) overwrites them, which saves allocating four more [rows, V]
    tensors per step.
    """
    gumbel = uniforms.clamp_min_(1e-20).log_().neg_().log_().neg_()
    return gumbel.add_(warped_logprobs(logits, params)).argmax(-1)
