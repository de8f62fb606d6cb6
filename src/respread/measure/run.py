"""Run tasks through a backend into records: `samples.jsonl` (sampled replies) and `exact.jsonl`.

A run directory holds one model and one set of sampling settings (`run.json`). Re-running into it
resumes: each sample's key is checked against what is already written, and only missing samples are
drawn, each from its own seed, so the result equals that of an unbroken run. Exact distributions are
written once per task and prompt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from respread.types import Backend, SamplingParams
from respread.backends.options import ModelOptions
from respread.errors import RespreadError
from respread.provenance import Invocation
from respread.records import RecordWriter, iter_records, sample_seed, write_json_atomic
from respread.tasks import AnswerParser, TaskSpec

SAMPLES_FILE = "samples.jsonl"
EXACT_FILE = "exact.jsonl"
RUN_FILE = "run.json"

Progress = Callable[[str, int, int], None]  # (task name, samples done, samples wanted)


@dataclass
class EvalConfig:
    model: str
    tasks: list[TaskSpec]
    samples: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    max_new_tokens: int | None = None  # None: each task's own default
    seed: int = 0
    exact: bool = False
    chunk: int = 50  # samples per backend call; records are written after each call
    logit_bias: tuple[tuple[int, float], ...] = ()  # see SamplingParams.logit_bias
    # False: closed tasks get their exact distribution only (with `exact`), which already says everything
    # sampling them would, without sampling error; a sweep over many settings then costs little.
    sample_closed: bool = True
    cot: str = "task"  # generation-format switch applied to every task (see `respread.tasks.formats`)
    model_options: ModelOptions = field(default_factory=ModelOptions)  # how `model` is loaded and prompted

    def __post_init__(self) -> None:
        from respread.tasks.formats import check_cot_mode, with_cot

        self.tasks = [with_cot(task, check_cot_mode(self.cot)) for task in self.tasks]
        if self.samples < 1:
            raise RespreadError(f"--samples must be at least 1 (got {self.samples})")
        text_tasks = [t.name for t in self.tasks if t.answer_type == "text"]
        if text_tasks and self.samples < 4:
            raise RespreadError(
                f"text task '{text_tasks[0]}' needs --samples of at least 4 per prompt for diversity figures with CIs"
            )
        self.params_for(None)  # validates the sampling settings before any model is loaded

    def params_for(self, task: TaskSpec | None) -> SamplingParams:
        default_length = task.max_new_tokens if task else 16
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            max_new_tokens=self.max_new_tokens or default_length,
            logit_bias=tuple(self.logit_bias),
        )

    def run_identity(self) -> dict:
        """What must match for two invocations to share a run directory."""
        return {
            "model": self.model,
            "seed": self.seed,
            "sampling": {k: v for k, v in self.params_for(None).as_dict().items() if k != "max_new_tokens"},
            "max_new_tokens": self.max_new_tokens,
        } | ({"cot": self.cot} if self.cot != "task" else {}) | self.prompting_identity()  # absent by default: older runs keep theirs

    def prompting_identity(self) -> dict:
        """The model options that change what the model is or reads (not where or how fast it runs)."""
        options = self.model_options
        changed = {k: getattr(options, k) for k in ("revision", "adapter", "system_prompt") if getattr(options, k)}
        if options.chat_template != "auto":
            changed["chat_template"] = options.chat_template
        return {"model_options": changed} if changed else {}


def settings_digest(task: TaskSpec, prompt_index: int, params: SamplingParams, config: EvalConfig) -> str:
    """Short hash of everything that decides a sample besides its index: editing any of it starts afresh."""
    prompt = dict(task.prompt(prompt_index).__dict__)
    if prompt.get("thinking") is None:
        del prompt["thinking"]  # absent by default, so records written before the switch existed keep their keys
    payload = json.dumps(
        {"model": config.model, "seed": config.seed, "params": params.as_dict(), "prompt": prompt},
        sort_keys=True,
        default=list,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def prepare_run_dir(out_dir: Path, config: EvalConfig) -> None:
    """Create or re-open a run directory; refuse one that holds another model or other settings.

    `run.json` also keeps the spec of every task run into the directory, so later commands
    (`respread decompose`) can re-parse the records without the original task files; `run_eval` adds each
    task's --samples once a call has finished it (`samples_by_task`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    run_file = out_dir / RUN_FILE
    identity = config.run_identity()
    state = {"identity": identity, "tasks": {}}
    if run_file.exists():
        state = read_run_file(out_dir)
        if state.get("identity") != identity:
            differ = [k for k in identity if state.get("identity", {}).get(k) != identity[k]]
            raise RespreadError(
                f"{out_dir} holds a run with different {', '.join(differ)}; use a new --out to compare settings"
            )
    state.setdefault("tasks", {}).update({t.name: t.model_dump(mode="json") for t in config.tasks})
    write_json_atomic(run_file, state)


def read_run_file(out_dir: Path) -> dict:
    run_file = out_dir / RUN_FILE
    try:
        return json.loads(run_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RespreadError(f"{out_dir} is not a respread run directory (no {RUN_FILE})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RespreadError(f"{run_file} is damaged ({exc}); move it away or use a new --out") from exc


def run_eval(
    config: EvalConfig,
    out_dir: Path,
    backend_factory: Callable[[], Backend],
    progress: Progress | None = None,
) -> None:
    """Sample (and score exactly, if asked) every task into `out_dir`, skipping work already recorded.

    The backend is built only if there is work left, so re-reporting a finished run loads no model.
    """
    prepare_run_dir(out_dir, config)
    invocation = Invocation()
    # key -> whether the reply has any text (for the all-empty check without re-reading the file)
    done_samples = {r["key"]: bool(str(r.get("text") or "").strip()) for r in iter_records(out_dir / SAMPLES_FILE)}
    done_exact = {r["key"] for r in iter_records(out_dir / EXACT_FILE)}
    backend: Backend | None = None

    def get_backend() -> Backend:
        nonlocal backend
        if backend is None:
            backend = backend_factory()
        return backend

    with RecordWriter(out_dir / SAMPLES_FILE) as samples_out, RecordWriter(out_dir / EXACT_FILE) as exact_out:
        # Plan every missing sample, then draw them in chunks that pool rows across prompts and across
        # tasks with the same settings, so many prompts (or tasks) with few samples each still fill batches.
        keys: dict[str, dict[int, list[str]]] = {}
        wanted: dict[str, int] = {}
        missing: dict[SamplingParams, list[tuple[TaskSpec, int, int]]] = {}
        for task in config.tasks:
            params = config.params_for(task)
            samples = 0 if (config.exact and task.exact_scorable and not config.sample_closed) else config.samples
            wanted[task.name] = samples * len(task.prompts)
            keys[task.name] = {
                p: [f"{task.name}|p{p}|s{i}|{settings_digest(task, p, params, config)}" for i in range(samples)]
                for p in range(len(task.prompts))
            }
            todo = [(task, p, i) for p in keys[task.name] for i, key in enumerate(keys[task.name][p]) if key not in done_samples]
            missing.setdefault(params, []).extend(todo)
            if progress:
                progress(task.name, wanted[task.name] - len(todo), wanted[task.name])
        done = {name: wanted[name] - sum(1 for rows in missing.values() for t, _, _ in rows if t.name == name) for name in wanted}
        drawn = 0
        step = config.chunk
        if any(missing.values()) and hasattr(get_backend(), "sample_stream"):
            # A server streams replies back one by one: chunks only bound memory, and a small chunk would cap the
            # requests in flight (each chunk waits for its slowest reply).
            step = max(step, 8 * getattr(get_backend(), "concurrency", 1))
        for params, rows in missing.items():
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                requests: dict[tuple[str, int], tuple[TaskSpec, list[int]]] = {}
                for task, p, i in chunk:
                    requests.setdefault((task.name, p), (task, []))[1].append(i)
                seeds = {
                    (name, p): [sample_seed(config.seed, name, task.prompts[p], i) for i in indices]
                    for (name, p), (task, indices) in requests.items()
                }
                listed = list(requests.items())
                stream = completion_stream(get_backend(), [(task.prompt(p), seeds[(name, p)]) for (name, p), (task, _) in listed], params)
                for r, position, completion in stream:
                    (name, p), (task, indices) = listed[r]
                    i = indices[position]
                    key = keys[name][p][i]
                    samples_out.write(
                        {
                            "key": key,
                            "task": name,
                            "prompt_index": p,
                            "prompt": task.prompts[p],
                            "sample": i,
                            "seed": seeds[(name, p)][position],
                            "model": config.model,
                            "params": params.as_dict(),
                            "text": completion.text,
                            "n_tokens": completion.n_tokens,
                            "finished": completion.finished,
                        }
                    )
                    done_samples[key] = bool(completion.text.strip())
                    done[name] += 1
                    if progress:
                        progress(name, done[name], wanted[name])
                    if done[name] == wanted[name]:
                        _refuse_all_empty(name, keys[name], done_samples, out_dir)  # as soon as it is known
                drawn += len(chunk)
                invocation.record(out_dir, config.model, samples_written=drawn, exact_written=0, engine=_engine(backend))
        exact_written = 0
        for task in config.tasks:
            _refuse_all_empty(task.name, keys[task.name], done_samples, out_dir)
            params = config.params_for(task)
            for prompt_index in range(len(task.prompts)):
                exact_key = f"{task.name}|p{prompt_index}|exact|{settings_digest(task, prompt_index, params, config)}"
                if config.exact and task.exact_scorable and exact_key not in done_exact:
                    exact_out.write(exact_record(get_backend(), task, prompt_index, params, exact_key, config.model))
                    exact_written += 1
                    invocation.record(out_dir, config.model, samples_written=drawn, exact_written=exact_written, engine=_engine(backend))
    _record_finished_samples(out_dir, config)


def _record_finished_samples(out_dir: Path, config: EvalConfig) -> None:
    """Note in run.json each task's --samples, now that this call has all its records: `respread check` and
    `decompose` count a task's records up to the last finished call that ran it. A call stopped partway
    leaves the previous count, as it leaves metrics.json and summary.md."""
    state = read_run_file(out_dir)
    state.setdefault("samples_by_task", {}).update({task.name: config.samples for task in config.tasks})
    write_json_atomic(out_dir / RUN_FILE, state)


def _engine(backend: Backend | None) -> dict:
    """Which engine answered (and where, for a server), for provenance: replies may come from several."""
    if backend is None:
        return {}
    return {"backend": type(backend).__name__} | ({"server": backend.base_url} if hasattr(backend, "base_url") else {})


def _refuse_all_empty(name: str, keys: dict[int, list[str]], done_samples: dict[str, bool], out_dir: Path) -> None:
    task_keys = [key for prompt_keys in keys.values() for key in prompt_keys]
    if task_keys and all(key in done_samples for key in task_keys) and not any(done_samples[k] for k in task_keys):
        raise RespreadError(
            f"task '{name}': all {len(task_keys)} replies are empty (kept in {out_dir / SAMPLES_FILE}); "
            "the model ends its turn at once: check its chat template and end-of-turn token"
        )


def completion_stream(backend: Backend, requests: list[tuple], params: SamplingParams):
    """(request index, position, completion) triples: as each arrives where the backend streams (a server,
    so a crash loses nothing answered), else after the whole chunk, in shared batches where it can."""
    stream = getattr(backend, "sample_stream", None)
    if stream is not None:
        yield from stream(requests, params)
        return
    many = getattr(backend, "sample_many", None)
    replies = many(requests, params) if many is not None else [backend.sample(p, seeds, params) for p, seeds in requests]
    for r, completions in enumerate(replies):
        for position, completion in enumerate(completions):
            yield r, position, completion


def exact_record(backend: Backend, task: TaskSpec, prompt_index: int, params: SamplingParams, key: str, model: str) -> dict:
    """P(answer) for every answer in a closed task, summed over the surface forms exact mode covers."""
    import math

    parser = AnswerParser(task)
    answers = list(parser.support)
    forms = [parser.surface_forms(a) for a in answers]
    flat = [f for group in forms for f in group]
    logprobs = iter(backend.score(task.prompt(prompt_index), flat, params))
    probs = {answer: sum(math.exp(next(logprobs)) for _ in group) for answer, group in zip(answers, forms)}
    return {
        "key": key,
        "task": task.name,
        "prompt_index": prompt_index,
        "model": model,
        "params": params.as_dict(),
        "forms": parser.exact_forms(),
        "probs": probs,
    }
