"""`respread train`: a short training pass that rewards spread on one task, on TRL's trainers.

Two methods, compared on the same study:

* `grpo`: TRL's `GRPOTrainer` with respread's reward functions (`respread.restore.rewards`), several allowed
  with weights. Prompts are rendered exactly as `respread eval` renders them (chat template and all) and
  passed to TRL as plain text, so the policy trained is the distribution measured.
* `diffuse`: match a closed task's answer distribution to uniform directly, as in Zhang et al. 2024,
  "Forcing Diffuse Distributions out of Language Models": minimise −(1/k) Σ_a log p(a | prompt) over the k
  valid answers, i.e. KL(uniform ‖ p) up to a constant, by teacher forcing. It runs on TRL's `SFTTrainer`
  over a dataset that lists every valid answer once per epoch after the task's prompt (completion-only loss),
  which is a stochastic-gradient version of that loss. (SFT averages the loss over tokens, so multi-token
  answers weigh a little less per token than one-token answers.)

Both run each distinct prompt of a batch once (`respread.restore.shared_prompt`; `shared_prompt=False` turns
it off), and GRPO rollouts come from respread's sampler with one prefill per prompt. A task asked with request
ids (the listed panel) gets a fresh id per GRPO group or diffuse step, drawn from the seed, apart from the ids
it is measured on.

A run directory holds `checkpoints/` (Trainer checkpoints every `save_every` steps, with optimizer, RNG and
reward state), `monitor.jsonl` (the collapse monitor), `final/` (the trained model in HF format, LoRA merged)
and `train.json` (config, data, seed, versions, wall time, CPU/GPU-hours, log history). `kill -9` then
`resume=True` continues from the last checkpoint.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from respread.errors import RespreadError
from respread._compat import checkpointing_args, quiet_trl_deprecations, sequential_sampling_args
from respread.backends.options import ModelOptions, resolve_device, resolve_dtype
from respread.models import DEFAULT_MODEL, merged_adapter, resolve_model
from respread.provenance import versions
from respread.records import write_artifact, write_json_atomic
from respread.restore.rewards import make_reward, parse_reward_spec, resolve_task
from respread.restore.shared_prompt import share_prompts, shared_prompt_stats

CONFIG_FILE = "train_config.json"
LOSS_TYPES = ("dapo", "dr_grpo", "grpo", "bnpo")
TRAIN_FILE = "train.json"


@dataclass
class TrainConfig:
    model: str = DEFAULT_MODEL
    task: str = "integer_1_100"
    method: Literal["grpo", "diffuse"] = "grpo"
    rewards: list[str] = field(default_factory=lambda: ["spread-history"])  # kind or kind:weight
    lora: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    learning_rate: float = 2e-5
    beta: float = 0.0
    loss_type: str = "dapo"  # TRL's aggregation of token losses; "dr_grpo" sums them (up to a constant)
    max_grad_norm: float = 1.0  # 0: no gradient clipping
    reward_options: dict = field(default_factory=dict)  # {"log-rarity": {"invalid_penalty": 2.0}, ...}
    steps: int = 40
    group_size: int = 8
    batch_size: int = 16  # completions per optimizer step (grpo); answers per step (diffuse)
    micro_batch_size: int | None = None  # rows per forward/backward (gradient accumulation makes up the step)
    max_completion_length: int | None = None  # None: the task's own max_new_tokens
    temperature: float = 1.0
    seed: int = 0
    save_every: int = 10
    monitor_every: int = 10
    monitor_tasks: list[str] | None = None  # None: the trained task when it is closed
    parse: str = "strict"
    task_files: list[str] = field(default_factory=list)
    device: str = "auto"  # auto: CUDA when available, else CPU; cuda:N honoured
    dtype: str = "auto"  # mixed precision: auto = bfloat16 where the device computes it natively, else float32
    trust_remote_code: bool = False
    revision: str | None = None
    adapter: str | None = None  # a PEFT adapter loaded on the model (and merged) before training starts
    chat_template: str = "auto"  # as every command renders prompts (`respread.backends.prompting`)
    system_prompt: str | None = None
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: memory for time
    report_to: list[str] = field(default_factory=list)  # trainer loggers: tensorboard, wandb, ...
    save_adapter: bool = False  # LoRA: final/ holds the small PEFT adapter instead of the merged model
    vllm_server: str | None = None  # TRL's `trl vllm-serve` URL: rollouts generated there (GPU machines)
    shared_prompt: bool = True  # each distinct prompt of a batch run once (loss and rollouts)

    def validate(self) -> None:
        checks = [
            (self.method in ("grpo", "diffuse"), f"--method must be grpo or diffuse (got {self.method!r})"),
            (self.steps >= 1, "--steps must be at least 1"),
            (self.group_size >= 2, "--group-size must be at least 2 (GRPO compares completions within a group)"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.method == "diffuse" or self.batch_size % self.group_size == 0,
             f"--batch-size ({self.batch_size}) must be a multiple of --group-size ({self.group_size})"),
            (self.micro_batch_size is None or (self.micro_batch_size >= 1 and self.batch_size % self.micro_batch_size == 0),
             f"--micro-batch-size ({self.micro_batch_size}) must divide --batch-size ({self.batch_size})"),
            (self.learning_rate > 0, "--lr must be positive"),
            (self.beta >= 0, "--beta must be >= 0"),
            (self.temperature > 0, "--temperature must be positive"),
            (self.save_every >= 1 and self.monitor_every >= 1, "--save-every and --monitor-every must be at least 1"),
            (self.lora_rank >= 1, "--lora-rank must be at least 1"),
            (self.parse in ("strict", "lenient"), "--parse must be strict or lenient"),
            (self.loss_type in LOSS_TYPES, f"--loss-type must be one of {', '.join(LOSS_TYPES)} (got {self.loss_type!r})"),
            (self.max_grad_norm >= 0, "--max-grad-norm must be >= 0 (0: no clipping)"),
            (not self.save_adapter or self.lora, "--save-adapter saves a LoRA adapter: add --lora"),
        ]
        for ok, message in checks:
            if not ok:
                raise RespreadError(message)
        kinds = set()
        for spec in self.rewards:
            kinds.add(parse_reward_spec(spec)[0])
        stray = sorted(set(self.reward_options) - kinds)
        if stray:
            raise RespreadError(f"reward options given for '{stray[0]}', which is not among the rewards ({', '.join(self.rewards)})")
        task = resolve_task(self.task, self.task_files)
        for spec in self.rewards if self.method == "grpo" else ():  # bad reward options fail before any model loads
            kind = parse_reward_spec(spec)[0]
            make_reward(kind, task=task, parse=self.parse, **self.reward_options.get(kind, {}))
        if task.answer_type == "verifiable":
            raise RespreadError(f"task '{task.name}' is verifiable; training rewards spread on categorical or text tasks only")
        if task.prefill:
            raise RespreadError(f"task '{task.name}' has a prefill; training does not support prefilled replies yet")
        if self.method == "diffuse" and not task.is_closed:
            raise RespreadError(f"--method diffuse needs a closed task (a known answer set); '{task.name}' is open")
        ModelOptions(device=self.device, dtype=self.dtype, chat_template=self.chat_template)  # checks them


def run_train(config: TrainConfig, out_dir: Path, *, resume: bool = False) -> dict:
    """Train, checkpointing as it goes; returns (and writes) the `train.json` record."""
    config.validate()
    out_dir = Path(out_dir)
    _prepare_out_dir(config, out_dir, resume)
    started, cpu_started = time.time(), time.process_time()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from respread.backends.prompting import PromptRenderer
    from respread.restore.callbacks import DiversityMonitor

    device = _training_device(config.device)
    set_seed(config.seed)
    task = resolve_task(config.task, config.task_files)
    resolved = resolve_model(config.model)
    load_path = resolved.load_path
    hub = {"revision": config.revision} if config.revision else {}
    tokenizer = AutoTokenizer.from_pretrained(load_path, trust_remote_code=config.trust_remote_code, **hub)
    # Weights in float32 (the master copy); --dtype sets the mixed precision the steps compute in.
    model = AutoModelForCausalLM.from_pretrained(load_path, dtype=torch.float32, trust_remote_code=config.trust_remote_code, **hub)
    for adapter in [a for a in (resolved.adapter, config.adapter) if a]:
        model = merged_adapter(model, adapter)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The same rendering as `respread eval`, so training moves exactly the distribution eval measures.
    render = PromptRenderer(tokenizer, name=config.model, chat_template=config.chat_template, system_prompt=config.system_prompt).render
    max_length = config.max_completion_length or task.max_new_tokens

    trainer = (_grpo_trainer if config.method == "grpo" else _diffuse_trainer)(
        config, task, model, tokenizer, render, max_length, out_dir / "checkpoints", device
    )
    if config.shared_prompt:
        share_prompts(trainer)
    trained_prompts = [render(p) for p in training_prompts(task, prompt_count(config, task), config.seed)]
    monitor_tasks = config.monitor_tasks if config.monitor_tasks is not None else ([task.name] if task.is_closed else [])
    if monitor_tasks:
        DiversityMonitor(
            monitor_tasks, every=config.monitor_every, out=out_dir, temperature=config.temperature,
            task_files=config.task_files, seed=config.seed, chat_template=config.chat_template, system_prompt=config.system_prompt,
        ).attach(trainer)

    checkpoint = get_last_checkpoint(str(out_dir / "checkpoints")) if resume and (out_dir / "checkpoints").is_dir() else None
    with quiet_trl_deprecations():
        result = trainer.train(resume_from_checkpoint=checkpoint)

    final = out_dir / "final"
    trained = trainer.model
    if config.lora and config.save_adapter:
        # The small adapter alone; it names its base as the user did, so `--model final` or `--adapter final` loads it.
        for peft_config in trained.peft_config.values():
            peft_config.base_model_name_or_path = config.model
    elif config.lora:
        trained = trained.merge_and_unload()  # a plain HF model: `respread eval --model DIR` loads it as is
    trained.save_pretrained(final)
    tokenizer.save_pretrained(final)

    wall = time.time() - started
    gpus = 1 if device.startswith("cuda") else 0
    record = {
        "config": asdict(config),
        "resumed_from": checkpoint,
        "task": task.model_dump(mode="json"),
        "data": {
            "prompts": list(dict.fromkeys(trained_prompts))[:8],  # a task with request ids has one per group or step
            "distinct_prompts": len(set(trained_prompts)),
            "rows": len(trainer.train_dataset),
        },
        "shared_prompt": shared_prompt_stats(trainer),
        "model_path": load_path,
        "final_model": str(final),
        "seed": config.seed,
        "versions": versions(),
        "wall_seconds": round(wall, 1),
        "cpu_hours": round((time.process_time() - cpu_started) / 3600, 4),
        "gpu_hours": round(wall * gpus / 3600, 4),
        "device": device if device != "cpu" else f"cpu ({os.cpu_count()} cores, {platform.machine()})",
        "precision": _precision(config, device),
        "train_loss": result.training_loss,
        "log_history": trainer.state.log_history,
    }
    write_artifact(out_dir / TRAIN_FILE, "train", record, default=str)
    return record


def _prepare_out_dir(config: TrainConfig, out_dir: Path, resume: bool) -> None:
    """Refuse to mix two trainings in one directory; remember the config so a resume can check it."""
    config_file = out_dir / CONFIG_FILE
    wanted = asdict(config)
    if config_file.exists():
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        if not resume:
            raise RespreadError(f"{out_dir} already holds a training run; pass --resume to continue it, or a new --out")
        defaults = asdict(TrainConfig())  # a run saved before a setting existed had its default
        movable = ("vllm_server", "device", "report_to")  # where a run computes may change on resume, not what
        differ = sorted(k for k in wanted if k not in movable and saved.get(k, defaults.get(k)) != wanted[k])
        if differ:
            raise RespreadError(f"{out_dir} holds a training run with different {', '.join(differ)}; use a new --out")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(config_file, wanted)


def _training_device(device: str) -> str:
    """The device training runs on. Trainers use the process's current CUDA device, so `cuda:N` makes N the only
    visible one, which must happen before CUDA starts in this process."""
    import torch

    resolved = resolve_device(device)
    if resolved.startswith("cuda:"):
        index = resolved.split(":")[1]
        if torch.cuda.is_initialized():
            raise RespreadError(f"--device {resolved}: CUDA already started in this process; set CUDA_VISIBLE_DEVICES={index} instead")
        os.environ["CUDA_VISIBLE_DEVICES"] = index
        return "cuda"
    return resolved


def _precision(config: TrainConfig, device: str) -> str:
    """The dtype the steps compute in (weights stay float32)."""
    return resolve_dtype(config.dtype, device)


def _common_args(config: TrainConfig, output_dir: Path, device: str) -> dict:
    """Trainer arguments both methods share. Mixed precision follows --dtype (auto: bfloat16 on GPUs that have it,
    none on CPU, where bf16 matmuls run hundreds of times slower); gradient checkpointing only when asked."""
    precision = _precision(config, device)
    return dict(
        output_dir=str(output_dir),
        max_steps=config.steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.micro_batch_size or config.batch_size,
        gradient_accumulation_steps=config.batch_size // (config.micro_batch_size or config.batch_size),
        save_strategy="steps",
        save_steps=config.save_every,
        save_total_limit=2,  # a full checkpoint of a 135M model with optimizer state is ~1.5 GB; keep the last two
        logging_steps=1,
        report_to=config.report_to or "none",
        seed=config.seed,
        bf16=precision == "bfloat16",
        fp16=precision == "float16",
        **checkpointing_args(config.gradient_checkpointing),
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=config.max_grad_norm,
    )


def _peft_config(config: TrainConfig):
    if not config.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules="all-linear", task_type="CAUSAL_LM")


def prompt_count(config: TrainConfig, task) -> int:
    """Prompts a run trains on: one per GRPO group, one per diffuse step (every task prompt at least once in GRPO)."""
    if config.method == "grpo":
        return max(config.steps * (config.batch_size // config.group_size), len(task.prompts))
    return config.steps


def training_prompts(task, count: int, seed: int) -> list:
    """`count` prompts to train on, one per GRPO group or diffuse step: fresh request ids drawn from the seed (apart
    from the ids `respread eval` measures on) for a task that has them, else the task's own prompts in turn."""
    if task.request_ids:
        concrete = task.instantiate(seed, count=max(1, -(-count // len(task.prompts))), namespace="train")
        return [concrete.prompt(i) for i in range(count)]
    return [task.prompt(i % len(task.prompts)) for i in range(count)]


def _grpo_trainer(config, task, model, tokenizer, render, max_length: int, output_dir: Path, device: str = "cpu"):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    rows = prompt_count(config, task)
    # One row per group, each with its own id: a group's completions are exactly those of one row, even when
    # every row shows the same prompt (the rewards group by this column, across processes too).
    dataset = Dataset.from_list(
        [{"prompt": render(prompt), "group_id": i} for i, prompt in enumerate(training_prompts(task, rows, config.seed))]
    )
    rewards, weights = [], []
    for spec in config.rewards:
        kind, weight = parse_reward_spec(spec)
        rewards.append(
            make_reward(
                kind, task=task, parse=config.parse, num_generations=config.group_size,
                max_completion_length=max_length, **config.reward_options.get(kind, {}),
            )
        )
        weights.append(weight)
    args = GRPOConfig(
        **_common_args(config, output_dir, device),
        num_generations=config.group_size,
        max_completion_length=max_length,
        temperature=config.temperature,
        top_k=0,  # the model's own distribution: no truncation (generate's default would keep 50 tokens)
        top_p=1.0,
        beta=config.beta,
        loss_type=config.loss_type,
        reward_weights=weights,
        shuffle_dataset=False,
        **({"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": config.vllm_server} if config.vllm_server else {}),
    )
    return GRPOTrainer(
        model=model, reward_funcs=rewards, args=args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=_peft_config(config),
    )


def _diffuse_trainer(config, task, model, tokenizer, render, max_length: int, output_dir: Path, device: str = "cpu"):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from respread.tasks import AnswerParser

    parser = AnswerParser(task)
    # Step s trains one prompt on the next `batch_size` answers of a stream that lists every answer once per
    # pass, each pass in its own seeded order: any run of steps is close to uniform over the answers, and a
    # step's rows share their prompt, which the shared-prompt step computes once. The first surface form is the
    # one trained (the bare number, the answer as listed).
    order = random.Random(config.seed)
    stream: list[str] = []
    while len(stream) < config.steps * config.batch_size:
        stream += order.sample(list(parser.support), len(parser.support))
    prompts = [render(p) for p in training_prompts(task, prompt_count(config, task), config.seed)]
    dataset = Dataset.from_list([
        {"prompt": prompts[r // config.batch_size], "completion": parser.surface_forms(stream[r])[0]}
        for r in range(config.steps * config.batch_size)
    ])
    # Rows in order (older transformers lack the option: there the sampler shuffles, and batches mix prompts).
    args = SFTConfig(**_common_args(config, output_dir, device), **sequential_sampling_args(), completion_only_loss=True, max_length=None)
    return SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=_peft_config(config)
    )
