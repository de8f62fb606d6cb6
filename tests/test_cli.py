"""Every bad-input path of `respread eval` gives one clear line and a non-zero exit."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from respread.cli import app

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stderr.strip(), result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "no-such-model"], "error: unknown model 'no-such-model'"),
        (["--model", "/nonexistent/model.gguf"], "error: model file /nonexistent/model.gguf does not exist"),
        (["--tasks", "colour"], "error: unknown task 'colour'"),
        (["--samples", "0"], "error: --samples must be at least 1 (got 0)"),
        (["--temperature", "-1"], "error: bad sampling settings: temperature must be a finite number >= 0"),
        (["--top-p", "1.5"], "error: bad sampling settings: top_p must be in (0, 1]"),
        (["--min-p", "1"], "error: bad sampling settings: min_p must be in [0, 1)"),
        (["--parse", "loose"], "error: --parse must be strict or lenient"),
    ],
)
def test_bad_arguments_fail_with_one_line(tmp_path, args, message):
    code, err, _ = run("eval", "--out", str(tmp_path / "run"), "--samples", "2", *args)
    assert code != 0
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1


def test_uncached_hub_model_offline_fails_with_one_line(tmp_path, capfd):
    code, err, _ = run("eval", "--model", "nobody/no-such-model-xyz", "--tasks", "card_suit", "--samples", "1", "--out", str(tmp_path))
    assert code != 0
    assert err == (
        "error: model 'nobody/no-such-model-xyz' is not an alias (smollm2-135m-instruct, gemma3-270m), a .gguf file, "
        "a model directory or a hub id in the local cache, and HF_HUB_OFFLINE is set; "
        "check the id, or unset HF_HUB_OFFLINE to download it"
    )
    assert capfd.readouterr().err == ""  # nothing from the hub libraries around respread's line


@pytest.mark.timeout(30)  # the hub's own retries would take about a minute
def test_unreachable_hub_fails_fast_with_one_line(tmp_path, monkeypatch, capfd):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    # A hub that refuses connections: a real request that fails at once, as with no network.
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")
    code, err, _ = run("eval", "--model", "nobody/no-such-model-xyz", "--tasks", "card_suit", "--samples", "1", "--out", str(tmp_path / "r"))
    assert code != 0 and len(err.splitlines()) == 1, err
    assert err.startswith("error: model 'nobody/no-such-model-xyz' is not an alias") and "the hub is out of reach" in err
    assert capfd.readouterr().err == ""


def test_hub_id_in_the_local_cache_needs_no_network(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from respread.models import resolve_model

    snapshot = tmp_path / "models--org--tiny" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "models--org--tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert resolve_model("org/tiny").load_path == "org/tiny"


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"hello\n", "is not a GGUF file (it does not start with the GGUF magic bytes); pass a real .gguf file"),
        (b"", "is not a GGUF file (it is empty); pass a real .gguf file"),
        (b"GGUF\x03\x00\x00\x00\x01", "is not a readable GGUF model (unpack_from requires"),  # cut after the magic
    ],
)
def test_a_gguf_file_that_is_not_one_fails_with_one_line(tmp_path, monkeypatch, content, problem):
    monkeypatch.setenv("RESPREAD_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "x.gguf"
    model.write_bytes(content)
    code, err, _ = run("eval", "--model", str(model), "--tasks", "card_suit", "--samples", "1", "--out", str(tmp_path / "r"))
    assert code != 0 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: model file {model} {problem}"), err
    assert not list(tmp_path.glob("cache/models/*"))  # no half-written copy left behind


def test_malformed_and_non_utf8_task_files_fail_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: colour\n  prompt: Pick\n  answer_type: choice\n  valid: 'red, blue'\n", encoding="utf-8")
    code, err, _ = run("eval", "--tasks-file", str(bad), "--tasks", "colour", "--out", str(tmp_path / "r"))
    assert code != 0 and err == f"error: tasks file {bad}, task 'colour': field 'valid': Input should be a valid list (got: 'red, blue')"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"- name: caf\xe9\n")
    code, err, _ = run("tasks", "--tasks-file", str(latin))
    assert code != 0 and err == f"error: tasks file {latin}: not UTF-8 (bad byte at offset 11)"


def test_non_utf8_bytes_in_a_run_directory_fail_with_the_line_number(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "samples.jsonl").write_bytes(b'{"key": "x", "text": "\xff"}\n')
    code, err, _ = run("eval", "--tasks", "card_suit", "--samples", "1", "--out", str(out))
    assert code != 0 and err == f"error: {out / 'samples.jsonl'}, line 1: not UTF-8 (bad byte at column 23)"
    assert (out / "samples.jsonl").read_bytes() == b'{"key": "x", "text": "\xff"}\n'  # nothing destroyed


def test_out_pointing_at_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    code, err, _ = run("eval", "--out", str(target))
    assert code != 0 and "exists and is not a directory" in err


def test_tasks_command_lists_the_panel():
    code, _, out = run("tasks")
    assert code == 0
    for name in ("integer_1_10", "integer_1_1000", "card_suit", "emoji", "first_name", "listed_integer_1_100", "listed_card_suit"):
        assert name in out
    groups = out[out.index("group (use as --tasks)"):]
    assert "listed" in groups and "categorical" in groups


def test_metrics_json_is_strict_json(tmp_path, monkeypatch):
    """A finished run re-reports without a model: metrics.json parses with NaN forbidden."""
    from fakes import FakeBackend

    import respread.backends as backends

    monkeypatch.setattr(backends, "load_backend", lambda *a, **k: FakeBackend({"hearts": 0.6, "nope": 0.4}))
    code, err, out = run("eval", "--model", "fake", "--tasks", "card_suit", "--samples", "20", "--exact", "--out", str(tmp_path))
    assert code == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert metrics["tasks"]["card_suit"]["parse"]["strict"]["n"] == 20
    assert "card_suit" in out and "summary.md" in out
    assert "| card_suit | 20 |" in (tmp_path / "summary.md").read_text()


CONSOLE = """
import atexit, pathlib, sys
marker = pathlib.Path(sys.argv.pop(1))
atexit.register(lambda: marker.write_text("ran") and print("exit handler ran"))
import threading  # the interpreter's own exit runs these callbacks as it shuts threading down; `main` leaves before
threading._register_atexit(lambda: pathlib.Path(str(marker) + ".teardown").write_text("ordinary exit"))
from respread.cli import main
sys.argv[0] = "respread"
main()
"""


@pytest.mark.parametrize("args, code", [(["tasks"], 0), (["eval", "--tasks", "colour", "--out", "{tmp}"], 2)])
def test_the_console_command_keeps_its_exit_code_output_and_exit_handlers(tmp_path, args, code):
    """`main` leaves without the interpreter's teardown: what it printed, its code and atexit handlers stay."""
    import os
    import subprocess
    import sys

    marker = tmp_path / "handler"
    args = [a.format(tmp=tmp_path / "run") for a in args]
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a plain shell pipe would be
    done = subprocess.run([sys.executable, "-c", CONSOLE, str(marker), *args], capture_output=True, text=True, timeout=300, env=buffered)
    assert done.returncode == code, done.stderr
    assert marker.read_text() == "ran" and done.stdout.rstrip().endswith("exit handler ran")  # printed, then flushed
    assert not marker.with_name("handler.teardown").exists()
    if code:
        assert done.stderr.strip().startswith("error: unknown task 'colour'") and len(done.stderr.strip().splitlines()) == 1
    else:
        assert "word_b" in done.stdout


def test_every_command_that_loads_a_model_shows_the_same_model_options_in_its_help():
    import re

    import typer

    group = typer.main.get_command(app)
    loaders = ("eval", "study", "baselines", "compare", "check", "capability", "train")
    panels = {}
    for name in loaders:
        code, _, out = run(name, "--help")
        assert code == 0
        panel = out[out.index("Model (every command that loads one)"):]
        panels[name] = set(re.findall(r"--[a-z][a-z-]+", panel.split("╰")[0]))
    assert all(panel == panels["eval"] for panel in panels.values()), panels
    assert {"--device", "--dtype", "--adapter", "--revision", "--chat-template", "--system-prompt", "--trust-remote-code"} <= panels["eval"]
    for name, command in group.commands.items():  # and no other command grows a partial copy
        in_panel = [p for p in command.params if (getattr(p, "rich_help_panel", None) or "").startswith("Model")]
        assert len(in_panel) == (11 if name in loaders else 0), name
