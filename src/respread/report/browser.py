"""Open a report in headless Chromium (Playwright): screenshots, and the checks the tests make.

Any Chromium works: `$RESPREAD_CHROMIUM`, else `chromium` / `chromium-browser` / `google-chrome` on PATH
(Debian: `apt-get install chromium`), else the browser `playwright install chromium` downloaded.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from respread.errors import RespreadError

# Without these, Chromium phones home at start (updates, sync, safe browsing), which a closed network refuses.
QUIET_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
]


def chromium_path() -> str | None:
    """The Chromium to drive, or None to let Playwright use its own download."""
    if os.environ.get("RESPREAD_CHROMIUM"):
        return os.environ["RESPREAD_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


@dataclass
class PageLog:
    """What the page did while open: every request it made, console errors and uncaught exceptions."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def open_page(html_file: Path, width: int = 1360, height: int = 900):
    """Yield (page, log) for `html_file` loaded in headless Chromium; requests other than the file are blocked."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise RespreadError("a screenshot needs Playwright: pip install playwright (and a Chromium: apt-get install chromium)") from exc
    url = html_file.resolve().as_uri()
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=QUIET_FLAGS)
        except Exception as exc:  # noqa: BLE001 - Playwright raises its own Error for a missing or broken browser
            raise RespreadError(
                f"cannot start Chromium ({str(exc).strip().splitlines()[0]}); install it (apt-get install chromium) "
                "or point RESPREAD_CHROMIUM at one"
            ) from exc
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            log = PageLog()
            page.on("request", lambda request: log.requests.append(request.url))
            page.on("console", lambda message: log.errors.append(f"console {message.type}: {message.text}") if message.type == "error" else None)
            page.on("pageerror", lambda error: log.errors.append(f"page error: {error}"))
            # Anything but the page itself is refused (and still logged above), so the page cannot lean on the network.
            page.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
            page.goto(url, wait_until="load")
            yield page, log
        finally:
            browser.close()


def screenshot(html_file: Path, png: Path, full_page: bool = False, width: int = 1360, height: int = 900) -> Path:
    """Save a PNG of the report as a browser shows it (the first screen, or the whole page)."""
    if png.suffix.lower() != ".png":
        raise RespreadError(f"--screenshot {png} must end in .png")
    try:
        png.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RespreadError(f"cannot write the screenshot at {png} ({exc.strerror or exc}); choose another path") from exc
    with open_page(html_file, width, height) as (page, _):
        page.screenshot(path=str(png), full_page=full_page)
    return png
