"""`DiversityMonitor`: a transformers `TrainerCallback` that turns "where in training did it collapse or
recover" into a curve, in any Trainer (GRPOTrainer, SFTTrainer, plain Trainer).

Every `every` optimizer steps (and at the start and end of training) it measures the model being trained:
the exact answer distribution of each closed task (teacher-forced, no sampling error) and, when
`samples > 0`, sampled figures of the open ones. Each figure set is one record appended to
`<out>/monitor.jsonl` with the key `step|task`, so a resumed run skips what is already there; the figures also
go to `state.log_history` and, once the monitor is attached to a trainer (`monitor.attach(trainer)`), to every
logger the trainer reports to (TensorBoard, W&B, ...), as `diversity/<task>/<figure>`.

It observes and never steers: it changes no training state, and the model's train/eval mode is restored.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from transformers import TrainerCallback

from respread.types import SamplingParams
from respread.errors import RespreadError
from respread.records import RecordWriter, iter_records, sample_seed
from respread.tasks import AnswerParser, TaskSpec

MONITOR_FILE = "monitor.jsonl"
LOGGED_FIGURES = ("valid_mass", "tv_all", "tv_valid", "entropy_bits")


class DiversityMonitor(TrainerCallback):
    def __init__(
        self,
        tasks: Sequence[str | TaskSpec],
        every: int = 10,
        out: str | Path = "monitor",
        *,
        samples: int = 0,
        temperature: float = 1.0,
        task_files: Sequence[str] = (),
        seed: int = 0,
        chat_template: str = "auto",
        system_prompt: str | None = None,
    ) -> None:
        from respread.restore.rewards import resolve_task

        if every < 1:
            raise RespreadError(f"DiversityMonitor: every must be at least 1 (got {every})")
        # Tasks with request ids are measured on the ids `respread eval --seed SEED` asks.
        self.tasks = [resolve_task(t, task_files).instantiate(seed) for t in tasks]
        open_tasks = [t.name for t in self.tasks if not t.is_closed]
        if open_tasks and samples < 1:
            raise RespreadError(
                f"DiversityMonitor: task '{open_tasks[0]}' has no exact mode; pass samples > 0 to measure it by sampling"
            )
        self.every = every
        self.out = Path(out)
        self.samples = samples
        self.params = SamplingParams(temperature=temperature)
        self.seed = seed
        self.prompting = {"chat_template": chat_template, "system_prompt": system_prompt}  # as the trainer renders
        self._trainer = None
        self._done = {r["key"] for r in iter_records(self.out / MONITOR_FILE)}

    def attach(self, trainer) -> "DiversityMonitor":
        """Add the monitor to `trainer` and report its figures to the trainer's loggers too."""
        trainer.add_callback(self)
        self._trainer = trainer
        return self

    # ---------------------------------------------------------------- trainer events
    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        self._measure(state, model, processing_class, args, control)

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step % self.every == 0:
            self._measure(state, model, processing_class, args, control)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        self._measure(state, model, processing_class, args, control)

    # ---------------------------------------------------------------- measuring
    def measure(self, model, tokenizer, step: int) -> list[dict]:
        """The figures of every task for `model` at `step` (records not yet written); usable outside a Trainer."""
        from respread.measure.figures import exact_metrics, sampled_metrics, answer_counts
        from respread.backends.transformers import TransformersBackend
        from respread.measure.run import exact_record

        from respread.backends.prompting import PromptRenderer

        backend = TransformersBackend.from_loaded(model, tokenizer, renderer=PromptRenderer(tokenizer, **self.prompting))
        records = []
        for task in self.tasks:
            key = f"{step}|{task.name}"
            if key in self._done:
                continue
            started = time.perf_counter()
            parser = AnswerParser(task)
            record = {"key": key, "step": step, "task": task.name, "temperature": self.params.temperature}
            if task.is_closed:
                # Several prompts: the task's distribution is the mean over them, as in `respread eval`.
                probs: dict[str, float] = {}
                for index in range(len(task.prompts)):
                    scored = exact_record(backend, task, index, self.params, key, "monitor")["probs"]
                    for answer, p in scored.items():
                        probs[answer] = probs.get(answer, 0.0) + p / len(task.prompts)
                figures = exact_metrics(probs, frozenset(parser.support), parser.exact_forms())
                record |= {"mode": "exact"} | {k: figures[k] for k in LOGGED_FIGURES} | {"top_valid": figures["top_valid"]}
            else:
                texts = []
                for index, prompt in enumerate(task.prompts):
                    seeds = [sample_seed(self.seed, task.name, prompt, i) + step for i in range(self.samples)]
                    params = SamplingParams(temperature=self.params.temperature, max_new_tokens=task.max_new_tokens)
                    texts += [c.text for c in backend.sample(task.prompt(index), seeds, params)]
                counts = answer_counts(parser, texts, "strict")
                figures = sampled_metrics(counts, frozenset(parser.support), resamples=200, seed=self.seed, calibrated=False)
                record |= {
                    "mode": "sampled",
                    "n": figures["n"],
                    "valid_mass": figures["validity"]["value"],
                    "tv_all": figures["tv_all"]["value"],
                    "tv_valid": figures["tv_valid"]["value"],
                    "entropy_bits": figures["entropy_bits"]["value"],
                    "top_valid": figures["top_valid"],
                }
            record["seconds"] = round(time.perf_counter() - started, 3)
            records.append(record)
        return records

    def _measure(self, state, model, tokenizer, args, control) -> None:
        if model is None or tokenizer is None:
            raise RespreadError("DiversityMonitor needs the trainer's model and processing_class (tokenizer)")
        if not getattr(args, "should_save", True):  # several processes: the main one measures and writes
            return
        was_training = model.training
        model.eval()
        try:
            records = self.measure(model, tokenizer, state.global_step)
        finally:
            model.train(was_training)
        if not records:
            return
        with RecordWriter(self.out / MONITOR_FILE) as out:
            for record in records:
                out.write(record)
                self._done.add(record["key"])
        logs = {
            f"diversity/{r['task']}/{figure}": r[figure]
            for r in records
            for figure in LOGGED_FIGURES
            if r.get(figure) is not None
        }
        state.log_history.append({**logs, "step": state.global_step})
        if self._trainer is not None:
            # The handler's on_log resets control.should_log, which the trainer reads right after this event
            # to decide whether to log its own step: keep the trainer's decision.
            should_log = control.should_log
            self._trainer.callback_handler.on_log(args, state, control, logs)
            control.should_log = should_log


def read_monitor(out: str | Path) -> list[dict]:
    """The monitor's records in step order."""
    return sorted(iter_records(Path(out) / MONITOR_FILE), key=lambda r: (r["step"], r["task"]))
