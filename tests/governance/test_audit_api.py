"""`GET /api/audit/events` and `GET /api/audit/verify`."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from governance.actors import Actor
from governance.audit import audit_record
from governance.models import AuditChainHead, AuditEvent, Membership, PrincipalKind, Role
from tests.factories import append_events
from tests.support.audit import tampering

EVENTS = "/api/audit/events"
VERIFY = "/api/audit/verify"


def head_seq(workspace) -> int:
    """Events already in the chain: the fixtures' own writes (memberships, tokens) are audited."""
    return AuditChainHead.objects.get(workspace=workspace).seq


def record_as(member, event_type: str, payload: dict | None = None) -> AuditEvent:
    membership = Membership.objects.select_related("user", "workspace").get(
        user=member.user, workspace=member.workspace
    )
    with transaction.atomic():
        return audit_record(
            workspace=member.workspace,
            event_type=event_type,
            actor=Actor.for_member(membership),
            payload=payload or {},
        )


# --- Who may read ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [EVENTS, VERIFY])
def test_anonymous_is_401(db, url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_REQUIRED"


@pytest.mark.parametrize("url", [EVENTS, VERIFY])
def test_invalid_token_is_401(db, url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    response = client.get(url)
    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_REQUIRED"


@pytest.fixture
def admin_agent(make_member):
    """An agent principal holding the admin role: still no workspace admin."""
    return make_member("acme/ops", "bot-admin", role=Role.ADMIN, kind=PrincipalKind.AGENT)


@pytest.mark.parametrize("member", ["viewer", "operator", "reviewer", "agent", "admin_agent"])
@pytest.mark.parametrize("url", [EVENTS, VERIFY])
def test_non_admins_are_403_and_nothing_is_written(request, member, url):
    caller = request.getfixturevalue(member)
    before = head_seq(caller.workspace)
    response = caller.client().get(url)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "AUDIT_ACCESS_DENIED"
    assert body["error"]
    assert head_seq(caller.workspace) == before  # GETs never write, denied or not


def test_non_admin_with_bad_parameters_is_still_403(viewer):
    response = viewer.client().get(EVENTS, {"limit": "zero"})
    assert response.status_code == 403


def test_outsider_sees_only_its_own_chain(admin, outsider):
    record_as(admin, "automation.created", {"automation_id": "acme-secret"})
    record_as(admin, "automation.updated", {"automation_id": "acme-secret"})
    record_as(outsider, "automation.created", {"automation_id": "globex-1"})

    body = outsider.client().get(EVENTS).json()
    assert body["count"] == head_seq(outsider.workspace)
    assert body["events"][-1]["payload"] == {"automation_id": "globex-1"}
    assert "acme-secret" not in str(body)
    assert "ada-admin" not in str(body)
    assert {e["hash"] for e in body["events"]}.isdisjoint(
        AuditEvent.objects.filter(workspace=admin.workspace).values_list("hash", flat=True)
    )

    verified = outsider.client().get(VERIFY).json()
    assert verified["ok"] is True
    assert (verified["workspace"], verified["events"]) == ("globex/ops", body["count"])


def test_outsider_cannot_name_another_workspace(admin, outsider):
    record_as(admin, "automation.created")
    response = outsider.client().get(EVENTS, HTTP_X_WORKSPACE="acme/ops")
    assert response.status_code == 404
    assert response.json()["code"] == "WORKSPACE_NOT_FOUND"


# --- Events ----------------------------------------------------------------------------------


def test_admin_lists_events_in_chain_order(admin):
    base = head_seq(admin.workspace)
    previous = AuditEvent.objects.get(workspace=admin.workspace, seq=base)
    first = record_as(admin, "automation.created", {"automation_id": "a1"})
    second = record_as(admin, "automation.run_started", {"run_id": "r1"})

    response = admin.client().get(EVENTS, {"since_seq": base + 1})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["next_cursor"] is None
    assert body["events"][0] == {
        "seq": base + 1,
        "event_type": "automation.created",
        "actor": {"kind": "human", "actor_id": "ada-admin"},
        "payload": {"automation_id": "a1"},
        "created_at_ms": int(first.created_at.timestamp() * 1000),
        "prev_hash": previous.hash,
        "hash": first.hash,
        "key_id": "test1",
    }
    assert body["events"][1]["seq"] == base + 2
    assert body["events"][1]["prev_hash"] == first.hash
    assert body["events"][1]["hash"] == second.hash


def test_filters(admin, viewer, workspace):
    record_as(admin, "automation.created")
    record_as(viewer, "automation.run_started")
    record_as(admin, "automation.run_started")
    append_events(workspace, 1, actor=Actor.system(workspace, name="tests"))
    base = head_seq(workspace) - 4
    client = admin.client()

    def seqs(**params):
        response = client.get(EVENTS, params)
        assert response.status_code == 200, response.json()
        return [e["seq"] - base for e in response.json()["events"]]

    assert seqs(since_seq=base + 1) == [1, 2, 3, 4]
    assert seqs()[-4:] == [1, 2, 3, 4]
    assert seqs(event_type="automation.run_started") == [2, 3]
    assert seqs(actor_id="ada-admin") == [1, 3]
    assert seqs(actor_id="system:tests") == [4]
    assert seqs(event_type="automation.run_started", actor_id="vera-viewer") == [2]
    assert seqs(since_seq=base + 3) == [3, 4]
    assert seqs(since_seq=base + 99) == []
    assert seqs(event_type="no.such.event") == []


def test_pages_follow_next_cursor(admin, workspace):
    base = head_seq(workspace)
    append_events(workspace, 7)
    client = admin.client()
    seen, params = [], {"limit": 3, "since_seq": base + 1}
    for _ in range(5):
        body = client.get(EVENTS, params).json()
        assert body["count"] == len(body["events"])
        seen.append([e["seq"] - base for e in body["events"]])
        if body["next_cursor"] is None:
            break
        params = {"limit": 3, "since_seq": body["next_cursor"]}
    assert seen == [[1, 2, 3], [4, 5, 6], [7]]


def test_an_exactly_full_last_page_has_no_next_cursor(admin, workspace):
    append_events(workspace, 3)
    body = admin.client().get(EVENTS, {"limit": head_seq(workspace)}).json()
    assert (body["count"], body["next_cursor"]) == (head_seq(workspace), None)


def test_filtered_pages_follow_next_cursor(admin, workspace):
    base = head_seq(workspace)
    append_events(workspace, 9)  # event types cycle test.event_0, _1, _2
    client = admin.client()
    body = client.get(EVENTS, {"event_type": "test.event_1", "limit": 2}).json()
    assert [e["seq"] - base for e in body["events"]] == [2, 5]
    body = client.get(
        EVENTS, {"event_type": "test.event_1", "limit": 2, "since_seq": body["next_cursor"]}
    ).json()
    assert [e["seq"] - base for e in body["events"]] == [8]
    assert body["next_cursor"] is None


def test_default_and_maximum_limit(admin, workspace):
    append_events(workspace, 501)
    client = admin.client()
    body = client.get(EVENTS).json()
    assert (body["count"], body["next_cursor"]) == (100, "101")
    body = client.get(EVENTS, {"limit": 500}).json()
    assert (body["count"], body["next_cursor"]) == (500, "501")
    body = client.get(EVENTS, {"limit": ""}).json()  # an empty parameter means "not given"
    assert body["count"] == 100


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"since_seq": 0}, "since_seq"),
        ({"since_seq": "x"}, "since_seq"),
        ({"event_type": "x" * 101}, "event_type"),
        ({"actor_id": "x" * 201}, "actor_id"),
    ],
)
def test_invalid_parameters_are_400(admin, params, field):
    response = admin.client().get(EVENTS, params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_REQUEST"
    assert field in body["fields"]


@pytest.mark.parametrize("events", [3, 30])
def test_event_list_query_count_does_not_grow_with_events(
    admin, workspace, events, django_assert_num_queries
):
    append_events(workspace, events)
    client = admin.client()
    # The token (with user and workspace), the membership, the page of events.
    with django_assert_num_queries(3):
        response = client.get(EVENTS, {"limit": 500})
    assert response.json()["count"] == head_seq(workspace) >= events


# --- Verify ----------------------------------------------------------------------------------


def test_verify_reports_an_intact_chain(admin, workspace):
    append_events(workspace, 4)
    last = AuditEvent.objects.get(workspace=workspace, seq=head_seq(workspace))
    response = admin.client().get(VERIFY)
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "workspace": "acme/ops",
        "events": last.seq,
        "head": {"seq": last.seq, "hash": last.hash},
    }


def test_verify_reports_the_first_break_after_tampering(admin, workspace):
    append_events(workspace, 5)
    target = AuditEvent.objects.get(workspace=workspace, seq=head_seq(workspace) - 3)
    with tampering():
        AuditEvent.objects.filter(pk=target.pk).update(payload={"n": 99})

    response = admin.client().get(VERIFY)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["first_break"] == {
        "seq": target.seq,
        "event_id": target.pk,
        "reason": "hash does not match the event's contents (edited)",
    }


def test_verify_reports_a_truncated_tail(admin, workspace):
    append_events(workspace, 5)
    last = head_seq(workspace)
    with tampering():
        AuditEvent.objects.filter(workspace=workspace, seq=last).delete()
    body = admin.client().get(VERIFY).json()
    assert body["ok"] is False
    assert body["first_break"]["seq"] == last


# --- Schema ----------------------------------------------------------------------------------


def test_openapi_schema_documents_both_endpoints():
    generator = SchemaGenerator(patterns=[path("api/audit/", include("governance.api.urls"))])
    schema = generator.get_schema(request=None, public=True)

    events = schema["paths"]["/api/audit/events"]["get"]
    assert events["operationId"] == "audit_events_list"
    assert {p["name"] for p in events["parameters"]} >= {
        "event_type",
        "actor_id",
        "since_seq",
        "limit",
    }
    assert set(events["responses"]) == {"200", "400", "401", "403"}
    listed = events["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert listed.endswith("/AuditEventList")

    components = schema["components"]["schemas"]
    assert set(components["AuditEvent"]["properties"]) == {
        "seq",
        "event_type",
        "actor",
        "payload",
        "created_at_ms",
        "prev_hash",
        "hash",
        "key_id",
    }
    assert components["AuditEventList"]["properties"]["next_cursor"]["nullable"] is True

    verify = schema["paths"]["/api/audit/verify"]["get"]
    assert verify["operationId"] == "audit_verify"
    assert verify["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AuditVerify"
    )
    assert "first_break" not in components["AuditVerify"]["required"]
