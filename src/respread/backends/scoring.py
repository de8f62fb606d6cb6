"""Scoring for the transformers engine: the exact probability of each answer by teacher forcing (answers sharing a
token prefix computed once, as a trie), lm-evaluation-harness's `loglikelihood`, and whole next-token
distributions along given sequences. A mixin of `TransformersBackend`, which supplies the model, tokenizer,
renderer, prefill memo and forward pass.

The warping the sampler applies (logit bias, temperature, top-k, top-p, min-p) is applied to each step's
distribution too, so a score is the exact probability the sampler gives that reply.
"""

from __future__ import annotations

import copy
from typing import Sequence

from respread.backends.warping import summed_logprobs as _summed_logprobs, warped_logprobs as _warped_logprobs
from respread.types import Prompt, SamplingParams

TREE_NODES = 256  # trie nodes per forward pass in exact scoring: attention over a pass grows with its square


class TeacherForcing:
    def score(self, prompt: Prompt, answers: Sequence[str], params: SamplingParams | None = None) -> list[float]:
        params = params or SamplingParams()
        if self._tree_mask_kind() is not None:
            return self._tree_scores(prompt, answers, params)
        return self._each_forced_chunk(prompt, answers, lambda chunk, targets, logits, mask: _summed_logprobs(targets, logits, mask, params))

    def _tree_mask_kind(self) -> str | None:
        """Tree scoring passes its own 4D attention mask: sdpa takes it as booleans, eager as additive floats."""
        kind = getattr(self.model.config, "_attn_implementation", None)
        return kind if kind in ("sdpa", "eager") else None

    def _tree_scores(self, prompt: Prompt, answers: Sequence[str], params: SamplingParams) -> list[float]:
        """log P(answer + end-of-answer | prompt) for every answer, each shared token prefix computed once.

        The answers' tokens form a trie (1..1000 share "1", "10", "100"…): its nodes, at most TREE_NODES
        at a time, go through the model as one sequence after the prompt's cache, each attending to the
        prompt and its own ancestors only (a 4D mask) at the position its depth gives. That is the same
        computation as teacher-forcing each answer alone, done once per distinct prefix instead of once
        per answer: 1,111 positions instead of 3,893 for the integers 1..1000.
        """
        import torch

        prompt_ids = self._prompt_ids(prompt)
        continuations = self._continuations(prompt_ids, answers)
        scores = [0.0] * len(continuations)
        with torch.inference_mode():
            prompt_cache, last = self._prefill(prompt_ids, writable=False)  # each pass extends its own copy
            root = _warped_logprobs(last, params)[0]
            group: list[int] = []
            nodes: dict[tuple[int, ...], int] = {}
            for i in sorted(range(len(continuations)), key=lambda i: continuations[i]):  # shared prefixes adjacent
                prefixes = [tuple(continuations[i][:j]) for j in range(1, len(continuations[i]))]
                fresh = [p for p in prefixes if p not in nodes]
                if group and len(nodes) + len(fresh) > TREE_NODES:
                    self._score_tree(prompt_cache, len(prompt_ids), root, nodes, group, continuations, scores, params)
                    group, nodes = [], {}
                    fresh = prefixes
                for p in fresh:
                    nodes[p] = len(nodes)
                group.append(i)
            self._score_tree(prompt_cache, len(prompt_ids), root, nodes, group, continuations, scores, params)
        return scores

    def _score_tree(self, prompt_cache, prompt_len: int, root, nodes: dict, group: list[int], continuations, scores: list, params) -> None:
        import numpy as np
        import torch

        rows, targets, owners = [], [], []
        for i in group:
            c = continuations[i]
            for j, token in enumerate(c):
                rows.append(-1 if j == 0 else nodes[tuple(c[:j])])
                targets.append(token)
                owners.append(i)
        totals = torch.zeros(len(continuations), dtype=torch.float64)
        rows_t, targets_t, owners_t = torch.tensor(rows), torch.tensor(targets), torch.tensor(owners)
        at_root = rows_t < 0
        totals.index_add_(0, owners_t[at_root], root[targets_t[at_root].to(root.device)].double().cpu())
        if nodes:
            prefixes = sorted(nodes, key=nodes.get)  # insertion order: every parent before its children
            n = len(prefixes)
            visible = np.zeros((n, prompt_len + n), dtype=bool)
            visible[:, :prompt_len] = True
            for index, prefix in enumerate(prefixes):
                if len(prefix) > 1:
                    visible[index] = visible[nodes[prefix[:-1]]]
                visible[index, prompt_len + index] = True
            mask = torch.from_numpy(visible)[None, None].to(self.device)
            if self._tree_mask_kind() == "eager":
                mask = torch.zeros(mask.shape, dtype=self.model.dtype, device=self.device).masked_fill(~mask, torch.finfo(self.model.dtype).min)
            out, _ = self._forward(
                copy.deepcopy(prompt_cache),
                input_ids=torch.tensor([[p[-1] for p in prefixes]], device=self.device),
                position_ids=torch.tensor([[prompt_len + len(p) - 1 for p in prefixes]], device=self.device),
                attention_mask=mask,
            )
            logits = out.logits[0].float()
            logprobs = _warped_logprobs(logits, params)
            inner = ~at_root
            picked = logprobs[rows_t[inner].to(logprobs.device), targets_t[inner].to(logprobs.device)]
            totals.index_add_(0, owners_t[inner], picked.double().cpu())
        for i in group:
            scores[i] = float(totals[i])

    def loglikelihoods(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """log P(continuation | context) per (context, continuation): lm-evaluation-harness's `loglikelihood`.

        The context is plain text, read as is (no chat template; the tokenizer's own special tokens, as
        `encode` adds them); the continuation is tokenised after it, with no end of turn. Continuations of one
        token after a shared context (a multiple-choice letter) are read from one forward pass of the context.
        """
        import torch

        contexts: dict[str, list[int]] = {}
        for context, _ in requests:
            contexts.setdefault(context, self.tokenizer.encode(context))
        wanted = [(contexts[c], self._continuation_ids(c, contexts[c], x)) for c, x in requests]
        single = {tuple(ids) for ids, cont in wanted if len(cont) == 1}
        results: list[float] = [0.0] * len(requests)
        with torch.inference_mode():
            # One-token continuations: the context's last next-token distribution holds them all.
            singles = sorted(single, key=len, reverse=True)
            last: dict[tuple, object] = {}
            for start in range(0, len(singles), self.batch_size):
                batch = [list(ids) for ids in singles[start : start + self.batch_size]]
                for ids, logprobs in zip(batch, self.sequence_logprobs(batch, 1, next_token=True)):
                    last[tuple(ids)] = logprobs[-1]
            longer = [i for i, (ids, cont) in enumerate(wanted) if len(cont) != 1]
            for start in range(0, len(longer), self.batch_size):
                chunk = longer[start : start + self.batch_size]
                sequences = [wanted[i][0] + wanted[i][1] for i in chunk]
                keep = max(len(wanted[i][1]) for i in chunk)
                for i, logprobs in zip(chunk, self.sequence_logprobs(sequences, keep)):
                    cont = wanted[i][1]
                    rows = logprobs[len(logprobs) - len(cont):]
                    results[i] = float(rows.gather(-1, torch.tensor(cont, device=rows.device)[:, None]).sum())
        for i, (ids, cont) in enumerate(wanted):
            if len(cont) == 1:
                results[i] = float(last[tuple(ids)][cont[0]])
        return results

    def sequence_logprobs(self, sequences: Sequence[Sequence[int]], keep: int, *, next_token: bool = False):
        """log-softmax of the model's logits predicting each sequence's last `keep` tokens, [rows, keep, V]
        (with `next_token`, also the distribution after the last token: positions shift by one). Rows are
        left-padded together; position ids count real tokens only, so a row computes what it would alone."""
        import torch

        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + list(s) for s in sequences], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        tail = {"logits_to_keep": keep + 1} if self._last_logits_only else {}
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **tail).logits[:, -(keep + 1):]
        logits = logits[:, 1:] if next_token else logits[:, :-1]
        return logits.float().log_softmax(-1)

    def teacher_forced_logits(self, prompt: Prompt, answers: Sequence[str], reduce=None) -> list:
        """Raw next-token logits at every position of each answer followed by end-of-answer, unwarped.

        Returns one `(targets, logits)` per answer: the token ids scored ([L]) and the logits that predict
        each of them ([L, vocab]). `reduce(targets, logits)`, if given, is applied to each answer as soon as
        it is computed and its result kept instead, so a caller that needs a few columns (a logit-bias fit)
        never holds [L, vocab] for a thousand answers.
        """
        reduce = reduce or (lambda targets, logits: (targets, logits))
        return self._each_forced_chunk(
            prompt, answers, lambda chunk, targets, logits, _: [reduce(targets[i, : len(c)], logits[i, : len(c)]) for i, c in enumerate(chunk)]
        )

    def answer_token_ids(self, prompt: Prompt, answers: Sequence[str]) -> list[list[int]]:
        """The tokens scoring reads for each answer: the answer tokenised after the prompt, then end-of-answer.

        No model call: a caller that only needs the token set (which tokens a logit bias may touch) gets it here.
        """
        return self._continuations(self._prompt_ids(prompt), answers)

    def _continuations(self, prompt_ids: list[int], answers: Sequence[str]) -> list[list[int]]:
        prompt_text = self.tokenizer.decode(prompt_ids)  # once: every answer is tokenised after it
        return [self._continuation_ids(prompt_text, prompt_ids, answer) + self.end_of_answer_ids for answer in answers]

    def _each_forced_chunk(self, prompt: Prompt, answers: Sequence[str], per_chunk) -> list:
        """Run the prompt once, then teacher-force the answers a batch at a time; concatenate per_chunk's lists.

        `per_chunk(chunk, targets, logits, mask)` gets the chunk's token lists, padded targets [n, width], the
        raw logits predicting them [n, width, vocab] and the padding mask.
        """
        import torch

        prompt_ids = self._prompt_ids(prompt)
        continuations = self._continuations(prompt_ids, answers)
        results: list = []
        with torch.inference_mode():
            prompt_cache, first_logits = self._prefill(prompt_ids, writable=False)  # each chunk extends its own copy
            for start in range(0, len(continuations), self.batch_size):
                chunk = continuations[start : start + self.batch_size]
                results += per_chunk(chunk, *self._forced_chunk(copy.deepcopy(prompt_cache), first_logits, chunk))
        return results

    def _forced_chunk(self, cache, first_logits, chunk: list[list[int]]):
        """Padded targets [n, width], the logits predicting them [n, width, vocab] and the padding mask."""
        import torch

        n, width = len(chunk), max(len(c) for c in chunk)
        # Right padding is harmless: causal attention never lets a real position see a later pad.
        pad = self.end_of_answer_ids[0]
        targets = torch.tensor([c + [pad] * (width - len(c)) for c in chunk], device=self.device)
        mask = torch.tensor([[1.0] * len(c) + [0.0] * (width - len(c)) for c in chunk], device=self.device)
        cache.batch_repeat_interleave(n)
        if width > 1:
            logits = self._forward(cache, input_ids=targets[:, :-1])[0].logits.float()
            logits = torch.cat([first_logits.expand(n, -1)[:, None, :], logits], dim=1)
        else:
            logits = first_logits.expand(n, -1)[:, None, :]
        return targets, logits, mask

    def _continuation_ids(self, prompt_text: str, prompt_ids: list[int], answer: str) -> list[int]:
        """Tokens of `answer` as the model would produce them after the prompt (tokenised in context)."""
        full = self.tokenizer.encode(prompt_text + answer, add_special_tokens=False)
        if full[: len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
            return full[len(prompt_ids) :]
        return self.tokenizer.encode(answer, add_special_tokens=False)


