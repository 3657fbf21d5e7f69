"""Fixtures of the chat tests: local stand-ins for Slack, Discord and Telegram, and connections."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from channels.models import ChannelConnection, ChannelKind
from tests.support.chat_fakes import ChatFakes, FakeDiscord, FakeSlack, FakeTelegram


@dataclass
class ChatFakesFixture:
    """What `chat_fakes` yields. See tests/support/chat_fakes.py for one fake's API.

    chat_fakes.slack / .discord / .telegram   the running fakes (`.url`, `.requests`,
                                              `.calls(name)`, `.fail_next(...)`, `.messages`)
    chat_fakes.env                            {"FLOWGATE_SLACK_API_URL": ..., ...}: pass it
                                              to `celery_worker_factory(env=chat_fakes.env)`
    chat_fakes.connect(workspace)             {"slack": ChannelConnection, "discord": ...,
                                               "telegram": ...}, one active connection of
                                              each kind with test tokens and secrets
    """

    fakes: ChatFakes

    @property
    def slack(self) -> FakeSlack:
        return self.fakes.slack

    @property
    def discord(self) -> FakeDiscord:
        return self.fakes.discord

    @property
    def telegram(self) -> FakeTelegram:
        return self.fakes.telegram

    @property
    def env(self) -> dict[str, str]:
        return dict(self.fakes.settings)

    def connect(
        self, workspace, *, kinds=tuple(ChannelKind.values), slack_app: bool = False
    ) -> dict[str, ChannelConnection]:
        """One active ChannelConnection per kind in `kinds` for `workspace` (ids the fakes accept).

        Slack: channel C0FLOWGATE, team T0001, signing secret "slack-signing-secret".
        Discord: channel 1100000000000000001, application 1000000000000000001, public key
        "00"*32 (replace it with your own Ed25519 key to sign interactions). Telegram: chat
        -1001234567890, webhook secret "telegram-webhook-secret".
        `slack_app=True`: the Slack connection has no secret of its own and uses the
        deployment's Slack app (with the `deployment_slack_app` fixture, which sets
        FLOWGATE_SLACK_SIGNING_SECRET to the same "slack-signing-secret").
        """
        values = {
            ChannelKind.SLACK: {
                "channel_id": "C0FLOWGATE",
                "external_team_id": "T0001",
                "application_id": "A0001",
                "bot_token": "xoxb-test-token",
                "signing_secret": "slack-signing-secret",
            },
            ChannelKind.DISCORD: {
                "channel_id": "1100000000000000001",
                "external_team_id": "1000000000000000009",
                "application_id": "1000000000000000001",
                "public_key": "00" * 32,
                "bot_token": "discord-bot-token",
            },
            ChannelKind.TELEGRAM: {
                "channel_id": "-1001234567890",
                "bot_token": "123456:telegram-bot-token",
                "signing_secret": "telegram-webhook-secret",
            },
        }
        if slack_app:
            values[ChannelKind.SLACK]["signing_secret"] = ""
        return {
            kind: ChannelConnection.objects.create(
                workspace=workspace, kind=kind, name=f"{kind}-approvals", **values[kind]
            )
            for kind in kinds
        }


@pytest.fixture
def chat_fakes(settings):
    """Start the Slack, Discord and Telegram stand-ins (real HTTP on 127.0.0.1, random ports),
    point this process's settings at them, and stop them after the test.

    A Celery worker must be told too: `celery_worker_factory(env=chat_fakes.env)`.
    """
    fakes = ChatFakes.start()
    for name, value in fakes.settings.items():
        setattr(settings, name, value)
    try:
        yield ChatFakesFixture(fakes)
    finally:
        fakes.stop()


@pytest.fixture(autouse=True)
def notices_in_process(request):
    """Run the Celery tasks a test enqueues (a chat user's answer, card updates) in this process
    as they are enqueued, for tests inside a test transaction, where a worker could not see the
    rows; `tests.support.interactions.post` runs each request's on-commit callbacks. Tests
    with a real worker (`celery_worker_factory`) keep the broker."""
    if "celery_worker_factory" in request.fixturenames:
        yield
        return
    from config.celery import app

    before = {name: app.conf[name] for name in ("task_always_eager", "task_eager_propagates")}
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    try:
        yield
    finally:
        app.conf.update(before)


@pytest.fixture
def deployment_slack_app(settings) -> str:
    """This deployment has its own Slack app: FLOWGATE_SLACK_SIGNING_SECRET is set (to the
    secret the interaction helpers sign with). Slack connections without a secret of their own
    (`chat_fakes.connect(..., slack_app=True)`) are verified with it: `platform` assurance."""
    settings.FLOWGATE_SLACK_SIGNING_SECRET = "slack-signing-secret"
    return settings.FLOWGATE_SLACK_SIGNING_SECRET


# --- Outbound webhooks ---------------------------------------------------------------------------

# What a worker sending webhooks to the local receiver needs: loopback allowlisted (as an
# operator would list their receiver's host) and a short first retry.
WEBHOOK_WORKER_ENV = {
    "FLOWGATE_HTTP_ALLOWED_HOSTS": "127.0.0.1",
    "FLOWGATE_WEBHOOK_RETRY_BACKOFF_S": "1",
}


@pytest.fixture
def allow_loopback(settings) -> None:
    """This process may target 127.0.0.1 (webhook endpoints are checked when saved)."""
    settings.FLOWGATE_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def webhook_worker(celery_worker_factory, allow_loopback):
    """A real Celery worker that may POST to the local receiver (`stand_in`)."""
    return celery_worker_factory(env=WEBHOOK_WORKER_ENV)
