"""JSON logs with context (config/log_context.py): a request gets an id that is echoed and
carried into the worker, and the worker's log lines of a node name its run, node and workspace."""

from __future__ import annotations

import json
import logging

import pytest
from structlog.contextvars import bound_contextvars

from automations.models import TERMINAL_STATUSES, Run, RunStatus
from config.log_context import json_formatter
from tests.factories import simple_agents
from tests.support.wait import wait_for

AUTOMATIONS = "/api/automations/v2"


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.django_db(transaction=True)
def test_worker_log_lines_carry_the_run_node_workspace_and_request_id(celery_worker, operator):
    client = operator.client()
    flow = {
        "nodes": [{"node_id": "draft", "kind": "agent", "agent_id": "writer", "objective": "x"}]
    }
    body = {"automation_id": "weekly", "name": "Weekly", "agents": simple_agents(), "flow": flow}
    assert client.post(AUTOMATIONS, body, format="json").status_code == 201
    started = client.post(f"{AUTOMATIONS}/weekly/run_now", HTTP_X_REQUEST_ID="req-42.abc")
    assert started["X-Request-ID"] == "req-42.abc"
    run_id = started.json()["run"]["run_id"]
    wait_for(lambda: Run.objects.get(run_id=run_id).status in TERMINAL_STATUSES, timeout=30)
    assert Run.objects.get(run_id=run_id).status == RunStatus.COMPLETED, celery_worker.log()[-3000:]

    lines = log_lines(celery_worker.log())
    node_lines = [line for line in lines if line.get("node_id") == "draft"]
    assert node_lines, celery_worker.log()[-3000:]
    assert {(line["run_id"], line["workspace"], line["request_id"]) for line in node_lines} == {
        (run_id, operator.workspace.path, "req-42.abc")
    }
    assert any(line["event"] == "node attempt started" for line in node_lines)
    # Celery's own lines about the task carry the request id that published it. Celery logs
    # "succeeded" after the task returned, so after the run's commit: wait for the line.
    succeeded = wait_for(
        lambda: [line for line in log_lines(celery_worker.log()) if "succeeded" in line["event"]],
        timeout=30,
        message="celery's task succeeded line",
    )
    assert all(line.get("request_id") == "req-42.abc" for line in succeeded)


@pytest.mark.django_db
@pytest.mark.parametrize("offered", ["", "x" * 65, "a b", 'a"}{', "é"])
def test_a_request_id_that_is_not_plain_is_replaced(client, offered):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=offered)
    assert response["X-Request-ID"] != offered
    assert len(response["X-Request-ID"]) == 32


def test_every_record_is_one_json_object_with_the_bound_context():
    record = logging.LogRecord(
        "flowgate.test", logging.WARNING, __file__, 1, "hello %s", ("x",), None
    )
    with bound_contextvars(request_id="r1", workspace="acme/ops", run_id="run-1", node_id="n"):
        line = json.loads(json_formatter().format(record))
    assert line["event"] == "hello x"
    assert line["level"] == "warning"
    assert line["logger"] == "flowgate.test"
    assert (line["request_id"], line["workspace"], line["run_id"], line["node_id"]) == (
        "r1",
        "acme/ops",
        "run-1",
        "n",
    )
