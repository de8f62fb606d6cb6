"""A model behind an OpenAI-compatible HTTP server (vLLM, SGLang, llama.cpp, llama-cpp-python, hosted APIs).

`--model openai:NAME --base-url http://host:port/v1`. Requests go through the `openai` client, which
retries 408/409/429/5xx answers and dropped connections with exponential backoff (honouring
Retry-After); at most `concurrency` requests are in flight. Each sample is its own request carrying
its own seed, so a server that honours `seed` gives the same reply for the same sample on a resumed run;
`samples_per_request > 1` asks for `n` replies at once instead, seeded by the group's first sample (faster
on servers that honour `n`, but the replies then depend on how samples were grouped, so a resumed run
draws fresh ones). A server that ignores `n` is noticed on its first answer and asked one sample per
request from then on.

Completions arrive through `sample_stream` as they finish, and `respread eval` writes each at once:
a server that dies mid-run loses nothing it already answered.

Exact mode needs the log-probabilities of fixed continuations: `/v1/completions` with `echo` and
`logprobs` (vLLM, llama-cpp-python). The prompt is rendered here with the served model's tokenizer
(`--tokenizer`), which also counts each continuation's tokens. Before the first score it is checked
once on the server itself: the echoed log-probabilities of a greedy continuation must equal the
log-probabilities the server reported while generating it. Servers that refuse, return nothing or
disagree get one line saying exact mode is not supported; no number is returned from them.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from typing import Iterator, Sequence

from respread.types import Completion, Prompt, SamplingParams
from respread.backends.options import ModelOptions
from respread.backends.prompting import PromptRenderer, chat_messages
from respread.errors import RespreadError

PREFIX = "openai:"
VERIFY_TOKENS = 6
VERIFY_TOLERANCE = 0.05  # nats per token: servers differ in float rounding, not by whole tokens


class OpenAIBackend:
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        endpoint: str = "chat",
        tokenizer: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        samples_per_request: int = 1,
        sampling_extras: bool = True,
        options: ModelOptions | None = None,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise RespreadError("the HTTP backend needs the openai client: pip install 'respread[http]'") from exc
        served = model[len(PREFIX):] if model.startswith(PREFIX) else model
        if not served:
            raise RespreadError("--model openai:NAME needs the served model's name after 'openai:' (the server's /v1/models lists it)")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise RespreadError(f"--model {model} needs --base-url (e.g. http://127.0.0.1:8000/v1) or $OPENAI_BASE_URL")
        if endpoint not in ("chat", "completions"):
            raise RespreadError(f"--endpoint must be chat or completions (got {endpoint!r})")
        if concurrency < 1 or samples_per_request < 1 or timeout <= 0 or max_retries < 0:
            raise RespreadError("--concurrency and --samples-per-request must be >= 1, --timeout > 0, --retries >= 0")
        self.name = PREFIX + served
        self.served = served
        self.base_url = base_url.rstrip("/")
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.samples_per_request = samples_per_request
        # OpenAI's own API rejects parameters outside its schema; every self-hosted engine wants them.
        self.neutral_extras = sampling_extras and "api.openai.com" not in self.base_url
        self._openai = openai
        # A key only where one is set: local servers take any; the key never reaches a record or a message.
        self.api_key_env = api_key_env
        self._api_key = os.environ.get(api_key_env) or "none"
        self._tokenizer_spec = tokenizer
        self._tokenizer = None
        self._renderer: PromptRenderer | None = None
        self.options = options or ModelOptions()
        self._exact_checked = False
        self._n_honoured: bool | None = None  # unknown until a request with n > 1 comes back
        if self.options.chat_template == "off":
            raise RespreadError("--chat-template off: a served model is asked through its chat template; serve a base model's "
                                "completions behind a template of your own (--chat-template FILE) instead")
        if endpoint == "completions" and not tokenizer:
            raise RespreadError("--endpoint completions sends the prompt as text, so it needs --tokenizer (the served model's chat template)")

    # ---------------------------------------------------------------- prompts
    def _local_tokenizer(self):
        if self._tokenizer is None:
            if not self._tokenizer_spec:
                raise RespreadError(
                    "exact mode over HTTP scores the prompt as text, so it needs the served model's chat template: "
                    "pass --tokenizer (an alias, model directory or hub id of the served model)"
                )
            from transformers import AutoTokenizer

            from respread.models import resolve_model

            resolved = resolve_model(self._tokenizer_spec)
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(resolved.load_path)
            except (OSError, ValueError) as exc:
                raise RespreadError(f"cannot load tokenizer '{self._tokenizer_spec}': {str(exc).strip().splitlines()[0]}") from exc
        return self._tokenizer

    def render(self, prompt: Prompt) -> str:
        """The prompt as text, by the served model's chat template (for the completions endpoint and scoring)."""
        if self._renderer is None:
            tokenizer = self._local_tokenizer()
            template = self.options.chat_template
            if template in ("auto", "on", "off") and not tokenizer.chat_template:
                raise RespreadError(
                    f"tokenizer '{self._tokenizer_spec}' has no chat template; over HTTP, serve a chat model, use --endpoint chat, "
                    "or pass --chat-template FILE"
                )
            self._renderer = PromptRenderer(tokenizer, name=self._tokenizer_spec, chat_template=template, system_prompt=self.options.system_prompt)
        return self._renderer.render(prompt)

    def _end_of_turn(self) -> str:
        tokenizer = self._local_tokenizer()
        return tokenizer.eos_token or ""

    # ---------------------------------------------------------------- requests
    def _client(self):
        return self._openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._api_key, timeout=self.timeout, max_retries=self.max_retries
        )

    def _sampling_body(self, params: SamplingParams) -> tuple[dict, dict]:
        body = {"max_tokens": params.max_new_tokens, "temperature": params.temperature, "top_p": params.top_p}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.logit_bias:
            body["logit_bias"] = {str(token): max(-100.0, min(100.0, bias)) for token, bias in params.logit_bias}
        if not self.neutral_extras:
            extra = {k: v for k, v in (("top_k", params.top_k), ("min_p", params.min_p)) if v}
            return body, extra
        # Not in OpenAI's schema, but vLLM, SGLang, llama.cpp and llama-cpp-python read them, and the last two
        # default to top-k 40, min-p 0.05 and a repeat penalty: unsent, the "model's own distribution" is not.
        extra = {
            "top_k": params.top_k,  # 0: no truncation (vLLM ≥ 0.8, llama.cpp; llama-cpp-python refuses -1)
            "min_p": params.min_p,
            "repeat_penalty": 1.0,  # llama.cpp, llama-cpp-python
            "repetition_penalty": 1.0,  # vLLM, SGLang
        }
        return body, extra

    async def _sample_one(self, client, prompt: Prompt, seed: int, n: int, params: SamplingParams) -> list[Completion] | None:
        body, extra = self._sampling_body(params)
        body |= {"model": self.served, "seed": seed % (2**31), "n": n}
        if self.endpoint == "chat":
            response = await client.chat.completions.create(messages=chat_messages(prompt, self.options.system_prompt), extra_body=extra or None, **body)
            texts = [(c.message.content or "", c.finish_reason) for c in response.choices]
        else:
            response = await client.completions.create(prompt=self.render(prompt), extra_body=extra or None, **body)
            texts = [(c.text or "", c.finish_reason) for c in response.choices]
        if len(texts) != n:
            if n > 1:
                return None  # the server ignores n: the caller asks again, one request per sample
            raise RespreadError(f"the server at {self.base_url} returned {len(texts)} replies for one request")
        used = getattr(getattr(response, "usage", None), "completion_tokens", None)
        tokens = round(used / n) if used is not None else -1  # n > 1: the request's mean (usage is per request)
        return [Completion(text=text, n_tokens=tokens, finished=reason != "length") for text, reason in texts]

    def _run(self, coroutine_factory):
        """Run an async job in a private event loop (a worker thread, so it works inside a running loop too)."""
        box: dict = {}

        def target():
            try:
                box["value"] = asyncio.run(coroutine_factory())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        worker.join()
        if "error" in box:
            raise self._explain(box["error"])
        return box["value"]

    def _explain(self, exc: BaseException) -> BaseException:
        """One line for what the server did; anything else is a bug and keeps its traceback."""
        openai = self._openai
        if isinstance(exc, RespreadError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            return RespreadError(
                f"the server at {self.base_url} did not answer within {self.timeout:g} s ({self.max_retries} retries); "
                "raise --timeout or check the server"
            )
        if isinstance(exc, openai.APIConnectionError):
            return RespreadError(f"cannot reach the server at {self.base_url} ({self.max_retries} retries); is it running?")
        if isinstance(exc, openai.AuthenticationError):
            return RespreadError(f"the server at {self.base_url} refused the API key (401); set ${self.api_key_env} (--api-key-env)")
        if isinstance(exc, openai.APIStatusError):
            message = str(getattr(exc, "message", exc)).strip().splitlines()[0][:300].replace(self._api_key, "***")
            return RespreadError(f"the server at {self.base_url} answered {exc.status_code}: {message}")
        return exc

    # ---------------------------------------------------------------- the Backend interface
    def sample_stream(
        self, requests: Sequence[tuple[Prompt, Sequence[int]]], params: SamplingParams
    ) -> Iterator[tuple[int, int, Completion]]:
        """(request index, position in its seeds, completion) as each completion arrives."""
        if self.endpoint == "chat" and any(p.prefill or p.thinking is not None for p, _ in requests):
            # Continuing a started assistant turn, or the thinking switch, are vLLM-only fields on the chat endpoint;
            # other servers ignore them and would answer a different prompt.
            raise RespreadError(
                "a prompt with a prefill or a thinking switch (--cot on:/off:prefill or template) needs --endpoint completions "
                "and --tokenizer over HTTP: respread then renders the prompt itself"
            )
        jobs = []  # (request index, first position, the group's seeds)
        for r, (_, seeds) in enumerate(requests):
            for start in range(0, len(seeds), self.samples_per_request):
                jobs.append((r, start, list(seeds[start : start + self.samples_per_request])))
        results: queue.Queue = queue.Queue()
        done = object()
        running: dict = {}

        async def run_all():
            running["loop"] = asyncio.get_running_loop()
            semaphore = asyncio.Semaphore(self.concurrency)
            async with self._client() as client:
                async def one(job):
                    r, start, group = job
                    if len(group) > 1:
                        async with semaphore:  # the flag is read once a slot is free, so only requests in flight still ask for n
                            completions = None
                            if self._n_honoured is not False:
                                completions = await self._sample_one(client, requests[r][0], group[0], len(group), params)
                        if completions is not None:
                            self._n_honoured = True
                            for offset, completion in enumerate(completions):
                                results.put((r, start + offset, completion))
                            return
                        self._n_honoured = False  # learnt once; later groups go one sample per request
                    # (n = 1 jobs and groups on a server that ignores n)
                    for offset, seed in enumerate(group):
                        async with semaphore:
                            completions = await self._sample_one(client, requests[r][0], seed, 1, params)
                        results.put((r, start + offset, completions[0]))

                tasks = running["tasks"] = [asyncio.create_task(one(job)) for job in jobs]
                try:
                    await asyncio.gather(*tasks)
                finally:
                    for task in tasks:
                        task.cancel()

        def target():
            try:
                asyncio.run(run_all())
                results.put(done)
            except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
                results.put(exc)

        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        try:
            while True:
                item = results.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise self._explain(item)
                yield item
        finally:
            # The consumer stopped early (an error while writing, Ctrl-C): stop asking the server for the rest.
            if worker.is_alive() and "loop" in running:
                def cancel_all():
                    for task in running.get("tasks", []):
                        task.cancel()

                running["loop"].call_soon_threadsafe(cancel_all)
                worker.join(timeout=30)

    def sample_many(self, requests: Sequence[tuple[Prompt, Sequence[int]]], params: SamplingParams) -> list[list[Completion]]:
        out: list[list[Completion | None]] = [[None] * len(seeds) for _, seeds in requests]
        for r, position, completion in self.sample_stream(requests, params):
            out[r][position] = completion
        return out  # type: ignore[return-value]

    def sample(self, prompt: Prompt, seeds: Sequence[int], params: SamplingParams) -> list[Completion]:
        return self.sample_many([(prompt, seeds)], params)[0]

    async def _echo(self, client, text: str):
        response = await client.completions.create(
            model=self.served, prompt=text, echo=True, logprobs=1, max_tokens=1, temperature=1.0
        )
        return response.choices[0], getattr(getattr(response, "usage", None), "completion_tokens", None)

    def _tail_logprobs(self, choice, generated: int | None, prompt_text: str, continuation: str) -> list[float]:
        """Log-probabilities of the continuation's tokens in an echoed prompt + continuation.

        They are found by count from the end (the continuation's length in tokens by the served model's
        tokenizer, before the `generated` tokens the request added), not by `text_offset`: llama-cpp-python's
        offsets skip special tokens, so they point into the wrong text.
        """
        logprobs = choice.logprobs
        if logprobs is None or not logprobs.token_logprobs:
            raise RespreadError("exact mode is not supported by this server (its /v1/completions echo returns no log-probabilities)")
        if generated is None:
            raise RespreadError("exact mode is not supported by this server (it reports no token usage to align the echo by)")
        count = self._continuation_length(prompt_text, continuation)
        end = len(logprobs.token_logprobs) - generated
        values = logprobs.token_logprobs[end - count : end]
        if count <= 0 or end - count < 1 or any(v is None for v in values):
            raise RespreadError("exact mode is not supported by this server (its echo does not cover the scored tokens)")
        return list(values)

    def _continuation_length(self, prompt_text: str, continuation: str) -> int:
        """How many tokens `continuation` adds after the prompt, refused where its first token merges with the prompt's end."""
        tokenizer = self._local_tokenizer()
        prompt_ids = tokenizer.encode(prompt_text, add_special_tokens=False)
        full_ids = tokenizer.encode(prompt_text + continuation, add_special_tokens=False)
        if full_ids[: len(prompt_ids)] != prompt_ids:
            raise RespreadError(
                f"exact mode over HTTP cannot score {continuation!r}: its first token merges with the end of the prompt, "
                "so its log-probability is not a sum over the prompt's continuation; score it with the local or vLLM backend"
            )
        return len(full_ids) - len(prompt_ids)

    async def _verify_exact(self, client, prompt_text: str) -> None:
        """The server's echoed log-probabilities must equal those it reports while generating the same tokens."""
        generated = await client.completions.create(
            model=self.served, prompt=prompt_text, max_tokens=VERIFY_TOKENS, temperature=0.0, logprobs=1
        )
        choice = generated.choices[0]
        if choice.logprobs is None or not choice.logprobs.token_logprobs:
            raise RespreadError("exact mode is not supported by this server (it returns no log-probabilities)")
        continuation = choice.text
        sampled = [lp for lp in choice.logprobs.token_logprobs if lp is not None]
        echoed_choice, added = await self._echo(client, prompt_text + continuation)
        echoed = self._tail_logprobs(echoed_choice, added, prompt_text, continuation)
        if choice.finish_reason == "stop" and len(sampled) == len(echoed) + 1:
            sampled = sampled[:-1]  # vLLM reports the end-of-turn token's log-probability; its text is not in `text`
        if not continuation or len(echoed) != len(sampled) or any(abs(a - b) > VERIFY_TOLERANCE for a, b in zip(echoed, sampled)):
            shown = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in list(zip(echoed, sampled))[:3])
            raise RespreadError(
                "exact mode is not supported by this server: its echoed prompt log-probabilities disagree with its own "
                f"generation log-probabilities for the same tokens (echo/generated: {shown or 'none'}; "
                f"{len(echoed)} vs {len(sampled)} tokens)"
            )

    def loglikelihoods(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """log P(continuation | context) per (context, continuation), contexts as plain text: the echoed
        log-probabilities of the completions endpoint (lm-evaluation-harness's `loglikelihood`)."""

        async def run_all():
            semaphore = asyncio.Semaphore(self.concurrency)
            async with self._client() as client:
                if not self._exact_checked and requests:
                    await self._verify_exact(client, requests[0][0])
                    self._exact_checked = True

                async def one(context: str, continuation: str) -> float:
                    async with semaphore:
                        choice, added = await self._echo(client, context + continuation)
                    return sum(self._tail_logprobs(choice, added, context, continuation))

                return await asyncio.gather(*(one(c, x) for c, x in requests))

        return list(self._run(run_all))

    def score(self, prompt: Prompt, answers: Sequence[str], params: SamplingParams | None = None) -> list[float]:
        params = params or SamplingParams()
        if params.temperature != 1.0 or params.top_p < 1.0 or params.top_k or params.min_p or params.logit_bias:
            raise RespreadError(
                "exact mode over HTTP scores the model's own distribution only (temperature 1, no top-p/top-k/min-p/bias): "
                "the server returns log-probabilities, not the logits a warped distribution needs"
            )
        prompt_text = self.render(prompt)
        end = self._end_of_turn()

        async def run_all():
            semaphore = asyncio.Semaphore(self.concurrency)
            async with self._client() as client:
                if not self._exact_checked:
                    try:
                        await self._verify_exact(client, prompt_text)
                    except self._openai.APIStatusError as exc:
                        message = str(getattr(exc, "message", exc)).strip().splitlines()[0][:200]
                        raise RespreadError(f"exact mode is not supported by this server ({exc.status_code}: {message})") from exc
                    self._exact_checked = True

                async def one(answer: str) -> float:
                    async with semaphore:
                        choice, added = await self._echo(client, prompt_text + answer + end)
                    return sum(self._tail_logprobs(choice, added, prompt_text, answer + end))

                return await asyncio.gather(*(one(a) for a in answers))

        return list(self._run(run_all))
