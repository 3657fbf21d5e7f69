"""Run inputs (issue 17): `run_now {"inputs": …}` validated against the automation's
`input_schema` (checked at save), stored on the run, in the run JSON, seen by the agent (the echo
provider repeats them), and shown to the reviewer on the gate page. A real worker runs the
agent node.
"""

from __future__ import annotations

import pytest
from django.test import Client

from automations.models import Automation, Run, RunStatus
from tests.factories import simple_agents, simple_flow
from tests.support.wait import wait_for

URL = "/api/automations/v2"
SCHEMA = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "pages": {"type": "integer", "minimum": 1}},
    "required": ["topic"],
    "additionalProperties": False,
}


def create(member, **extra):
    body = {"automation_id": "report", "name": "Report", "flow": simple_flow()}
    body["agents"] = simple_agents()
    return member.client().post(URL, {**body, **extra}, format="json")


@pytest.mark.django_db
class TestInputSchemaAtSave:
    def test_a_valid_schema_is_stored_and_rendered(self, operator):
        response = create(operator, input_schema=SCHEMA)
        assert response.status_code == 201, response.json()
        assert response.json()["input_schema"] == SCHEMA

    @pytest.mark.parametrize(
        "schema", [{"type": "nonsense"}, {"properties": {"a": {"minimum": "1"}}}, ["x"]]
    )
    def test_an_invalid_schema_is_refused(self, operator, schema):
        response = create(operator, input_schema=schema)
        assert response.status_code == 400, response.json()
        assert "input_schema" in response.json()["fields"]
        assert not Automation.objects.exists()

    def test_an_update_checks_the_schema_too(self, operator):
        create(operator)
        client = operator.client()
        response = client.patch(f"{URL}/report", {"input_schema": {"type": 5}}, format="json")
        assert response.status_code == 400
        assert "input_schema" in response.json()["fields"]
        response = client.patch(f"{URL}/report", {"input_schema": SCHEMA}, format="json")
        assert response.status_code == 200
        assert Automation.objects.get().input_schema == SCHEMA


@pytest.mark.django_db
class TestInputsAtRunTime:
    @pytest.fixture(autouse=True)
    def no_broker(self, monkeypatch):
        monkeypatch.setattr("automations.scheduling.advance_now", lambda run_id, **kw: None)

    def test_inputs_that_break_the_schema_are_a_400_naming_each_field(self, operator):
        create(operator, input_schema=SCHEMA)
        response = operator.client().post(
            f"{URL}/report/run_now", {"inputs": {"pages": 0, "extra": 1}}, format="json"
        )
        assert response.status_code == 400, response.json()
        body = response.json()
        assert body["code"] == "RUN_INPUTS_INVALID"
        assert set(body["fields"]) == {"inputs", "inputs.pages"}
        assert any("topic" in message for message in body["fields"]["inputs"])
        assert not Run.objects.exists()

    @pytest.mark.parametrize("body", [{"inputs": [1]}, {"inputs": "x"}, {"input": {}}])
    def test_a_malformed_body_is_a_400(self, operator, body):
        create(operator)
        response = operator.client().post(f"{URL}/report/run_now", body, format="json")
        assert response.status_code == 400
        assert not Run.objects.exists()

    def test_without_a_schema_any_object_is_accepted_and_no_body_means_no_inputs(self, operator):
        create(operator)
        client = operator.client()
        run = client.post(f"{URL}/report/run_now", {"inputs": {"a": [1]}}, format="json")
        assert run.status_code == 201 and run.json()["run"]["inputs"] == {"a": [1]}
        bare = client.post(f"{URL}/report/run_now")
        assert bare.status_code == 201 and bare.json()["run"]["inputs"] == {}


@pytest.mark.django_db(transaction=True)
def test_inputs_reach_the_echo_agent_and_the_gate_page(operator, reviewer, celery_worker):
    create(operator, input_schema=SCHEMA)
    response = operator.client().post(
        f"{URL}/report/run_now", {"inputs": {"topic": "Q3 sales", "pages": 2}}, format="json"
    )
    assert response.status_code == 201, response.json()
    run_id = response.json()["run"]["run_id"]
    wait_for(
        lambda: Run.objects.filter(run_id=run_id, status=RunStatus.AWAITING_APPROVAL).exists(),
        timeout=30,
    )
    run = operator.client().get(f"{URL}/runs/{run_id}").json()["run"]
    assert run["inputs"] == {"topic": "Q3 sales", "pages": 2}
    text = run["checkpoint"]["node_outputs"]["draft"]["content"]["text"]
    assert 'inputs: {"pages": 2, "topic": "Q3 sales"}' in text

    browser = Client()
    browser.force_login(reviewer.user)
    gate_id = run["checkpoint"]["awaiting_gate"]["approval_request_id"]
    page = browser.get(f"/approvals/{gate_id}/").content.decode()
    assert 'data-testid="run-inputs"' in page
    assert "Q3 sales" in page
