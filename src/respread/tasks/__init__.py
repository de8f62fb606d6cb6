"""Task registry: built-in tasks, groups of them, and tasks users add from YAML files.

Every closed task `NAME` (built-in or from a file) can also be asked with its candidates listed, as task
`listed_NAME` (`respread.tasks.listed`); the `listed` group is the published ten-task panel, every task closed.

A YAML file holds a list of tasks (or a mapping with a `tasks:` list); each has the fields of
`TaskSpec`. A malformed file fails with one line naming the file, the task and the field.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from respread.errors import RespreadError
from respread.records import user_jsonl_rows
from respread.tasks.builtin import builtin_tasks, constrained_tasks
from respread.tasks.listed import PREFIX as LISTED_PREFIX, listed, published_panel
from respread.tasks.parsing import AnswerParser, Parsed
from respread.tasks.spec import TaskSpec

GROUPS = {
    "categorical": [t.name for t in builtin_tasks() if t.answer_type != "text"],
    "constrained": [t.name for t in constrained_tasks()],
    "listed": [t.name for t in published_panel()],
}

__all__ = [
    "AnswerParser", "Parsed", "TaskSpec", "GROUPS", "registry", "load_tasks_file", "load_prompts_file", "select_tasks",
    "select_tasks_with_gsm8k",
]


def registry(task_files: list[str | Path] = ()) -> dict[str, TaskSpec]:
    """Built-in tasks plus those from `task_files`; a file's task may not reuse a built-in or another file's name."""
    tasks = {t.name: t for t in builtin_tasks() + constrained_tasks() + published_panel()}
    defined_in: dict[str, Path] = {}
    for path in task_files:
        for task in load_tasks_file(path):
            _check_user_name(task.name, tasks, defined_in, f"tasks file {path} defines '{task.name}'")
            tasks[task.name] = task
            defined_in[task.name] = Path(path)
    for task in list(tasks.values()):  # every closed task can be asked with its candidates listed
        if task.is_closed and not task.name.startswith(LISTED_PREFIX) and LISTED_PREFIX + task.name not in tasks:
            tasks[LISTED_PREFIX + task.name] = listed(task)
    return tasks


def _check_user_name(name: str, tasks: dict[str, TaskSpec], defined_in: dict[str, Path], what: str) -> None:
    """A user task named like a built-in task or group, or like another file's task, would silently hide one."""
    if name in defined_in:
        raise RespreadError(f"{what}, which tasks file {defined_in[name]} defines too; rename one of them")
    if name in tasks or name in GROUPS:
        kind = "task group" if name in GROUPS else "task"
        raise RespreadError(f"{what}, which is a built-in {kind} name; rename it (e.g. 'my_{name}')")


def load_tasks_file(path: str | Path) -> list[TaskSpec]:
    path = Path(path)
    text = _read_utf8(path, "tasks file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RespreadError(f"tasks file {path}: not valid YAML{where}") from exc
    if isinstance(data, dict) and "tasks" in data:
        data = data["tasks"]
    if not isinstance(data, list) or not data:
        raise RespreadError(f"tasks file {path}: expected a non-empty list of tasks (or a mapping with 'tasks:')")
    tasks, seen = [], set()
    for i, item in enumerate(data):
        label = f"task {i}"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label = f"task '{item['name']}'"
        if not isinstance(item, dict):
            raise RespreadError(f"tasks file {path}, {label}: expected a mapping of fields, got {type(item).__name__}")
        try:
            task = TaskSpec.model_validate(item)
        except ValidationError as exc:
            raise RespreadError(f"tasks file {path}, {label}: {_describe(exc)}") from exc
        if task.name in seen:
            raise RespreadError(f"tasks file {path}, {label}: the name is used twice in this file")
        seen.add(task.name)
        tasks.append(task)
    return tasks


def load_prompts_file(path: str | Path) -> TaskSpec:
    """A free-text task from a JSONL file of prompts: one `{"prompt": "..."}` object per line.

    The task is named after the file (`my-prompts.jsonl` -> `my-prompts`); optional per-file settings
    are not read from the lines: every line is one prompt.
    """
    path = Path(path)
    text = _read_utf8(path, "prompts file")
    prompts = []
    for number, item in user_jsonl_rows(text, f"prompts file {path}"):
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
            raise RespreadError(f"prompts file {path}, line {number}: needs a non-empty string field 'prompt'")
        prompts.append(item["prompt"])
    if not prompts:
        raise RespreadError(f"prompts file {path}: no prompts in it")
    name = re.sub(r"[^a-z0-9_\-]+", "-", path.stem.lower()).strip("-") or "prompts"
    return TaskSpec(name=name, prompts=prompts, answer_type="text", description=f"prompts from {path}")


def _read_utf8(path: Path, what: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RespreadError(f"{what} {path}: cannot read it ({exc.strerror})") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RespreadError(f"{what} {path}: not UTF-8 (bad byte at offset {exc.start})") from exc


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if field and not isinstance(got, dict):
        return f"field '{field}': {message} (got: {got!r})"
    return message


def select_tasks_with_gsm8k(
    selection: str, task_files=(), prompt_files=(), gsm8k: str | None = None, subset: int = 20, seed: int = 0
) -> list[TaskSpec]:
    """`select_tasks`, plus GSM8K as task `gsm8k` when a source is given (`selection` '' for GSM8K alone)."""
    tasks = select_tasks(selection, task_files, prompt_files, seed=seed) if selection.strip() or not gsm8k else []
    if gsm8k:
        from respread.tasks.verifiable import gsm8k_task

        tasks.append(gsm8k_task(gsm8k, subset, seed))
    return tasks


def select_tasks(
    selection: str, task_files: list[str | Path] = (), prompt_files: list[str | Path] = (), *, seed: int = 0
) -> list[TaskSpec]:
    """Resolve `categorical`, `NAME,NAME`, or a mix of groups and names, in the order given.

    Tasks from `prompt_files` are always selected (naming them again in `selection` is allowed). Tasks with
    request ids get them from `seed` (`TaskSpec.instantiate`).
    """
    available = registry(task_files)
    from_prompts = [load_prompts_file(p) for p in prompt_files]
    for path, task in zip(prompt_files, from_prompts):
        if task.name in available or task.name in GROUPS:
            raise RespreadError(
                f"prompts file {path} makes task '{task.name}' (named after the file), which is already a task"
                f"{' group' if task.name in GROUPS else ''} name; rename the file (e.g. 'my_{task.name}.jsonl')"
            )
        available[task.name] = task
    names: list[str] = []
    for token in (t.strip() for t in selection.split(",")):
        if not token:
            continue
        if token in GROUPS:
            names += GROUPS[token]
        elif token in available:
            names.append(token)
        else:
            known = ", ".join(list(GROUPS) + sorted(available))
            raise RespreadError(f"unknown task '{token}'; known: {known}")
    names += [t.name for t in from_prompts]
    if not names:
        raise RespreadError("no tasks selected; pass --tasks categorical or task names")
    return [available[n].instantiate(seed) for n in dict.fromkeys(names)]
