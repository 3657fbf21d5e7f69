"""An MCP server (stdio) that lets any MCP-capable agent ask Flowgate for a human's approval.

Run it as `flowgate-mcp` (or `python -m flowgate_client.mcp_server`) with the deployment and
the agent's own API token in its environment:

    FLOWGATE_URL=https://flowgate.example FLOWGATE_TOKEN=fg_... flowgate-mcp

Tools: `request_approval` (ask, optionally waiting a while for the answer) and `get_approval`
(read or wait for an earlier request by id, e.g. after the agent restarted). Both answer the
request as the API does: act only when `status` is `approved`, and then on
`approved_arguments`, which a reviewer may have edited. The token is the agent's: Flowgate
applies its governance (the agent's grantors cannot approve, reviewers need authority for the
policy's data classes and risk tier) exactly as for a request made over the API.
"""

from __future__ import annotations

import os
from typing import Any

from mcp.server.mcpserver import MCPServer

from flowgate_client import calls
from flowgate_client.async_client import AsyncFlowgateClient
from flowgate_client.errors import ApprovalTimeout, FlowgateError
from flowgate_client.models import ApprovalRequest

#: The longest a single tool call waits for a decision; the agent calls `get_approval` again.
MAX_TOOL_WAIT_S = 300.0

INSTRUCTIONS = (
    "Before any consequential action (payments, messages to people, changes to production "
    "data), call request_approval and act only if the answer's status is 'approved', using "
    "approved_arguments (a reviewer may have edited them). While it is 'pending', call "
    "get_approval with wait_seconds to wait for the decision."
)

server = MCPServer("flowgate", instructions=INSTRUCTIONS)


def _client() -> AsyncFlowgateClient:
    try:
        return AsyncFlowgateClient(os.environ["FLOWGATE_URL"], os.environ["FLOWGATE_TOKEN"])
    except KeyError as missing:
        raise RuntimeError(
            f"{missing.args[0]} is not set in the MCP server's environment"
        ) from None


async def _settled_within(
    client: AsyncFlowgateClient, request_id: str, seconds: float
) -> ApprovalRequest:
    """The request once settled, or as it stands after `seconds` (capped) of waiting."""
    approval = await client.approval(request_id)
    if seconds <= 0:
        return approval.request
    try:
        return await approval.wait(timeout=min(seconds, MAX_TOOL_WAIT_S))
    except ApprovalTimeout as still_pending:
        return still_pending.request


@server.tool()
async def request_approval(
    action: str,
    arguments: dict[str, Any],
    summary: str,
    context: str | None = None,
    policy: dict[str, Any] | None = None,
    editable_paths: list[str] | None = None,
    idempotency_key: str | None = None,
    wait_seconds: float = 0,
) -> dict[str, Any]:
    """Ask a human whether `action` may run with `arguments`.

    `summary` is the one line the reviewer sees first, `context` what they need to judge it;
    `policy` may set `risk_tier`, `data_classes` and `reviewer_eligibility`; `editable_paths`
    lists the arguments a reviewer may change. With `wait_seconds` the call waits up to that
    long (at most 300) for the decision. Returns the request: `request_id`, `status`
    (pending/approved/rework/cancelled/expired), `approved_arguments`, `decision`, `url`.
    """
    async with _client() as client:
        try:
            request = await client.send(
                calls.request_approval(
                    action=action,
                    arguments=arguments,
                    summary=summary,
                    context={"text": context} if context else None,
                    policy=policy,
                    editable={"paths": editable_paths} if editable_paths else None,
                    idempotency_key=idempotency_key,
                )
            )
            if wait_seconds > 0 and not request.settled:
                request = await _settled_within(client, request.request_id, wait_seconds)
        except FlowgateError as error:
            return {"error": error.message, "code": error.code, **error.extra}
    return request.raw


@server.tool()
async def get_approval(request_id: str, wait_seconds: float = 0) -> dict[str, Any]:
    """An approval request by id; with `wait_seconds` (at most 300), wait for its decision.

    Act only when `status` is `approved`, on `approved_arguments`.
    """
    async with _client() as client:
        try:
            request = await _settled_within(client, request_id, wait_seconds)
        except FlowgateError as error:
            return {"error": error.message, "code": error.code, **error.extra}
    return request.raw


def main() -> None:
    server.run("stdio")


if __name__ == "__main__":
    main()
