"""`respread` command line: thin wrappers that validate arguments, call the library, print.

Commands by verb: `measure` (eval, tasks, decompose), `locate` (compare, check), `restore` (train, study,
baselines, capability), `report`; every command that loads a model takes the same model options
(`respread.cli.options`). From Python, call `app(standalone_mode=False)`, or better the library itself.
"""

from respread.cli import locate, measure, report, restore  # noqa: F401  (registers the commands)
from respread.cli._app import app, main

__all__ = ["app", "main"]
