"""A broker that is down, or that accepts connections and never answers, does not hold a request
that enqueues a chat task: the publish fails within the bounded timeouts and retries of
config/settings/base.py, the caller logs it, and the request goes on.

Each case runs the enqueue in a fresh process (the broker settings are read when the settings
load) against a stand-in for the broken Redis on loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENQUEUE = """
import django
django.setup()
from channels.notices import Notice, _enqueue
_enqueue(Notice(1, "slack.post_ephemeral", {"channel": "C1", "user": "U1", "text": "hi"}))
print("returned")
"""


class SilentRedis:
    """A TCP server that accepts connections and never says a word (a hung or partitioned
    Redis: the case where only socket timeouts help)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def enqueue_with_broker(redis_url: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "REDIS_URL": redis_url, "FLOWGATE_BROKER_TIMEOUT_S": "1"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", ENQUEUE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # before the bound, a silent broker held the publish forever
    )
    return time.monotonic() - started, done


@pytest.fixture
def silent_redis():
    server = SilentRedis()
    yield server
    server.close()


@pytest.mark.parametrize("broker", ["silent", "refusing"])
def test_enqueueing_a_chat_task_with_the_broker_down_returns_within_seconds(broker, silent_redis):
    port = silent_redis.port if broker == "silent" else closed_port()

    took, done = enqueue_with_broker(f"redis://127.0.0.1:{port}/0")

    assert done.returncode == 0, done.stderr[-2000:]
    assert "returned" in done.stdout
    assert "could not enqueue chat notice slack.post_ephemeral" in done.stderr
    # 2 publish attempts x 2 connection attempts x 1 s, plus the interpreter's start-up.
    assert took < 15, took
