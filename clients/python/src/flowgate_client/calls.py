"""The API's operations as plain data (sans-I/O): what to send and how to read the answer.

`FlowgateClient` and `AsyncFlowgateClient` only carry these `Call`s over httpx, so the two
clients cannot drift apart in paths, bodies or parsing. Long-poll waiting is planned here too
(`WaitPlan`), for the same reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from flowgate_client.errors import ApprovalTimeout, FlowgateError
from flowgate_client.models import ApprovalRequest, Run

T = TypeVar("T")

REQUESTS = "/api/approvals/requests"
AUTOMATIONS = "/api/automations/v2"
RUNS = f"{AUTOMATIONS}/runs"

#: The longest single long-poll the client asks for; the server bounds `wait` too.
MAX_POLL_S = 30.0
#: Extra time the HTTP read may take beyond the server-side wait.
POLL_MARGIN_S = 10.0
#: Answers worth retrying for a call that is safe to repeat (a proxy or a restarting server).
RETRYABLE_STATUS = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP exchange: the request, and how to turn a 2xx JSON body into a `T`.

    `repeatable` says whether sending it twice is harmless (a read, or a write carrying an
    `Idempotency-Key`, which the server answers once and replays after).
    """

    method: str
    path: str
    parse: Callable[[dict[str, Any]], T]
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None

    @property
    def repeatable(self) -> bool:
        return self.method == "GET" or "Idempotency-Key" in self.headers


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def result(call: Call[T], response: httpx.Response) -> T:
    """The parsed body of a 2xx answer, else the API's error as a `FlowgateError`."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.is_success:
        return call.parse(body)
    if not isinstance(body, dict):
        body = {}
    raise FlowgateError(
        response.status_code,
        str(body.get("code") or f"HTTP_{response.status_code}"),
        str(body.get("error") or response.reason_phrase),
        body,
    )


def retry_delays(retries: int) -> Iterator[float]:
    """Backoff before each retry of a repeatable call: 0.5 s, 1 s, 2 s, …"""
    return (0.5 * 2**attempt for attempt in range(retries))


def should_retry(call: Call[Any], error: Exception) -> bool:
    """A repeatable call is retried after a transport error or a 502/503/504, nothing else."""
    if not call.repeatable:
        return False
    if isinstance(error, FlowgateError):
        return error.status in RETRYABLE_STATUS
    return isinstance(error, httpx.TransportError)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _idempotency(key: str | None) -> dict[str, str]:
    """Every create carries a key (a fresh one unless given), so a retry never acts twice."""
    return {"Idempotency-Key": key or str(uuid.uuid4())}


# --- Approval requests ---------------------------------------------------------------------------


def request_approval(
    *,
    action: str,
    arguments: dict[str, Any],
    summary: str,
    context: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    expiry: dict[str, Any] | None = None,
    response_schema: dict[str, Any] | None = None,
    editable: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[ApprovalRequest]:
    """Ask a human whether `action` may run with `arguments` (docs/agents.md).

    `policy` (reviewer eligibility, risk tier, data classes), `expiry`, `response_schema` (a
    JSON Schema the reviewer's answer must satisfy) and `editable` (`{"paths": [...],
    "schema": {...}}`: what a reviewer may change) are optional.
    """
    body = _drop_none(
        {
            "action": action,
            "arguments": arguments,
            "summary": summary,
            "context": context,
            "policy": policy,
            "expiry": expiry,
            "response_schema": response_schema,
            "editable": editable,
        }
    )
    return Call(
        "POST",
        REQUESTS,
        ApprovalRequest.from_json,
        json=body,
        headers=_idempotency(idempotency_key),
    )


def get_approval(request_id: str, *, wait: float | None = None) -> Call[ApprovalRequest]:
    """The request now, or (with `wait`) as soon as it is decided within that many seconds."""
    if not wait:
        return Call("GET", f"{REQUESTS}/{request_id}", ApprovalRequest.from_json)
    seconds = max(1, int(min(wait, MAX_POLL_S)))
    return Call(
        "GET",
        f"{REQUESTS}/{request_id}",
        ApprovalRequest.from_json,
        params={"wait": seconds},
        timeout=seconds + POLL_MARGIN_S,
    )


def list_approvals(
    *, status: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Call[Page[ApprovalRequest]]:
    """One page of the requests the token may see (an agent sees only its own)."""

    def parse(body: dict[str, Any]) -> Page[ApprovalRequest]:
        items = [ApprovalRequest.from_json(item) for item in body["requests"]]
        return Page(items, body.get("next_cursor"))

    params = _drop_none({"status": status, "limit": limit, "cursor": cursor})
    return Call("GET", REQUESTS, parse, params=params)


def decide_approval(
    request_id: str,
    *,
    decision: str,
    reason: str = "",
    arguments: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
) -> Call[ApprovalRequest]:
    """A human's decision (tokens of agents are refused: only verified humans decide)."""
    body = _drop_none(
        {"decision": decision, "reason": reason, "arguments": arguments, "response": response}
    )
    return Call("POST", f"{REQUESTS}/{request_id}/decide", ApprovalRequest.from_json, json=body)


# --- Runs ----------------------------------------------------------------------------------------


def _run(body: dict[str, Any]) -> Run:
    return Run.from_json(body["run"])


def run_now(
    automation_id: str, *, inputs: dict[str, Any] | None = None, idempotency_key: str | None = None
) -> Call[Run]:
    """Start a run of an active automation, with `inputs` for it to work on."""
    return Call(
        "POST",
        f"{AUTOMATIONS}/{automation_id}/run_now",
        _run,
        json=_drop_none({"inputs": inputs}),
        headers=_idempotency(idempotency_key),
    )


def get_run(run_id: str) -> Call[Run]:
    """A run with its checkpoint (`awaiting_gate`, node outputs, gate history)."""
    return Call("GET", f"{RUNS}/{run_id}", _run)


def _run_action(run_id: str, verb: str, reason: str | None) -> Call[Run]:
    return Call("POST", f"{RUNS}/{run_id}/{verb}", _run, json=_drop_none({"reason": reason}))


def pause_run(run_id: str, *, reason: str | None = None) -> Call[Run]:
    """Pause a queued or running run (docs/api.md, "Run control")."""
    return _run_action(run_id, "pause", reason)


def resume_run(run_id: str, *, reason: str | None = None) -> Call[Run]:
    """Resume a paused run."""
    return _run_action(run_id, "resume", reason)


def cancel_run(run_id: str, *, reason: str | None = None) -> Call[Run]:
    """Cancel a run that has not finished (a finished one is left as it is)."""
    return _run_action(run_id, "cancel", reason)


def recover_run(run_id: str, *, reason: str | None = None) -> Call[Run]:
    """Put a failed, paused or blocked run back in the queue."""
    return _run_action(run_id, "recover", reason)


def decide_gate(
    run_id: str,
    *,
    decision: str,
    reason: str = "",
    approval_request_id: str | None = None,
    transition_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[Run]:
    """A human's decision on a run's open approval gate: approve, rework or cancel."""
    body = _drop_none(
        {
            "decision": decision,
            "reason": reason,
            "approval_request_id": approval_request_id,
            "transition_id": transition_id,
        }
    )
    return Call(
        "POST", f"{RUNS}/{run_id}/gate", _run, json=body, headers=_idempotency(idempotency_key)
    )


# --- Waiting -------------------------------------------------------------------------------------


class WaitPlan:
    """Long-polls one approval request until it settles or `timeout` seconds have passed.

    Drive it with `next_call()` (None once the wait is over: the answer is `outcome()`) and
    `feed()` with each answer; both clients share this loop's rules.
    """

    def __init__(self, request_id: str, timeout: float | None, *, clock=time.monotonic):
        self.request_id = request_id
        self._clock = clock
        self._deadline = None if timeout is None else clock() + timeout
        self._latest: ApprovalRequest | None = None

    def _remaining(self) -> float:
        return MAX_POLL_S if self._deadline is None else self._deadline - self._clock()

    def next_call(self) -> Call[ApprovalRequest] | None:
        if self._latest is not None and (self._latest.settled or self._remaining() <= 0):
            return None
        return get_approval(self.request_id, wait=max(self._remaining(), 0) or None)

    def feed(self, request: ApprovalRequest) -> None:
        self._latest = request

    def outcome(self) -> ApprovalRequest:
        """The settled request; raises `ApprovalTimeout` when it is still pending."""
        assert self._latest is not None
        if not self._latest.settled:
            raise ApprovalTimeout(self._latest)
        return self._latest
