"""Helpers of the browser tests (tests/browser): CSP violations, a page cut off from everything
but the live server, and screenshots into $FLOWGATE_SCREENSHOTS_DIR (scripts/screenshots.py)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page


def csp_violations(page: Page) -> list[str]:
    """Every CSP violation of `page` from now on: Chromium's console reports and the
    `securitypolicyviolation` events (script, style, font, image or connect blocked)."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.expose_function("__flowgateCspViolation", lambda text: found.append(text))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__flowgateCspViolation(e.violatedDirective + ' ' + e.blockedURI));"
    )
    return found


def offline_except(page: Page, origin: str) -> list[str]:
    """Abort every request of `page` that leaves `origin` (as if there were no internet); the
    aborted URLs are returned in the list."""
    outside: list[str] = []

    def route(route_, request):
        if request.url.startswith(origin) or request.url.startswith("data:"):
            route_.continue_()
        else:
            outside.append(request.url)
            route_.abort()

    page.route("**/*", route)
    return outside


def screenshot(page: Page, name: str) -> None:
    """A full-page screenshot into $FLOWGATE_SCREENSHOTS_DIR when it is set."""
    folder = os.environ.get("FLOWGATE_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)
