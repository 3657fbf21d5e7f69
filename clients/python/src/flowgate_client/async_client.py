"""`AsyncFlowgateClient`: the asyncio twin of `FlowgateClient`, over httpx.AsyncClient.

Same operations (both are generated from `calls`), same retry and waiting rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

import httpx

from flowgate_client import calls
from flowgate_client.calls import Call
from flowgate_client.errors import FlowgateError
from flowgate_client.models import ApprovalRequest
from flowgate_client.operations import async_handle_operation, async_operation

T = TypeVar("T")


class AsyncApproval:
    """One approval request, awaited (see `client.Approval`)."""

    def __init__(self, client: AsyncFlowgateClient, request: ApprovalRequest):
        self._client = client
        self.request = request

    @property
    def request_id(self) -> str:
        return self.request.request_id

    async def wait(self, timeout: float | None = None) -> ApprovalRequest:
        """Until a human decides or `timeout` runs out (`ApprovalTimeout`); long-polls."""
        plan = calls.WaitPlan(self.request_id, timeout)
        plan.feed(self.request)
        while (call := plan.next_call()) is not None:
            self.request = await self._client.send(call)
            plan.feed(self.request)
        return plan.outcome()


class AsyncFlowgateClient:
    """`async with AsyncFlowgateClient(url, token) as client: ...`; see `FlowgateClient`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries

    async def __aenter__(self) -> AsyncFlowgateClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Carry one `Call` (retrying it when it is repeatable) and return its parsed answer."""
        delays = calls.retry_delays(self._retries)
        while True:
            try:
                response = await self._http.request(
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
                await asyncio.sleep(delay)

    async def approval(self, request_id: str) -> AsyncApproval:
        """A handle on an existing request, e.g. to wait again after a process restart."""
        return AsyncApproval(self, await self.get_approval(request_id))

    async def list_approvals(
        self, *, status: str | None = None, limit: int = 50
    ) -> AsyncIterator[ApprovalRequest]:
        """Every request the token may see (an agent: its own), fetched page by page."""
        cursor: str | None = None
        while True:
            page = await self.send(calls.list_approvals(status=status, limit=limit, cursor=cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    request_approval = async_handle_operation(calls.request_approval, AsyncApproval)
    get_approval = async_operation(calls.get_approval)
    decide_approval = async_operation(calls.decide_approval)
    run_now = async_operation(calls.run_now)
    get_run = async_operation(calls.get_run)
    pause_run = async_operation(calls.pause_run)
    resume_run = async_operation(calls.resume_run)
    cancel_run = async_operation(calls.cancel_run)
    recover_run = async_operation(calls.recover_run)
    decide_gate = async_operation(calls.decide_gate)
