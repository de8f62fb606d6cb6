"""A model run in-process by vLLM (`pip install 'respread[vllm]'`, a GPU machine): `--engine vllm`.

Every sample is its own request with its own seed (vLLM batches them itself), so a resumed run redraws
exactly what an unbroken one would. Exact mode reads vLLM's prompt log-probabilities of the prompt
followed by each answer and the end-of-turn token: the same quantity the transformers backend computes,
from the model's own distribution (temperature 1, no truncation).
"""

from __future__ import annotations

from typing import Sequence

from respread.backends import Completion, Prompt, SamplingParams
from respread.errors import RespreadError


class VLLMBackend:
    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
    ) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise RespreadError("--engine vllm needs vLLM (a GPU machine): pip install 'respread[vllm]'") from exc
        from respread.models import resolve_model

        resolved = resolve_model(model)
        self.name = resolved.name
        self._vllm = vllm
        self.llm = vllm.LLM(
            resolved.load_path, dtype="auto" if dtype == "float32" else dtype, trust_remote_code=trust_remote_code,
            tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len, seed=0,
        )
        self.tokenizer = self.llm.get_tokenizer()

    def render(self, prompt: Prompt) -> str:
        """The prompt text, as the transformers backend renders it (chat template, else plain text and a newline)."""
        messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
        for user, assistant in prompt.few_shot:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        messages.append({"role": "user", "content": prompt.user})
        if not self.tokenizer.chat_template:
            if prompt.thinking is not None:
                raise RespreadError(f"{self.name} has no chat template, so no thinking switch; use --cot on:instruction or on:prefill")
            parts = [prompt.system] if prompt.system else []
            parts += [f"{user}\n{assistant}" for user, assistant in prompt.few_shot]
            return "\n\n".join(parts + [prompt.user]) + "\n" + prompt.prefill
        if prompt.thinking is not None and "enable_thinking" not in str(self.tokenizer.chat_template):
            raise RespreadError(f"the chat template of {self.name} has no thinking switch (enable_thinking); use --cot on:instruction")
        switch = {} if prompt.thinking is None else {"enable_thinking": prompt.thinking}
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **switch) + prompt.prefill

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        # Token ids, not text: vLLM would add a BOS of its own in front of a chat template that has one.
        return self.tokenizer.encode(self.render(prompt), add_special_tokens=not self.tokenizer.chat_template)

    def _params(self, params: SamplingParams, seed: int):
        options = dict(
            n=1, seed=seed % (2**31), temperature=params.temperature, top_p=params.top_p,
            top_k=params.top_k if params.top_k else -1, min_p=params.min_p, max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
        )
        if not self.tokenizer.chat_template:
            options["stop"] = (options["stop"] or []) + ["\n"]  # a base model's reply ends at its line break
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
        outputs = self.llm.generate(inputs, settings, use_tqdm=False)
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
        end = [self.tokenizer.eos_token_id] if self.tokenizer.chat_template else self.tokenizer.encode("\n", add_special_tokens=False)
        sequences = []
        for answer in answers:
            # The answer tokenized in context where the prompt's tokens stay a prefix, else on its own.
            joined = self.tokenizer.encode(self.render(prompt) + answer, add_special_tokens=not self.tokenizer.chat_template)
            tail = joined[len(prefix):] if joined[: len(prefix)] == prefix else self.tokenizer.encode(answer, add_special_tokens=False)
            sequences.append(prefix + tail + end)
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in sequences],
            self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0),
            use_tqdm=False,
        )
        scores = []
        for ids, output in zip(sequences, outputs):
            # prompt_logprobs[i] holds log P(token i | tokens before it), keyed by token id (None for the first).
            scores.append(sum(output.prompt_logprobs[i][ids[i]].logprob for i in range(len(prefix), len(ids))))
        return scores
