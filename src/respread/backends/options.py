"""How a model is loaded and prompted, the same for every command: device, dtype, adapter, chat template, ...

`ModelOptions` is what `--device`, `--dtype`, `--batch-size`, `--trust-remote-code`, `--revision`, `--adapter`,
`--system-prompt`, `--chat-template` and the vLLM engine's `--tensor-parallel-size`, `--gpu-memory-utilization`
and `--max-model-len` set on every command that loads a model, and what a Python caller passes to
`load_backend` or `respread.evaluate`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from respread.errors import RespreadError

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ModelOptions:
    device: str = "auto"  # auto: CUDA when available, else CPU; cpu, cuda, cuda:N, mps
    dtype: str = "auto"  # auto: bfloat16 where the device computes it natively, else float32
    batch_size: int = 64  # sequences decoded or scored together
    trust_remote_code: bool = False
    revision: str | None = None  # a hub model's branch, tag or commit
    adapter: str | None = None  # a PEFT adapter (folder or hub id) loaded on the model, then merged
    system_prompt: str | None = None  # the system message of every prompt that sets none of its own
    chat_template: str = "auto"  # auto: the tokenizer's when it has one; on; off (plain text); or a Jinja file
    tensor_parallel_size: int = 1  # vLLM engine
    gpu_memory_utilization: float = 0.9  # vLLM engine
    max_model_len: int | None = None  # vLLM engine

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise RespreadError(f"--dtype must be one of {', '.join(DTYPES)} (got {self.dtype!r})")
        if self.batch_size < 1:
            raise RespreadError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if self.chat_template not in ("auto", "on", "off") and not self.chat_template.endswith((".jinja", ".j2", ".txt", ".jinja2")):
            raise RespreadError(f"--chat-template takes auto, on, off or a Jinja file (.jinja, .j2); got {self.chat_template!r}")
        if self.tensor_parallel_size < 1 or not 0 < self.gpu_memory_utilization <= 1:
            raise RespreadError("--tensor-parallel-size must be >= 1 and --gpu-memory-utilization in (0, 1]")
        resolve_device(self.device, check_available=False)

    def as_dict(self) -> dict:
        return asdict(self)

    def without_adapter(self) -> "ModelOptions":
        """The same options for a model that already holds the adapter (a trained copy)."""
        return ModelOptions(**(self.as_dict() | {"adapter": None}))


def resolve_device(device: str, *, check_available: bool = True) -> str:
    """`auto` → `cuda` when a CUDA device is there, else `mps` on Apple silicon, else `cpu`; others as given.

    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("cuda:1", check_available=False)
    'cuda:1'
    """
    device = device.strip().lower()
    valid = device in ("auto", "cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isdigit())
    if not valid:
        raise RespreadError(f"--device takes auto, cpu, cuda, cuda:N or mps (got {device!r})")
    if device == "cpu" or not check_available and device != "auto":
        return device
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RespreadError(f"--device {device}: no CUDA device is visible here; use --device cpu (or auto)")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise RespreadError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible (cuda:0..)")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """`auto` → bfloat16 on a CUDA device that computes it natively, float32 elsewhere (older GPUs; CPUs, which
    without native bf16 run it hundreds of times slower); other values as given.

    >>> resolve_dtype("auto", "cpu")
    'float32'
    >>> resolve_dtype("float16", "cpu")
    'float16'
    """
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "float32"
