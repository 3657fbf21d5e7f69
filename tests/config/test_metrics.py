"""`GET /metrics` (config/metrics.py, config/metrics_endpoint.py): refused without the token,
and after a real run through a worker (a gate opened, decided by a reviewer, a chat card that
failed for good) it reports runs, gates, decision latency, node time, queue delay and failures."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from automations.models import Run, RunStatus
from automations.runs.sweeps import sweep_mark_completed
from automations.scheduling import SWEEP_RUNS
from channels.models import ApprovalMessage, ChannelConnection, ChannelKind, MessageState
from tests.factories import simple_agents
from tests.support.wait import wait_for

AUTOMATIONS = "/api/automations/v2"


def scrape(token: str) -> dict[tuple[str, tuple], float]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token", "Basic bWV0cmljczp4", "Bearer ", "metrics-token"]
)
def test_metrics_refuse_a_missing_or_wrong_token(client, metrics_token, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_REQUIRED"
    assert b"flowgate_runs" not in response.content


@pytest.mark.django_db
def test_metrics_are_closed_while_no_token_is_configured(client, settings):
    settings.FLOWGATE_METRICS_TOKEN = ""
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"


@pytest.mark.django_db(transaction=True)
def test_metrics_after_a_run_a_decision_and_a_failed_chat_delivery(
    celery_worker_factory, chat_platforms, metrics_token, operator, reviewer
):
    celery_worker_factory(env=chat_platforms.settings)
    ChannelConnection.objects.create(
        workspace=operator.workspace,
        kind=ChannelKind.DISCORD,
        name="approvals",
        channel_id="1100000000000000001",
        external_team_id="1000000000000000009",
        application_id="1000000000000000001",
        public_key="00" * 32,
        bot_token="discord-bot-token",
    )
    chat_platforms.discord.fail_next(10, status=403, call="create_message")  # a final refusal
    flow = {
        "nodes": [
            {"node_id": "draft", "kind": "agent", "agent_id": "writer", "objective": "Draft"},
            {
                "node_id": "approval",
                "kind": "approval",
                "depends_on": ["draft"],
                "gate": {"decisions": ["approve", "cancel"]},
            },
            {
                "node_id": "publish",
                "kind": "agent",
                "agent_id": "writer",
                "depends_on": ["approval"],
                "objective": "Publish",
            },
        ]
    }
    client = operator.client()
    created = client.post(
        AUTOMATIONS,
        {"automation_id": "weekly", "name": "Weekly", "agents": simple_agents(), "flow": flow},
        format="json",
    )
    assert created.status_code == 201, created.json()
    run_id = client.post(f"{AUTOMATIONS}/weekly/run_now").json()["run"]["run_id"]
    wait_for(
        lambda: Run.objects.get(run_id=run_id).status == RunStatus.AWAITING_APPROVAL, timeout=30
    )
    wait_for(lambda: ApprovalMessage.objects.filter(state=MessageState.FAILED).exists(), timeout=30)
    workspace = (("workspace", operator.workspace.path),)

    waiting = scrape(metrics_token)
    assert waiting[("flowgate_runs", (("status", "awaiting_approval"), *workspace))] == 1
    assert waiting[("flowgate_gates_open", workspace)] == 1
    assert waiting[("flowgate_gate_oldest_open_age_seconds", workspace)] >= 0
    assert waiting[("flowgate_gate_decision_latency_seconds_count", ())] == 0
    assert (
        waiting[("flowgate_chat_delivery_failures_total", (("kind", "discord"), *workspace))] == 1
    )

    decided = reviewer.client().post(
        f"{AUTOMATIONS}/runs/{run_id}/gate", {"decision": "approve"}, format="json"
    )
    assert decided.status_code == 200, decided.json()
    wait_for(lambda: Run.objects.get(run_id=run_id).status == RunStatus.COMPLETED, timeout=30)
    sweep_mark_completed(SWEEP_RUNS)

    done = scrape(metrics_token)
    assert done[("flowgate_runs", (("status", "completed"), *workspace))] == 1
    assert ("flowgate_runs", (("status", "awaiting_approval"), *workspace)) not in done
    assert ("flowgate_gates_open", workspace) not in done
    assert done[("flowgate_gate_decision_latency_seconds_count", ())] == 1
    assert done[("flowgate_gate_decision_latency_seconds_bucket", (("le", "+Inf"),))] == 1
    assert done[("flowgate_gate_decision_latency_seconds_sum", ())] > 0
    # draft and publish ran one attempt each (the gate is not executed by a worker), each well
    # under five minutes.
    assert done[("flowgate_node_execution_seconds_count", ())] == 2
    assert done[("flowgate_node_execution_seconds_bucket", (("le", "300.0"),))] == 2
    assert done[("flowgate_run_queue_delay_seconds_count", ())] == 1
    assert done[("flowgate_chat_delivery_failures_total", (("kind", "discord"), *workspace))] == 1
    assert 0 <= done[("flowgate_sweep_lag_seconds", (("sweep", SWEEP_RUNS),))] < 60
