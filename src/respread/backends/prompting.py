"""The one prompt renderer: a `Prompt` to the exact text (and tokens) a model reads before its reply.

Every engine renders through it, and so do training and the capability checks, so the distribution trained
is the one measured. With a chat template (the tokenizer's own, or a Jinja file given with `--chat-template`)
the prompt is a system turn (the prompt's own, else `--system-prompt`), few-shot turns and the user turn,
then the assistant's generation prompt; without one (`--chat-template off`, or a base model) it is plain text:
the system text, the few-shot pairs and the question, separated by blank lines, then a newline, and a
reply ends at its first line break. A prefill is appended as the reply's forced beginning.
"""

from __future__ import annotations

from pathlib import Path

from respread.types import Prompt
from respread.errors import RespreadError


def chat_messages(prompt: Prompt, system_prompt: str | None = None) -> list[dict]:
    """The chat messages of `prompt`: its system message (else `system_prompt`), few-shot turns, the user turn."""
    system = prompt.system if prompt.system is not None else system_prompt
    messages = [{"role": "system", "content": system}] if system else []
    for user, assistant in prompt.few_shot:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    messages.append({"role": "user", "content": prompt.user})
    return messages


class PromptRenderer:
    def __init__(self, tokenizer, *, name: str = "the model", chat_template: str | bool | None = "auto", system_prompt: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.name = name
        self.system_prompt = system_prompt
        if isinstance(chat_template, str) and chat_template not in ("auto", "on", "off"):
            path = Path(chat_template)
            try:
                tokenizer.chat_template = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise RespreadError(f"--chat-template {chat_template}: cannot read it ({exc.strerror})") from exc
            chat_template = "on"
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if chat_template in ("on", True) and not has_template:
            raise RespreadError(f"--chat-template on: {name} has no chat template; pass a Jinja file, or off for plain text")
        self.chat = has_template if chat_template in ("auto", None) else chat_template in ("on", True)

    @property
    def line_ends_reply(self) -> bool:
        """Without a chat template there is no end of turn: a reply ends at its first line break after some text."""
        return not self.chat

    def messages(self, prompt: Prompt) -> list[dict]:
        return chat_messages(prompt, self.system_prompt)

    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees before its reply."""
        if self.chat:
            switch = {}
            if prompt.thinking is not None:
                if "enable_thinking" not in str(self.tokenizer.chat_template):
                    raise RespreadError(
                        f"the chat template of {self.name} has no thinking switch (enable_thinking); "
                        "use --cot on:instruction or on:prefill instead"
                    )
                switch["enable_thinking"] = prompt.thinking
            text = self.tokenizer.apply_chat_template(self.messages(prompt), tokenize=False, add_generation_prompt=True, **switch)
        else:
            if prompt.thinking is not None:
                raise RespreadError(f"{self.name} is prompted without a chat template, so it has no thinking switch; use --cot on:instruction or on:prefill")
            system = prompt.system if prompt.system is not None else self.system_prompt
            parts = [system] if system else []
            parts += [f"{user}\n{assistant}" for user, assistant in prompt.few_shot]
            parts.append(prompt.user)
            text = "\n\n".join(parts) + "\n"
        return text + prompt.prefill

    def token_ids(self, prompt: Prompt) -> list[int]:
        """The rendered prompt's tokens. A chat template already holds the BOS token where the model wants one."""
        ids = self.tokenizer.encode(self.render(prompt), add_special_tokens=not self.chat)
        if not ids:
            raise RespreadError("the prompt renders to zero tokens")
        return ids

    def end_of_answer_ids(self) -> list[int]:
        """The tokens that close a reply: the end-of-turn token with a chat template, a line break without."""
        if self.chat:
            return [self.tokenizer.eos_token_id]
        return self.tokenizer.encode("\n", add_special_tokens=False)
