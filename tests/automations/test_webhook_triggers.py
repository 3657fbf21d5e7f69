"""Inbound webhook triggers (issue 17 item 5): editors create, rotate and revoke them (audited);
`POST /api/hooks/<token>` starts a run with the JSON body as its inputs, validated against the
automation's input_schema; tokens that start nothing answer exactly like an unknown route."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from automations.models import Automation, AutomationStatus, Run, RunStatus, WebhookTrigger
from governance.models import AuditEvent
from governance.tokens import token_digest
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import create_automation as create
from tests.factories import simple_agents, simple_flow
from tests.support.wait import wait_for

SCHEMA = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "pages": {"type": "integer"}},
    "required": ["topic"],
    "additionalProperties": False,
}
UNKNOWN_ROUTE = {"error": "No such API route", "code": "NOT_FOUND"}


def triggers_url(automation_id="weekly"):
    return f"{URL}/{automation_id}/webhook_triggers"


def new_trigger(member, automation_id="weekly", **body) -> dict:
    response = member.client().post(triggers_url(automation_id), body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def hook(url_or_token: str, body=None, *, content_type="application/json", **extra):
    path = url_or_token.split("://", 1)[-1]
    path = path[path.index("/api/") :] if "/api/" in path else f"/api/hooks/{url_or_token}"
    data = json.dumps(body) if body is not None and content_type == "application/json" else body
    return Client().post(path, data=data or "", content_type=content_type, **extra)


@pytest.fixture
def automation(operator):
    create(operator, automation_id="weekly", input_schema=SCHEMA)
    return Automation.objects.get()


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker", "automation")
class TestHook:
    def test_the_body_becomes_the_inputs_of_a_webhook_run(self, operator):
        trigger = new_trigger(operator, name="CRM")
        assert trigger["url"].endswith(f"/api/hooks/{trigger['token']}")
        assert trigger["active"] is True and trigger["name"] == "CRM"
        stored = WebhookTrigger.objects.get()
        assert stored.token_digest == token_digest(trigger["token"])  # the digest, not the token
        assert trigger["token"] not in json.dumps(operator.client().get(triggers_url()).json())
        response = hook(trigger["url"], {"topic": "Q3", "pages": 2})
        assert response.status_code == 202, response.json()
        body = response.json()
        assert body["trigger_type"] == "webhook" and body["status"] == "queued"
        run = Run.objects.get(run_id=body["run_id"])
        assert (run.inputs, run.trigger_type, run.trigger_id) == (
            {"topic": "Q3", "pages": 2},
            "webhook",
            trigger["trigger_id"],
        )
        assert run.requested_by == operator.user
        started = AuditEvent.objects.get(event_type="automation.run_started")
        assert (started.actor_kind, started.actor_id) == (
            "trigger",
            f"webhook:{trigger['trigger_id']}",
        )
        assert started.payload["triggerID"] == trigger["trigger_id"]
        assert WebhookTrigger.objects.get().last_used_at is not None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"pages": 2}, "inputs"),
            ({"topic": 5}, "inputs.topic"),
            ({"topic": "x", "y": 1}, "inputs"),
        ],
    )
    def test_inputs_that_break_the_schema_are_a_400_and_no_run(self, operator, body, field):
        trigger = new_trigger(operator)
        response = hook(trigger["token"], body)
        assert response.status_code == 400
        assert response.json()["code"] == "RUN_INPUTS_INVALID"
        assert field in response.json()["fields"]
        assert not Run.objects.exists()
        assert not AuditEvent.objects.filter(event_type="automation.run_started").exists()

    @pytest.mark.parametrize("raw", ["[1, 2]", "0", "null", '"text"', "{not json"])
    def test_a_body_that_is_not_a_json_object_is_a_400(self, operator, raw):
        trigger = new_trigger(operator)
        response = hook(trigger["token"], raw, content_type="application/json")
        assert response.status_code == 400, response.content
        assert not Run.objects.exists()

    def test_a_body_that_is_not_json_is_a_415(self, operator):
        trigger = new_trigger(operator)
        response = hook(
            trigger["token"], "topic=x", content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 415
        assert not Run.objects.exists()

    def test_a_body_above_the_webhook_limit_is_a_413(self, operator, settings):
        settings.FLOWGATE_WEBHOOK_MAX_BODY_BYTES = 1024
        trigger = new_trigger(operator)
        response = hook(trigger["token"], {"topic": "x" * 2000})
        assert response.status_code == 413
        assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
        assert not Run.objects.exists()

    def test_unknown_rotated_and_revoked_tokens_answer_like_an_unknown_route(self, operator):
        first = new_trigger(operator)
        second = new_trigger(operator)
        rotated = operator.client().post(f"{triggers_url()}/{first['trigger_id']}/rotate")
        assert rotated.status_code == 200 and rotated.json()["token"] != first["token"]
        revoke = operator.client().delete(f"{triggers_url()}/{second['trigger_id']}")
        assert revoke.status_code == 204
        for token in (
            first["token"],  # rotated away
            second["token"],  # revoked
            "fgh_" + "A" * 43,  # never issued
            "not-even-the-prefix",
        ):
            response = hook(token, {"topic": "x"})
            assert (response.status_code, response.json()) == (404, UNKNOWN_ROUTE), token
        assert hook(rotated.json()["token"], {"topic": "x"}).status_code == 202
        assert Run.objects.count() == 1
        listed = operator.client().get(triggers_url()).json()["webhook_triggers"]
        assert {t["trigger_id"]: t["active"] for t in listed} == {
            first["trigger_id"]: True,
            second["trigger_id"]: False,
        }
        types = list(
            AuditEvent.objects.filter(event_type__startswith="automation.webhook_trigger")
            .order_by("seq")
            .values_list("event_type", flat=True)
        )
        assert types == [
            "automation.webhook_trigger.created",
            "automation.webhook_trigger.created",
            "automation.webhook_trigger.rotated",
            "automation.webhook_trigger.revoked",
        ]

    def test_a_deleted_automation_trigger_is_unknown(self, operator):
        trigger = new_trigger(operator)
        assert operator.client().delete(f"{URL}/weekly").status_code == 204
        assert hook(trigger["token"], {"topic": "x"}).json() == UNKNOWN_ROUTE

    def test_a_paused_automation_answers_409(self, operator):
        trigger = new_trigger(operator)
        Automation.objects.update(status=AutomationStatus.PAUSED)
        response = hook(trigger["token"], {"topic": "x"})
        assert response.status_code == 409
        assert response.json()["code"] == "AUTOMATION_V2_NOT_ACTIVE"

    def test_requests_above_the_rate_are_a_429(self, operator, settings):
        settings.FLOWGATE_WEBHOOK_RATE = "3/min"
        trigger = new_trigger(operator)
        other = new_trigger(operator)
        statuses = [hook(trigger["token"], {"topic": str(i)}).status_code for i in range(4)]
        assert statuses == [202, 202, 202, 429]
        limited = hook(trigger["token"], {"topic": "again"})
        assert limited.json()["code"] == "RATE_LIMITED" and "Retry-After" in limited.headers
        assert hook(other["token"], {"topic": "x"}).status_code == 202  # counted per token
        assert Run.objects.count() == 4


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker", "automation")
class TestTriggerPermissions:
    """Anonymous 401; another workspace 404 as for a missing automation; viewers and operators
    read but may not create, rotate or revoke (403, audited)."""

    @pytest.fixture
    def trigger(self, operator):
        return new_trigger(operator)

    def routes(self, trigger):
        one = f"{triggers_url()}/{trigger['trigger_id']}"
        return [
            ("get", triggers_url(), 200),
            ("post", triggers_url(), 201),
            ("get", one, 200),
            ("post", f"{one}/rotate", 200),
            ("delete", one, 204),
        ]

    def test_anonymous(self, trigger, client):
        for method, path, _ in self.routes(trigger):
            assert getattr(client, method)(path).status_code == 401

    def test_another_workspace_sees_nothing(self, trigger, outsider):
        for method, path, _ in self.routes(trigger):
            response = getattr(outsider.client(), method)(path)
            assert response.status_code == 404
            assert response.json()["code"] == "AUTOMATION_V2_NOT_FOUND"

    @pytest.mark.parametrize("member", ["viewer", "reviewer"])
    def test_members_without_change_read_but_may_not_change(self, trigger, request, member):
        client = request.getfixturevalue(member).client()
        for method, path, ok in self.routes(trigger):
            expected = ok if method == "get" else 403
            assert getattr(client, method)(path).status_code == expected, (method, path)
        assert AuditEvent.objects.filter(event_type="automation.governance.denied").count() == 3
        assert WebhookTrigger.objects.filter(revoked_at__isnull=True).count() == 1

    def test_admin_may_change(self, trigger, admin):
        for method, path, ok in self.routes(trigger):
            assert getattr(admin.client(), method)(path).status_code == ok

    def test_the_list_costs_the_same_queries_for_one_or_many(
        self, trigger, operator, django_assert_num_queries
    ):
        with django_assert_num_queries(4):  # token, membership, automation, the page
            assert operator.client().get(triggers_url()).json()["count"] == 1
        for _ in range(4):
            new_trigger(operator)
        with django_assert_num_queries(4):
            page = operator.client().get(f"{triggers_url()}?limit=3").json()
        assert page["count"] == 3 and page["next_cursor"]


@pytest.mark.django_db(transaction=True)
def test_a_webhook_run_gives_its_body_to_the_echo_agent(operator, celery_worker):
    """The real thing: a worker executes the run the hook started; the body is the run's inputs
    in the run JSON and in what the echo agent wrote."""
    create(
        operator,
        automation_id="weekly",
        input_schema=SCHEMA,
        flow=simple_flow(),
        agents=simple_agents(),
    )
    trigger = new_trigger(operator)
    response = hook(trigger["url"], {"topic": "Q3 sales", "pages": 2})
    assert response.status_code == 202, response.json()
    run_id = response.json()["run_id"]
    wait_for(
        lambda: Run.objects.filter(run_id=run_id, status=RunStatus.AWAITING_APPROVAL).exists(),
        timeout=30,
    )
    run = operator.client().get(f"{URL}/runs/{run_id}").json()["run"]
    assert run["trigger_type"] == "webhook"
    assert run["inputs"] == {"topic": "Q3 sales", "pages": 2}
    text = run["checkpoint"]["node_outputs"]["draft"]["content"]["text"]
    assert 'inputs: {"pages": 2, "topic": "Q3 sales"}' in text


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker", "automation")
def test_a_trigger_whose_creator_left_is_revoked_by_its_next_call(admin):
    from governance.models import Membership
    from governance.services import member_remove

    trigger = new_trigger(admin)
    assert hook(trigger["token"], {"topic": "Q3"}).status_code == 202
    member_remove(membership=Membership.objects.get(user=admin.user))
    response = hook(trigger["token"], {"topic": "Q4"})
    assert (response.status_code, response.json()) == (404, UNKNOWN_ROUTE)
    assert Run.objects.count() == 1
    assert WebhookTrigger.objects.get().revoked_at is not None
    revoked = AuditEvent.objects.get(event_type="automation.webhook_trigger.revoked")
    assert revoked.payload["code"] == "TRIGGER_OWNER_NOT_AUTHORISED"
    assert revoked.actor_id == f"webhook:{trigger['trigger_id']}"
    # Revoked once: later calls are plain 404s that write nothing.
    assert hook(trigger["token"], {"topic": "Q5"}).status_code == 404
    assert AuditEvent.objects.filter(event_type="automation.webhook_trigger.revoked").count() == 1
