"""`respread report`: one HTML page of everything respread wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from respread.cli._app import app, console
from respread.errors import RespreadError


@app.command("report")
def report_command(
    runs: list[Path] = typer.Argument(..., help="Run directories (eval, study, compare, baselines, train) or decompose/capability JSON files."),
    out: Path = typer.Option(Path("report.html"), help="The HTML page; charts go as PNG and SVG into <name>_figures/ beside it."),
    screenshot: Optional[Path] = typer.Option(None, help="Also save a PNG of the page's first screen as headless Chromium shows it."),
    full_page: bool = typer.Option(False, "--full-page", help="Screenshot the whole page, not the first screen."),
) -> None:
    """One self-contained HTML page of charts and tables from respread's outputs (no network needed to open it)."""
    from respread.report.page import build_report

    if screenshot and screenshot.suffix.lower() != ".png":
        raise RespreadError(f"--screenshot {screenshot} must end in .png")
    with console.status("drawing the report"):
        page = build_report(runs, out)
    console.print(f"report: {page} · charts (PNG, SVG): {page.parent / (page.stem + '_figures')}")
    if screenshot:
        from respread.report.browser import screenshot as take_screenshot

        console.print(f"screenshot: {take_screenshot(page, screenshot, full_page=full_page)}")
