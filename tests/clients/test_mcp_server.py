"""An MCP-capable agent asks for approval through `flowgate-mcp` over stdio (issue 18, item 5).

The official `mcp` client starts the server as a subprocess, exactly as an agent host would,
with the agent's token in its environment; a human approves with an edit through the API.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.support.async_run import run_async

PAYMENT = {"amount": 120, "to": "acme", "memo": "invoice 42"}


def tool_answer(result) -> dict:
    assert not result.is_error, result
    if result.structured_content is not None:
        return result.structured_content.get("result", result.structured_content)
    return json.loads(result.content[0].text)


async def agent_with_mcp(url: str, token: str, on_request) -> dict:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "flowgate_client.mcp_server"],
        env={**os.environ, "FLOWGATE_URL": url, "FLOWGATE_TOKEN": token},
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert {"request_approval", "get_approval"} <= tools

        asked = tool_answer(
            await session.call_tool(
                "request_approval",
                {
                    "action": "payments.send",
                    "arguments": PAYMENT,
                    "summary": "Pay invoice 42",
                    "editable_paths": ["amount"],
                },
            )
        )
        assert asked["status"] == "pending"
        on_request(asked["request_id"])
        return tool_answer(
            await session.call_tool(
                "get_approval", {"request_id": asked["request_id"], "wait_seconds": 30}
            )
        )


@pytest.mark.django_db(transaction=True)
def test_an_mcp_agent_asks_waits_and_acts_on_the_edited_arguments(
    agent, reviewer, live_server, connect
):
    human = connect(reviewer)
    threads = []

    def approve_with_edit(request_id: str) -> None:
        def decide():
            time.sleep(0.5)
            human.decide_approval(
                request_id,
                decision="approve",
                reason="pay 90",
                arguments={**PAYMENT, "amount": 90},
            )

        threads.append(threading.Thread(target=decide))
        threads[-1].start()

    decided = run_async(agent_with_mcp(live_server.url, agent.token, approve_with_edit))
    for thread in threads:
        thread.join()

    assert decided["status"] == "approved"
    assert decided["approved_arguments"] == {**PAYMENT, "amount": 90}
    assert decided["arguments"] == PAYMENT
