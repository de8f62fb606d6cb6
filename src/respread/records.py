"""Append-only JSONL records: one line per unit of work, flushed as soon as it exists.

Every record carries a `key` that says what it is (task, prompt, sample index, settings), so a rerun
reads the keys already present and does only the rest. A process killed mid-write leaves at most one
half-written last line; reading ignores it and the next append cuts it off first, so nothing that was
completely written is ever lost or duplicated.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

from respread.errors import RespreadError


def sample_seed(seed: int, task: str, prompt: str, index: int) -> int:
    """Per-sample seed derived from (run seed, task, prompt text, sample index), stable across runs."""
    digest = hashlib.sha256(f"{seed}\x1f{task}\x1f{prompt}\x1f{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def user_jsonl_rows(text: str, where: str) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) of each non-blank line of a user's JSONL file; a bad line is one error
    naming `where` and the line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise RespreadError(f"{where}, line {number}: not JSON ({exc.msg})") from exc


def read_records(path: Path) -> list[dict]:
    return list(iter_records(path))


def iter_records(path: Path) -> Iterator[dict]:
    """Complete records in `path`; a truncated final line (from a kill) is skipped, anything else is an error."""
    if not path.exists():
        return
    # The piece after the last newline is either empty or an interrupted write: ignored here, and cut
    # off by the next append.
    complete = path.read_bytes().split(b"\n")[:-1]
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RespreadError(f"{path}, line {number}: not UTF-8 (bad byte at column {exc.start + 1})") from exc
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RespreadError(f"{path}, line {number}: not a JSON record ({exc.msg})") from exc
        if not isinstance(record, dict) or "key" not in record:
            raise RespreadError(f"{path}, line {number}: a record must be a JSON object with a 'key'")
        yield record


class RecordWriter:
    """Appends records to a JSONL file, one flushed line each."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_partial_tail()
        self._file = open(path, "a", encoding="utf-8")

    def _drop_partial_tail(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


SCHEMA = 2  # the layout of respread's JSON outputs; files without a `schema` are read as version 1
KINDS = ("eval", "study", "compare", "baselines", "train", "capability", "decompose", "check")


def write_artifact(path: Path, kind: str, payload: dict, *, default=None) -> None:
    """Write an output JSON that says what it is: `{"kind": kind, "schema": SCHEMA, ...payload}`, atomically.

    Readers (`respread report`, `check`, `compare`) dispatch on `kind`; files written before the stamp are
    read through `respread.report.page.artifact_kind`'s adapter.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}")
    body = {k: v for k, v in payload.items() if k not in ("kind", "schema")}
    write_json_atomic(path, {"kind": kind, "schema": SCHEMA} | body, default=default)


def capability_models(data: dict) -> dict:
    """The {model: report} mapping of a capability file: `models` of a stamped one; an older file is the mapping
    itself, or one report (what `capability --out` wrote)."""
    if data.get("kind") == "capability":
        return data["models"]
    if "model" in data and any(k in data for k in ("mmlu", "gsm8k", "kl")):
        return {data["model"]: data}
    return data


def write_json_atomic(path: Path, payload, *, default=None) -> None:
    """Write JSON through a temporary file and a rename, so a reader (or a kill -9) never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=default), encoding="utf-8")
    tmp.replace(path)
