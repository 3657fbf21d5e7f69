"""Helpers of the browser tests (tests/browser): screenshots and CSP violations of a page."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page


def screenshot(page: Page, name: str) -> None:
    """Write a full-page screenshot to `$FLOWGATE_SCREENSHOTS_DIR` when it is set."""
    folder = os.environ.get("FLOWGATE_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def csp_violations(page: Page) -> list[str]:
    """Console errors Chromium logs when the content security policy blocks something."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found
