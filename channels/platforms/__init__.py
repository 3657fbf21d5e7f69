"""Clients of the chat platforms, one module per platform, built from a `ChannelConnection`.

Every module offers the same three calls used to deliver cards — `post_message(connection,
content, thread_id=None) -> PostedMessage`, `edit_message(connection, message_id, content)` —
where `content` is the platform's own message payload (rendered by `channels.cards`), plus the
calls the interaction handlers need (Slack `open_modal`, `post_ephemeral`; Telegram
`send_force_reply`, `answer_callback_query`). Every failure is a `PlatformError` saying whether
trying again later can help and, for rate limits, when.

API roots come from settings (`FLOWGATE_SLACK_API_URL`, `FLOWGATE_DISCORD_API_URL`,
`FLOWGATE_TELEGRAM_API_URL`) so tests can point them at local stand-in servers.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType


class PlatformError(Exception):
    """A chat platform call failed.

    `status` is the HTTP status (0 when no answer arrived), `retry_after` the seconds the platform
    asked us to wait (429), `retryable` whether the same call may succeed later (rate limits,
    5xx, network errors) rather than never (bad token, unknown channel).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        retry_after: float | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable

    @classmethod
    def from_status(
        cls, message: str, status: int, retry_after: float | None = None
    ) -> PlatformError:
        """The error for an HTTP status: 429 and 5xx are worth retrying, other 4xx are not."""
        return cls(
            message,
            status=status,
            retry_after=retry_after,
            retryable=status == 429 or status >= 500,
        )


@dataclass(frozen=True)
class PostedMessage:
    """Where a posted message lives: its id (Slack ts) and the id a thread reply attaches to."""

    message_id: str
    thread_id: str


def module_for(kind: str) -> ModuleType:
    """The platform module of a connection kind (`slack`, `discord`, `telegram`)."""
    from channels.platforms import discord, slack, telegram

    modules = {"slack": slack, "discord": discord, "telegram": telegram}
    try:
        return modules[kind]
    except KeyError:
        raise PlatformError(f"unknown chat platform {kind!r}") from None
