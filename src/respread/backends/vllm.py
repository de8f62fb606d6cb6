"""A model run in-process by vLLM (`pip install 'respread[vllm]'`, a GPU machine): `--engine vllm`.

Every sample is its own request with its own seed (vLLM batches them itself), so a resumed run redraws
exactly what an unbroken one would. Exact mode reads vLLM's prompt log-probabilities of the prompt
followed by each answer and the end-of-turn token: the same quantity the transformers backend computes,
from the model's own distribution (temperature 1, no truncation).
"""

from __future__ import annotations

from typing import Sequence

from respread.types import Completion, Prompt, SamplingParams
from respread.backends.options import ModelOptions
from respread.backends.prompting import PromptRenderer
from respread.errors import RespreadError


class VLLMBackend:
    def __init__(self, model: str, options: ModelOptions | None = None) -> None:
        options = options or ModelOptions()
        try:
            import vllm
        except ImportError as exc:
            raise RespreadError("--engine vllm needs vLLM (a GPU machine): pip install 'respread[vllm]'") from exc
        from respread.models import resolve_model

        resolved = resolve_model(model)
        self.name = resolved.name
        self._vllm = vllm
        adapters = [a for a in (resolved.adapter, options.adapter) if a]
        self._lora = None
        if adapters:  # vLLM applies a LoRA adapter per request rather than merging it
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest("adapter", 1, adapters[-1])
        self.llm = vllm.LLM(
            resolved.load_path, dtype="auto" if options.dtype in ("auto", "float32") else options.dtype,
            trust_remote_code=options.trust_remote_code, revision=options.revision,
            tensor_parallel_size=options.tensor_parallel_size, gpu_memory_utilization=options.gpu_memory_utilization,
            max_model_len=options.max_model_len, seed=0, enable_lora=bool(adapters),
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.renderer = PromptRenderer(self.tokenizer, name=self.name, chat_template=options.chat_template, system_prompt=options.system_prompt)

    def render(self, prompt: Prompt) -> str:
        """The prompt text, as every backend renders it (`PromptRenderer`)."""
        return self.renderer.render(prompt)

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        # Token ids, not text: vLLM would add a BOS of its own in front of a chat template that has one.
        return self.renderer.token_ids(prompt)

    def _params(self, params: SamplingParams, seed: int):
        options = dict(
            n=1, seed=seed % (2**31), temperature=params.temperature, top_p=params.top_p,
            top_k=params.top_k if params.top_k else -1, min_p=params.min_p, max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
        )
        if self.renderer.line_ends_reply:
            options["stop"] = (options["stop"] or []) + ["\n"]  # a reply without a chat template ends at its line break
        if params.logit_bias:
            options["logit_bias"] = dict(params.logit_bias)
        return self._vllm.SamplingParams(**options)

    def sample_many(self, requests: Sequence[tuple[Prompt, Sequence[int]]], params: SamplingParams) -> list[list[Completion]]:
        inputs, settings, owners = [], [], []
        for r, (prompt, seeds) in enumerate(requests):
            ids = self._prompt_ids(prompt)
            for seed in seeds:
                inputs.append({"prompt_token_ids": ids})
                settings.append(self._params(params, seed))
                owners.append(r)
        outputs = self.llm.generate(inputs, settings, use_tqdm=False, lora_request=self._lora)
        results: list[list[Completion]] = [[] for _ in requests]
        for r, output in zip(owners, outputs):
            choice = output.outputs[0]
            results[r].append(Completion(choice.text, len(choice.token_ids), choice.finish_reason != "length"))
        return results

    def sample(self, prompt: Prompt, seeds: Sequence[int], params: SamplingParams) -> list[Completion]:
        return self.sample_many([(prompt, seeds)], params)[0]

    def score(self, prompt: Prompt, answers: Sequence[str], params: SamplingParams | None = None) -> list[float]:
        params = params or SamplingParams()
        if params.temperature != 1.0 or params.top_p < 1.0 or params.top_k or params.min_p or params.logit_bias:
            raise RespreadError("exact mode with vLLM scores the model's own distribution only (temperature 1, no truncation or bias)")
        prefix = self._prompt_ids(prompt)
        end = self.renderer.end_of_answer_ids()
        sequences = []
        for answer in answers:
            # The answer tokenized in context where the prompt's tokens stay a prefix, else on its own.
            joined = self.tokenizer.encode(self.render(prompt) + answer, add_special_tokens=not self.renderer.chat)
            tail = joined[len(prefix):] if joined[: len(prefix)] == prefix else self.tokenizer.encode(answer, add_special_tokens=False)
            sequences.append(prefix + tail + end)
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in sequences],
            self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0),
            use_tqdm=False, lora_request=self._lora,
        )
        scores = []
        for ids, output in zip(sequences, outputs):
            # prompt_logprobs[i] holds log P(token i | tokens before it), keyed by token id (None for the first).
            scores.append(sum(output.prompt_logprobs[i][ids[i]].logprob for i in range(len(prefix), len(ids))))
        return scores

    def loglikelihoods(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """log P(continuation | context) per (context, continuation), contexts as plain text (lm-eval's
        `loglikelihood`), from vLLM's prompt log-probabilities."""
        sequences, starts = [], []
        for context, continuation in requests:
            head = self.tokenizer.encode(context)
            joined = self.tokenizer.encode(context + continuation)
            tail = joined[len(head):] if joined[: len(head)] == head else self.tokenizer.encode(continuation, add_special_tokens=False)
            sequences.append(head + tail)
            starts.append(len(head))
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in sequences],
            self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0),
            use_tqdm=False, lora_request=self._lora,
        )
        return [
            sum(output.prompt_logprobs[i][ids[i]].logprob for i in range(start, len(ids)))
            for ids, start, output in zip(sequences, starts, outputs)
        ]
