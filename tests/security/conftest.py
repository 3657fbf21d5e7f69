"""The matrix's world targets webhook endpoints at the loopback receiver, so loopback is on the
egress allowlist for these tests (an operator lists their receiver's host the same way)."""

import pytest


@pytest.fixture(autouse=True)
def allow_loopback(settings) -> None:
    settings.FLOWGATE_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
