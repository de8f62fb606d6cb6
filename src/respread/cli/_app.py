"""The `respread` application object, its consoles, the one error line, and the console entry point."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from typer.core import TyperGroup

from respread.errors import RespreadError

# The extra that brings each optional dependency a command may miss.
EXTRAS = {"trl": "train", "peft": "train", "datasets": "train", "matplotlib": "report", "jinja2": "report", "openai": "http",
          "sentence_transformers": "embed", "sacrebleu": "embed", "pandas": "pandas", "vllm": "vllm"}


class Commands(TyperGroup):
    """The one error handler of every command: bad input (a `RespreadError`) ends in one line and exit 2, and a
    missing optional dependency names the extra that brings it. Tracebacks are left for bugs."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RespreadError as exc:
            fail(str(exc))
        except ImportError as exc:
            root = (exc.name or "").split(".")[0]
            if root not in EXTRAS:
                raise
            fail(f"respread {ctx.invoked_subcommand} needs {root}, which is not installed: pip install 'respread[{EXTRAS[root]}]'")


app = typer.Typer(cls=Commands, add_completion=False, no_args_is_help=True, help="Measure and restore LLM output diversity.")
# Wide enough that the table never folds when output goes to a file or CI log.
console = Console(width=None if sys.stdout.isatty() else 220)
err_console = Console(stderr=True)


SERVED = "Served models (openai:NAME over HTTP, or --engine vllm)"


def fail(message: str, code: int = 2) -> None:
    """The one error line every command ends bad input with: `error: ...` on stderr, exit 2."""
    typer.echo(f"error: {message}", err=True)  # one unwrapped line, whatever the terminal width
    raise typer.Exit(code)


def log_line(message: str) -> None:
    """Progress of long work, on stderr, as it is."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    """The `respread` console command. It ends the process (see `_exit_without_teardown`): from Python, call
    `app(standalone_mode=False)` instead."""
    try:
        app()
    except SystemExit as exc:
        _exit_without_teardown(exc.code)
    _exit_without_teardown(0)


def _exit_without_teardown(code) -> None:
    """Exit as `sys.exit(code)` would, less the interpreter's teardown.

    Every file is written and closed by now; the teardown would only free, one by one, each object torch
    and transformers made: 0.22–0.34 s after the exact-mode eval here, against 0.05–0.09 s this way
    (three runs of `benchmarks/profile_exact_process.py --exit`). Exit handlers still run and the streams
    are flushed (a reader gone from the pipe turns exit 0 into 120, as the interpreter does). The ordinary
    exit stays where something may still run after `main` returns or at teardown: a live non-daemon thread,
    a profiler, tracer or `sys.monitoring` tool (`python -m cProfile` writes its file then), `python -i`,
    or vLLM, whose engine may clean up in finalizers.
    """
    import atexit
    import os
    import threading

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's and PyPy's own entry point for this
    monitoring = getattr(sys, "monitoring", None)
    if (
        run_exit_handlers is None
        or any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread())
        or sys.getprofile() is not None
        or sys.gettrace() is not None
        or (monitoring is not None and any(monitoring.get_tool(tool) for tool in range(6)))
        or sys.flags.inspect
        or "vllm" in sys.modules
    ):
        raise SystemExit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # what the interpreter does with sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            code = code or 120
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
