"""Where a run's numbers came from: model file hash, library versions, machine, wall time and CPU time.

`respread eval` (and everything built on it) keeps one entry per invocation that drew or scored
something in the run directory's `provenance.json`, rewritten after every chunk of work, so a run
killed and resumed adds up the time of every attempt.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PROVENANCE_FILE = "provenance.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
PACKAGES = ("respread", "torch", "transformers", "tokenizers", "trl", "peft", "accelerate", "datasets", "sentence-transformers")


def versions() -> dict[str, str | None]:
    return dict(_installed_versions())


@functools.cache  # read once per process: each chunk's record would otherwise scan the installed metadata again
def _installed_versions() -> tuple[tuple[str, str | None], ...]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return tuple(found.items())


def _sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so multi-GB weights are hashed once."""
    from respread.models import cache_dir

    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    memo_file = cache_dir() / "sha256.json"
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    if key not in memo:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        memo[key] = digest.hexdigest()
        try:
            memo_file.parent.mkdir(parents=True, exist_ok=True)
            memo_file.write_text(json.dumps(memo), encoding="utf-8")
        except OSError:
            pass  # a read-only cache only costs a re-hash next time
    return memo[key]


def model_files(spec: str) -> list[Path]:
    """The weight files behind a model spec: the GGUF of an alias or path, or a directory's weight files."""
    from respread.models import ALIASES

    if spec in ALIASES:
        return [ALIASES[spec].locate()]
    path = Path(spec).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return [path]
    if not path.is_dir():  # a hub id: its cached snapshot, if there is one
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(spec, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached or not a hub id: no file to hash
            return []
    return sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def model_fingerprint(spec: str) -> dict:
    """{"files": {name: sha256}, "sha256": one hash over them all} (empty when no file can be found)."""
    try:
        files = model_files(spec)
    except Exception:  # noqa: BLE001 - provenance must never fail a run that already finished
        files = []
    hashes = {p.name: _sha256(p) for p in files}
    combined = hashlib.sha256("".join(f"{n}:{h}\n" for n, h in sorted(hashes.items())).encode()).hexdigest()
    return {"files": hashes, "sha256": combined if hashes else None}


class Invocation:
    """Times one command's work on a run directory; `record` appends it to `provenance.json`."""

    def __init__(self) -> None:
        self.started = datetime.now(timezone.utc)
        self._wall = time.perf_counter()
        self._cpu = time.process_time()  # all of this process's threads (torch's included)

    def record(self, out_dir: Path, model: str, **work) -> dict:
        """Write this invocation's entry (replacing its earlier one), so a run killed later keeps its time so far."""
        from respread.records import write_json_atomic

        path = out_dir / PROVENANCE_FILE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        if state.get("model") != model or "model_sha256" not in state:
            fingerprint = model_fingerprint(model)
            state |= {"model": model, "model_sha256": fingerprint["sha256"], "model_files": fingerprint["files"]}
        state["versions"] = versions()
        state["machine"] = {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count()}
        entry = {
            "started": self.started.isoformat(timespec="microseconds"),
            "pid": os.getpid(),
            "wall_seconds": round(time.perf_counter() - self._wall, 2),
            "cpu_seconds": round(time.process_time() - self._cpu, 2),
        } | work
        invocations = [i for i in state.get("invocations", []) if (i.get("started"), i.get("pid")) != (entry["started"], entry["pid"])]
        state["invocations"] = invocations + [entry]
        state["wall_seconds"] = round(sum(i["wall_seconds"] for i in state["invocations"]), 2)
        state["cpu_hours"] = round(sum(i["cpu_seconds"] for i in state["invocations"]) / 3600, 4)
        write_json_atomic(path, state)
        return state
