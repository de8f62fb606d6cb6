"""`--device` and `--dtype` resolution on machines this one is not: CUDA present (one or two devices) or absent."""

from __future__ import annotations

import pytest
import torch

from respread.backends.options import resolve_device, resolve_dtype
from respread.errors import RespreadError


@pytest.fixture
def gpus(monkeypatch):
    """Pretend `count` CUDA devices are visible (0: none), with or without native bf16."""
    def pretend(count: int, bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    return pretend


def test_auto_is_cpu_on_this_machine():
    assert not torch.cuda.is_available()
    assert resolve_device("auto") in ("cpu", "mps")


def test_auto_picks_cuda_when_a_gpu_is_visible(gpus):
    gpus(1)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("AUTO ") == "cuda"


def test_auto_falls_back_to_cpu_without_cuda(gpus, monkeypatch):
    gpus(0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


def test_cuda_n_is_kept_when_that_device_exists_and_refused_in_one_line_when_not(gpus):
    gpus(2)
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(RespreadError, match=r"--device cuda:2: only 2 CUDA device\(s\) are visible"):
        resolve_device("cuda:2")


def test_cuda_without_a_gpu_names_the_fix(gpus):
    gpus(0)
    with pytest.raises(RespreadError, match="no CUDA device is visible here; use --device cpu"):
        resolve_device("cuda:0")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:", "tpu"])
def test_a_device_name_that_is_not_one_is_refused(bad):
    with pytest.raises(RespreadError, match="--device takes auto, cpu, cuda, cuda:N or mps"):
        resolve_device(bad)


def test_auto_dtype_is_bf16_only_on_a_gpu_that_has_it(gpus):
    gpus(1, bf16=True)
    assert resolve_dtype("auto", "cuda:0") == "bfloat16"
    gpus(1, bf16=False)
    assert resolve_dtype("auto", "cuda") == "float32"
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
