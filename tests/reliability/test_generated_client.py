"""A client generated from `/api/schema/` with openapi-python-client drives a run from start to
finish against a live server and a real worker (issue 17 item 6, Show), using only the generated
functions and typed models: create the automation, start a run with inputs, wait for its
approval gate, decide it, and read the completed run. A schema that drops a field the server
sends, or types one wrongly, fails here (the generated models parse every response)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.factories import simple_agents, simple_flow
from tests.support.generated_client import generated_client, submodule

SCHEMA = {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}


def until(read, done, *, timeout: float = 45.0):
    """Call `read()` until `done(result)`; return the result (fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        result = read()
        if done(result):
            return result
        assert time.monotonic() < deadline, result
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_a_generated_client_drives_a_run_through_its_gate(
    live_server, operator, reviewer, celery_worker, tmp_path
):
    schema = httpx.get(f"{live_server.url}/api/schema/?format=json", timeout=30)
    assert schema.status_code == 200
    with generated_client(schema.content, tmp_path) as package:
        client_module = submodule(package, "client")
        models = submodule(package, "models")
        api = {
            name: submodule(package, f"api.automations.{name}")
            for name in (
                "automations_create",
                "automations_run_now",
                "automation_runs_retrieve",
                "automation_runs_gate",
            )
        }
        as_operator = client_module.AuthenticatedClient(
            base_url=live_server.url, token=operator.token, raise_on_unexpected_status=True
        )
        as_reviewer = client_module.AuthenticatedClient(
            base_url=live_server.url, token=reviewer.token, raise_on_unexpected_status=True
        )

        created = api["automations_create"].sync(
            client=as_operator,
            body=models.AutomationInputRequest(
                automation_id="generated",
                name="Driven by a generated client",
                flow=models.AutomationInputRequestFlow.from_dict(simple_flow()),
                agents=[
                    models.AutomationInputRequestAgentsItem.from_dict(agent)
                    for agent in simple_agents()
                ],
                input_schema=models.AutomationInputRequestInputSchemaType0.from_dict(SCHEMA),
            ),
        )
        assert isinstance(created, models.Automation), created
        assert created.status == models.AutomationStatusEnum.ACTIVE

        inputs = models.RunNowInputRequestInputs()
        inputs["topic"] = "Q3 sales"
        started = api["automations_run_now"].sync(
            "generated", client=as_operator, body=models.RunNowInputRequest(inputs=inputs)
        )
        assert isinstance(started, models.RunStarted), started
        run = started.run
        assert run.trigger_type == models.TriggerTypeEnum.MANUAL
        assert run.inputs["topic"] == "Q3 sales"

        def read():
            envelope = api["automation_runs_retrieve"].sync(run.run_id, client=as_operator)
            assert isinstance(envelope, models.RunEnvelope), envelope
            return envelope.run

        waiting = until(read, lambda r: r.status == models.RunStatusEnum.AWAITING_APPROVAL)
        gate = waiting.checkpoint.awaiting_gate
        assert isinstance(gate, models.AwaitingGateSchema)
        assert waiting.checkpoint.completed_nodes == ["draft"]
        draft = waiting.checkpoint.node_outputs["draft"]
        assert "Q3 sales" in draft["content"]["text"]

        decided = api["automation_runs_gate"].sync(
            run.run_id,
            client=as_reviewer,
            body=models.GateDecisionInputRequest(
                decision="approve",
                reason="Looks right",
                approval_request_id=gate.approval_request_id,
                transition_id=gate.transition_id,
            ),
        )
        assert isinstance(decided, models.RunGateDecisionResult), decided

        finished = until(read, lambda r: r.status == models.RunStatusEnum.COMPLETED)
        assert finished.checkpoint.completed_nodes == ["draft", "approval"]
        [decision] = finished.checkpoint.gate_history
        assert (decision.decision, decision.decided_by.actor_id) == (
            "approve",
            reviewer.user.username,
        )
        assert finished.finished_at_ms is not None
