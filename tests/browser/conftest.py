"""Browser fixtures: Playwright driving Debian's Chromium against pytest-django's live server.

The browser is never downloaded: `./flowgate test` makes sure Chromium is installed and exports
its path as FLOWGATE_CHROMIUM. Users are signed in by planting a real Django session cookie
(`signed_in_page(user)`), so tests exercise the pages, not the login form, unless they mean to.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

# The flags Debian's Chromium needs as root on a machine without a network or a screen.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = os.environ.get("FLOWGATE_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(executable):
        pytest.fail(
            f"Chromium not found at {executable}: install Debian's chromium package "
            "(./flowgate test does it as root) or set FLOWGATE_CHROMIUM"
        )
    # Playwright's sync API keeps an asyncio loop in this thread; Django would then refuse the
    # ORM calls the tests make between page actions. Allow them for the browser tests only.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_context(browser: Browser, live_server):
    """`new_context(width=390, height=844)`: a fresh cookie jar; closed after the test."""
    contexts: list[BrowserContext] = []

    def make(*, width: int = 1280, height: int = 900) -> BrowserContext:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def signed_in_page(new_context, live_server):
    """`signed_in_page(user, width=, height=)`: a page whose context holds `user`'s session."""

    def make(user, **viewport) -> Page:
        client = Client()
        client.force_login(user)
        context = new_context(**viewport)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        return context.new_page()

    return make
