"""A real HTTP stand-in server on 127.0.0.1 (ephemeral port): the target of http nodes and
model providers, and the receiver of outbound webhooks."""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lowercased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StandIn:
    """Answers every request with `status` and `reply` (JSON-encoded unless bytes), after
    `delay_s`; records what it received. Tests change the reply between calls, or script the
    statuses of the next requests in `statuses` (consumed in order, then `status`)."""

    status: int = 200
    statuses: list[int] = field(default_factory=list)
    reply: Any = field(default_factory=lambda: {"ok": True})
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.handle_error = lambda request, address: None  # client gone after a timeout
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def payload(self) -> bytes:
        return self.reply if isinstance(self.reply, bytes) else json.dumps(self.reply).encode()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()  # wake handlers still "slow"
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait(self) -> None:
        self._release.wait(self.delay_s)

    def next_status(self) -> int:
        with self._lock:
            return self.statuses.pop(0) if self.statuses else self.status


def _handler(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            stand_in.requests.append(
                Recorded(
                    method=self.command,
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                )
            )
            if stand_in.delay_s:
                stand_in.wait()
            payload = stand_in.payload()
            self.send_response(stand_in.next_status())
            self.send_header("Content-Type", stand_in.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in stand_in.headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (timeout tests)
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
