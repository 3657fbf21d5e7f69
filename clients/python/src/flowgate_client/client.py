"""`FlowgateClient`: the blocking client over httpx (`AsyncFlowgateClient` is its asyncio twin)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TypeVar

import httpx

from flowgate_client import calls
from flowgate_client.calls import Call
from flowgate_client.errors import FlowgateError
from flowgate_client.models import ApprovalRequest
from flowgate_client.operations import handle_operation, operation

T = TypeVar("T")


class Approval:
    """One approval request: its latest known state and a way to wait for the decision."""

    def __init__(self, client: FlowgateClient, request: ApprovalRequest):
        self._client = client
        self.request = request

    @property
    def request_id(self) -> str:
        return self.request.request_id

    def wait(self, timeout: float | None = None) -> ApprovalRequest:
        """Block until a human decides (or the request expires) and return the settled request.

        Long-polls the server, so a decision arrives within a round trip. `timeout=None`
        waits as long as it takes; if the time runs out first, `ApprovalTimeout` is raised and
        the request stays open (wait again, from any process, with `client.approval(id)`).
        """
        plan = calls.WaitPlan(self.request_id, timeout)
        plan.feed(self.request)
        while (call := plan.next_call()) is not None:
            self.request = self._client.send(call)
            plan.feed(self.request)
        return plan.outcome()


class FlowgateClient:
    """Talks to one Flowgate deployment with one API token (bound to one workspace).

    ```python
    with FlowgateClient("https://flowgate.example", token) as client:
        approval = client.request_approval(
            action="payments.send", arguments={"amount": 120}, summary="Pay invoice 42"
        )
        decided = approval.wait(timeout=3600)
        if decided.approved:
            send_payment(**decided.approved_arguments)  # as approved, maybe edited
    ```

    Repeatable calls (reads, and writes carrying an Idempotency-Key, which every create here
    does) are retried after a transport error or a 502/503/504; any other error raises
    `FlowgateError` at once.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ):
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries

    def __enter__(self) -> FlowgateClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call[T]) -> T:
        """Carry one `Call` (retrying it when it is repeatable) and return its parsed answer."""
        delays = calls.retry_delays(self._retries)
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    json=call.json,
                    params=call.params,
                    headers=call.headers,
                    timeout=call.timeout if call.timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
                return calls.result(call, response)
            except (httpx.TransportError, FlowgateError) as error:
                delay = next(delays, None)
                if delay is None or not calls.should_retry(call, error):
                    raise
                time.sleep(delay)

    def approval(self, request_id: str) -> Approval:
        """A handle on an existing request, e.g. to wait again after a process restart."""
        return Approval(self, self.get_approval(request_id))

    def list_approvals(
        self, *, status: str | None = None, limit: int = 50
    ) -> Iterator[ApprovalRequest]:
        """Every request the token may see (an agent: its own), fetched page by page."""
        cursor: str | None = None
        while True:
            page = self.send(calls.list_approvals(status=status, limit=limit, cursor=cursor))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    request_approval = handle_operation(calls.request_approval, Approval)
    get_approval = operation(calls.get_approval)
    decide_approval = operation(calls.decide_approval)
    run_now = operation(calls.run_now)
    get_run = operation(calls.get_run)
    pause_run = operation(calls.pause_run)
    resume_run = operation(calls.resume_run)
    cancel_run = operation(calls.cancel_run)
    recover_run = operation(calls.recover_run)
    decide_gate = operation(calls.decide_gate)
