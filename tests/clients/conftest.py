"""Fixtures for the tests of clients/python (the Python client and its MCP server).

They run the real client over real HTTP against pytest-django's live server (the suite's
PostgreSQL database), with a real Celery worker wherever a run has to move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flowgate_client import FlowgateClient


@pytest.fixture
def connect(live_server) -> Iterator[Callable[..., FlowgateClient]]:
    """`connect(member)` -> a `FlowgateClient` with that member's token, closed after the test."""
    opened: list[FlowgateClient] = []

    def make(member, **options) -> FlowgateClient:
        client = FlowgateClient(live_server.url, member.token, **options)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()
