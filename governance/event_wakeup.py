"""Waking the event feed's long-polls when a workspace's events are stamped.

A waiting `GET /api/events?wait=` holds neither a transaction nor a database connection: it
subscribes to its workspace's Redis channel, reads the database once, and when nothing is new
sleeps on the subscription until `notify` publishes (or `RECHECK_S` passes), then reads again.
The message only says "look again"; what the client gets always comes from the database, so a
lost or duplicated message costs at most one extra read or `RECHECK_S` of latency.

Without Redis (the embedded default's filesystem broker) there is nothing to subscribe to: the
waiter sleeps `POLL_S` between reads instead.

Channels are named after the database too, so deployments (or test sessions) sharing one Redis
never wake each other's readers, which would be harmless anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache

import redis
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

# A subscribed waiter reads the database again at least this often (a lost message).
RECHECK_S = 5.0
# Without Redis, the interval between reads.
POLL_S = 1.0


def channel_name(workspace_id: int) -> str:
    return f"flowgate:events:{connection.settings_dict['NAME']}:{workspace_id}"


@cache
def _client(url: str) -> redis.Redis:
    timeout = settings.FLOWGATE_BROKER_TIMEOUT_S
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def notify(workspace_id: int) -> None:
    """Wake the long-polls of the workspace (best effort: they re-check on their own)."""
    if not settings.REDIS_URL:
        return
    try:
        _client(settings.REDIS_URL).publish(channel_name(workspace_id), b"1")
    except redis.RedisError:
        logger.warning("could not wake the event feed of workspace %s", workspace_id)


class Waiter:
    """Sleeps until the workspace's events may have changed (see the module docstring)."""

    def __init__(self, pubsub: redis.client.PubSub | None) -> None:
        self._pubsub = pubsub

    def wait(self, seconds: float) -> None:
        """Return after a wake-up or `seconds` (capped at `RECHECK_S` / `POLL_S`)."""
        if seconds <= 0:
            return
        if self._pubsub is None:
            time.sleep(min(seconds, POLL_S))
            return
        deadline = time.monotonic() + min(seconds, RECHECK_S)
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            except redis.RedisError:
                logger.warning("event feed subscription lost; polling instead")
                self._pubsub = None
                time.sleep(min(left, POLL_S))
                return
            if message is not None:
                return


@contextmanager
def waiter(workspace_id: int) -> Iterator[Waiter]:
    """Subscribe to the workspace's wake-ups *before* the caller's first read, so a stamp that
    commits between that read and the wait still wakes it."""
    pubsub = None
    if settings.REDIS_URL:
        try:
            pubsub = _client(settings.REDIS_URL).pubsub()
            pubsub.subscribe(channel_name(workspace_id))
        except redis.RedisError:
            logger.warning("cannot subscribe to the event feed's wake-ups; polling instead")
            pubsub = None
    try:
        yield Waiter(pubsub)
    finally:
        if pubsub is not None:
            with suppress(redis.RedisError):
                pubsub.close()
