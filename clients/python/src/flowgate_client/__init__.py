"""Flowgate's Python client: ask a verified human for approval and act on what they approved.

`FlowgateClient` (blocking) and `AsyncFlowgateClient` (asyncio) cover approval requests and
run control; `flowgate_client.mcp_server` serves the approval tools to MCP-capable agents.
"""

from flowgate_client.async_client import AsyncApproval, AsyncFlowgateClient
from flowgate_client.client import Approval, FlowgateClient
from flowgate_client.errors import ApprovalTimeout, FlowgateError
from flowgate_client.models import ApprovalRequest, Decision, Run

__all__ = [
    "Approval",
    "ApprovalRequest",
    "ApprovalTimeout",
    "AsyncApproval",
    "AsyncFlowgateClient",
    "Decision",
    "FlowgateClient",
    "FlowgateError",
    "Run",
]
