"""Fixtures of the config tests: the chat stand-ins and a metrics token."""

from __future__ import annotations

import pytest

from tests.support.chat_fakes import ChatFakes

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def chat_platforms(settings):
    """Local Slack, Discord and Telegram stand-ins (tests/support/chat_fakes.py), this process
    pointed at them; pass `chat_platforms.settings` to a worker as its environment."""
    fakes = ChatFakes.start()
    for name, value in fakes.settings.items():
        setattr(settings, name, value)
    try:
        yield fakes
    finally:
        fakes.stop()


@pytest.fixture
def metrics_token(settings) -> str:
    settings.FLOWGATE_METRICS_TOKEN = METRICS_TOKEN
    return METRICS_TOKEN
