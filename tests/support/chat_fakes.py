"""Local HTTP servers standing in for the Slack Web API, the Discord API and the Telegram Bot API.

Each fake is a real HTTP server (threaded, 127.0.0.1, a random free port) that answers the calls
Flowgate makes with the JSON the platform would send, keeps the messages it was sent (so a test
can look at a card as the platform now shows it), records every request, and can be scripted to
fail. The tests' fixture (`tests/channels/conftest.py`, `chat_fakes`) starts all three and points
the settings, and worker subprocesses, at them.

    fake.url                       API root to configure (Slack ".../api/", Discord ".../api/v10")
    fake.requests                  every request: `Recorded(method, path, headers, body, call,
                                   at, status, response)` (`at`: time.monotonic() on arrival;
                                   `status` and `response`: the answer, once sent)
    fake.calls("chat.update")      the recorded requests of one call, in order
    fake.fail_next(2, status=429, retry_after=1, call="chat.update")
                                   the next 2 matching requests answer 429 with Retry-After: 1
                                   (`call=None` matches every call; status 500 etc. likewise)
    fake.delay_next(1, seconds=5, call="chat.postEphemeral")
                                   the next matching request is answered 5 s late (a slow
                                   platform); a request may be both delayed and failed
    fake.messages                  {(channel, message id): current message payload}
    fake.reset()                   forget requests, messages and failure rules

`call` names: Slack methods ("chat.postMessage", "chat.update", "chat.postEphemeral",
"views.open"); Telegram methods ("sendMessage", "editMessageText", "answerCallbackQuery", ...);
Discord "create_message", "edit_message", "interaction_callback", "edit_original", "followup".
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    """One request a fake received: `body` is the parsed JSON or form body ({} when empty);
    header names are title-cased ("Authorization", "Retry-After", "Content-Type")."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    call: str
    at: float = field(default_factory=time.monotonic)
    status: int = 0  # what the fake answered
    response: Any = None  # the JSON it answered with


@dataclass
class _Rule:
    """Applies to the next `remaining` requests of `call` (None: of any call)."""

    remaining: int
    call: str | None


@dataclass
class _FailRule(_Rule):
    status: int = 500
    retry_after: float | None = None


@dataclass
class _DelayRule(_Rule):
    seconds: float = 0.0


class FakePlatform:
    """Base of the three fakes: the server thread, recording and scripted failures."""

    prefix = ""  # path prefix of the API root

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._rules: list[_FailRule] = []
        self._delays: list[_DelayRule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1001)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakePlatform:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    # -- scripting and inspection -------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 429,
        retry_after: float | None = 1,
        call: str | None = None,
    ) -> None:
        """The next `n` requests (of `call`, or any) answer `status`; 429s carry Retry-After."""
        with self._lock:
            self._rules.append(_FailRule(n, call, status, retry_after))

    def delay_next(self, n: int = 1, *, seconds: float, call: str | None = None) -> None:
        """The next `n` requests (of `call`, or any) are answered `seconds` late."""
        with self._lock:
            self._delays.append(_DelayRule(n, call, seconds))

    def calls(self, call: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.call == call]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.messages.clear()
            self._rules.clear()
            self._delays.clear()

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    # -- what subclasses implement ------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        """(call name, path parameters) of a request path below the prefix."""
        raise NotImplementedError

    def answer(
        self, call: str, params: dict[str, str], body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any]:
        """(HTTP status, JSON body) of a successful call."""
        raise NotImplementedError

    def failure(self, status: int, retry_after: float | None) -> Any:
        """The platform's JSON body for a scripted failure."""
        raise NotImplementedError

    # -- the request handler ------------------------------------------------------------------

    def _take(self, rules: list, call: str):
        """The first rule of `rules` matching `call` with uses left (one use taken), or None."""
        with self._lock:
            for rule in rules:
                if rule.remaining > 0 and rule.call in (None, call):
                    rule.remaining -= 1
                    return rule
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = _parse_body(raw, handler.headers.get("Content-Type", ""))
        path = urlsplit(handler.path).path
        relative = path[len(self.prefix) :] if path.startswith(self.prefix) else path
        headers = {key.title(): value for key, value in handler.headers.items()}
        try:
            call, params = self.route(handler.command, relative)
        except LookupError:
            call, params = "unknown", {}
        recorded = Recorded(handler.command, path, headers, body, call)
        with self._lock:
            self.requests.append(recorded)
        delay = self._take(self._delays, call)
        if delay is not None:
            time.sleep(delay.seconds)
        rule = self._take(self._rules, call)
        extra: dict[str, str] = {}
        if rule is not None:
            status, payload = rule.status, self.failure(rule.status, rule.retry_after)
            if rule.retry_after is not None and rule.status == 429:
                extra["Retry-After"] = f"{rule.retry_after:g}"
        elif call == "unknown":
            status, payload = 404, {"error": f"no such call {handler.command} {path}"}
        else:
            status, payload = self.answer(call, params, body, headers)
        recorded.status, recorded.response = status, payload
        data = b"" if payload is None else json.dumps(payload).encode()
        handler.send_response(status)
        if data:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._handle(self)

            do_GET = do_PATCH = do_PUT = do_DELETE = do_POST

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler


def _parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type:
        return json.loads(text)
    if "x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(text))
    try:
        return json.loads(text)
    except ValueError:
        return {"_raw": text}


class FakeSlack(FakePlatform):
    """The Slack Web API: `POST /api/<method>` with a bot token (slack-sdk's WebClient)."""

    prefix = "/api/"

    def route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        if not path or "/" in path:
            raise LookupError(path)
        return path, {}

    def failure(self, status: int, retry_after: float | None) -> Any:
        return {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}

    def answer(self, call, params, body, headers):
        if not headers.get("Authorization", "").startswith("Bearer "):
            return 200, {"ok": False, "error": "not_authed"}
        channel = str(body.get("channel", ""))
        if call in ("chat.postMessage", "chat.update") and not self.blocks_valid(body):
            return 200, {"ok": False, "error": "invalid_blocks"}
        if call == "chat.postMessage":
            ts = f"{int(time.time())}.{self.next_id():06d}"
            message = {**body, "ts": ts}
            with self._lock:
                self.messages[(channel, ts)] = message
            return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}
        if call == "chat.update":
            key = (channel, str(body.get("ts", "")))
            with self._lock:
                if key not in self.messages:
                    return 200, {"ok": False, "error": "message_not_found"}
                self.messages[key] = {**body}
            return 200, {"ok": True, "channel": channel, "ts": key[1], "text": body.get("text")}
        if call == "chat.postEphemeral":
            return 200, {"ok": True, "message_ts": f"{int(time.time())}.{self.next_id():06d}"}
        if call == "views.open":
            return 200, {"ok": True, "view": {"id": f"V{self.next_id()}", **body.get("view", {})}}
        if call == "auth.test":
            return 200, {"ok": True, "team_id": "T0001", "user_id": "U0BOT", "bot_id": "B0001"}
        return 200, {"ok": False, "error": "unknown_method"}

    @staticmethod
    def blocks_valid(body: dict[str, Any]) -> bool:
        """Slack's length limits on Block Kit text (it refuses the whole message beyond them):
        3000 characters of a section's text, 2000 of a section field, 150 of a header."""
        blocks = body.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        for block in blocks:
            text = (block.get("text") or {}).get("text", "")
            limit = 150 if block.get("type") == "header" else 3000
            fields = [f.get("text", "") for f in block.get("fields") or []]
            if len(text) > limit or any(len(f) > 2000 for f in fields):
                return False
        return True


class FakeDiscord(FakePlatform):
    """The Discord HTTP API v10: channel messages, interaction callbacks and webhook edits."""

    prefix = "/api/v10"
    _routes = [
        ("POST", re.compile(r"^/channels/(?P<channel>[^/]+)/messages$"), "create_message"),
        (
            "PATCH",
            re.compile(r"^/channels/(?P<channel>[^/]+)/messages/(?P<message>[^/]+)$"),
            "edit_message",
        ),
        (
            "POST",
            re.compile(r"^/interactions/(?P<interaction>[^/]+)/(?P<token>[^/]+)/callback$"),
            "interaction_callback",
        ),
        (
            "PATCH",
            re.compile(r"^/webhooks/(?P<app>[^/]+)/(?P<token>[^/]+)/messages/@original$"),
            "edit_original",
        ),
        ("POST", re.compile(r"^/webhooks/(?P<app>[^/]+)/(?P<token>[^/]+)$"), "followup"),
    ]

    def route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        for verb, pattern, name in self._routes:
            match = pattern.match(path)
            if verb == method and match:
                return name, match.groupdict()
        raise LookupError(path)

    def failure(self, status: int, retry_after: float | None) -> Any:
        if status == 429:
            return {
                "message": "You are being rate limited.",
                "retry_after": retry_after or 1.0,
                "global": False,
            }
        return {"message": "500: Internal Server Error", "code": 0}

    def _message(self, channel: str, message_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": message_id,
            "channel_id": channel,
            "type": 19 if body.get("message_reference") else 0,
            "content": body.get("content", ""),
            "embeds": body.get("embeds", []),
            "components": body.get("components", []),
            "message_reference": body.get("message_reference"),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "author": {"id": "900000000000000001", "username": "flowgate", "bot": True},
        }

    def answer(self, call, params, body, headers):
        if call in ("create_message", "edit_message") and not headers.get(
            "Authorization", ""
        ).startswith("Bot "):
            return 401, {"message": "401: Unauthorized", "code": 0}
        if call == "create_message":
            message_id = str(1_200_000_000_000_000_000 + self.next_id())
            message = self._message(params["channel"], message_id, body)
            with self._lock:
                self.messages[(params["channel"], message_id)] = message
            return 200, message
        if call == "edit_message":
            key = (params["channel"], params["message"])
            with self._lock:
                if key not in self.messages:
                    return 404, {"message": "Unknown Message", "code": 10008}
                message = {**self.messages[key], **self._edit_fields(body)}
                self.messages[key] = message
            return 200, message
        if call == "interaction_callback":
            return 204, None
        if call in ("edit_original", "followup"):
            return 200, self._message("0", str(1_300_000_000_000_000_000 + self.next_id()), body)
        raise AssertionError(call)

    @staticmethod
    def _edit_fields(body: dict[str, Any]) -> dict[str, Any]:
        return {k: body[k] for k in ("content", "embeds", "components") if k in body}


class FakeTelegram(FakePlatform):
    """The Telegram Bot API: `POST /bot<token>/<method>` with a JSON body."""

    _path = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")

    def route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        match = self._path.match(path)
        if not match:
            raise LookupError(path)
        return match["method"], {"token": match["token"]}

    def failure(self, status: int, retry_after: float | None) -> Any:
        if status == 429:
            return {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after or 1:g}",
                "parameters": {"retry_after": retry_after or 1},
            }
        return {"ok": False, "error_code": status, "description": "Internal Server Error"}

    @staticmethod
    def bot_id(token: str) -> int:
        """The bot's user id: as on Telegram, the numeric part of its token before the colon."""
        return int(token.partition(":")[0])

    def _result(
        self, token: str, chat_id: str, message_id: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id},
            "from": {"id": self.bot_id(token), "is_bot": True, "first_name": "Flowgate"},
            "text": body.get("text", ""),
            **({"reply_markup": body["reply_markup"]} if body.get("reply_markup") else {}),
        }

    def answer(self, call, params, body, headers):
        chat_id = str(body.get("chat_id", ""))
        if call == "sendMessage":
            if not body.get("text"):
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message text is empty",
                }
            message_id = self.next_id()
            result = self._result(params["token"], chat_id, message_id, body)
            with self._lock:
                self.messages[(chat_id, str(message_id))] = {**body, "message_id": message_id}
            return 200, {"ok": True, "result": result}
        if call in ("editMessageText", "editMessageReplyMarkup"):
            key = (chat_id, str(body.get("message_id", "")))
            with self._lock:
                current = self.messages.get(key)
                if current is None:
                    return 400, {
                        "ok": False,
                        "error_code": 400,
                        "description": "Bad Request: message to edit not found",
                    }
                updated = {**current, **body}
                if call == "editMessageText" and "reply_markup" not in body:
                    updated.pop("reply_markup", None)  # Telegram drops the keyboard too
                if updated == current:
                    return 400, {
                        "ok": False,
                        "error_code": 400,
                        "description": "Bad Request: message is not modified",
                    }
                self.messages[key] = updated
            result = self._result(params["token"], chat_id, int(key[1]), updated)
            return 200, {"ok": True, "result": result}
        if call in ("answerCallbackQuery", "setWebhook", "deleteWebhook"):
            return 200, {"ok": True, "result": True}
        if call == "getMe":
            return 200, {
                "ok": True,
                "result": {
                    "id": self.bot_id(params["token"]),
                    "is_bot": True,
                    "username": "flowgate_bot",
                },
            }
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}


@dataclass
class ChatFakes:
    """The three fakes together (what the `chat_fakes` fixture yields)."""

    slack: FakeSlack
    discord: FakeDiscord
    telegram: FakeTelegram

    @classmethod
    def start(cls) -> ChatFakes:
        return cls(FakeSlack().start(), FakeDiscord().start(), FakeTelegram().start())

    def stop(self) -> None:
        for fake in self.all:
            fake.stop()

    @property
    def all(self) -> tuple[FakePlatform, ...]:
        return (self.slack, self.discord, self.telegram)

    @property
    def settings(self) -> dict[str, str]:
        """Django settings (and, identically named, environment variables) pointing at the fakes."""
        return {
            "FLOWGATE_SLACK_API_URL": self.slack.url,
            "FLOWGATE_DISCORD_API_URL": self.discord.url,
            "FLOWGATE_TELEGRAM_API_URL": self.telegram.url,
        }
