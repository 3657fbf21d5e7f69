"""One pagination convention on every list (issue 17): `limit` and `cursor` in, `next_cursor`
out, null on the last page; the audit list keeps `since_seq` as an alias of `cursor`. A real
worker parks three runs on their gates for the pending list."""

from __future__ import annotations

import pytest

from automations.models import Run, RunStatus
from tests.factories import simple_agents, simple_flow
from tests.support.wait import wait_for

API = "/api"
URL = f"{API}/automations/v2"


def create(member, automation_id="weekly"):
    body = {"automation_id": automation_id, "name": "Weekly", "flow": simple_flow()}
    response = member.client().post(URL, {**body, "agents": simple_agents()}, format="json")
    assert response.status_code == 201, response.json()


def pages(client, path, key, **params) -> list[list]:
    """Every page of a list, following `next_cursor`."""
    found, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get(path, query).json()
        assert set(body) >= {key, "count", "next_cursor"}, body
        assert body["count"] == len(body[key])
        found.append(body[key])
        cursor = body["next_cursor"]
        if cursor is None:
            return found


@pytest.mark.django_db(transaction=True)
def test_pending_approvals_and_an_automations_runs_page_by_cursor(
    operator, reviewer, celery_worker
):
    create(operator)
    client = operator.client()
    run_ids = [client.post(f"{URL}/weekly/run_now").json()["run"]["run_id"] for _ in range(3)]
    wait_for(
        lambda: Run.objects.filter(status=RunStatus.AWAITING_APPROVAL).count() == 3, timeout=30
    )

    runs = pages(client, f"{URL}/weekly/runs", "runs", limit=2)
    assert [len(page) for page in runs] == [2, 1]
    assert [run["run_id"] for page in runs for run in page] == run_ids[::-1]

    gates = pages(reviewer.client(), f"{API}/approvals/pending", "approvals", limit=2)
    assert [len(page) for page in gates] == [2, 1]
    assert sorted(gate["run_id"] for page in gates for gate in page) == sorted(run_ids)

    bad = reviewer.client().get(f"{API}/approvals/pending", {"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"


@pytest.mark.django_db
def test_audit_events_page_by_cursor_and_keep_since_seq_as_an_alias(admin, operator):
    for n in range(3):
        create(operator, automation_id=f"a{n}")
    client = admin.client()
    by_cursor = pages(client, f"{API}/audit/events", "events", limit=2)
    seqs = [event["seq"] for page in by_cursor for event in page]
    assert seqs == sorted(seqs) and len(seqs) >= 3
    first = client.get(f"{API}/audit/events", {"limit": 2}).json()
    cursor = first["next_cursor"]
    assert isinstance(cursor, str)
    via_alias = client.get(f"{API}/audit/events", {"limit": 2, "since_seq": cursor}).json()
    via_cursor = client.get(f"{API}/audit/events", {"limit": 2, "cursor": cursor}).json()
    assert via_alias == via_cursor
    both = client.get(f"{API}/audit/events", {"cursor": cursor, "since_seq": int(cursor) + 1})
    assert both.status_code == 400
    assert "since_seq" in both.json()["fields"]
    for bad in ("0", "x", "-1", "1" * 30):
        assert client.get(f"{API}/audit/events", {"cursor": bad}).status_code == 400


@pytest.mark.django_db
def test_an_automations_grants_page_by_cursor(operator, admin, make_member):
    create(operator)
    granted = []
    for n in range(5):
        member = make_member(operator.workspace.path, f"grantee{n}", role="viewer")
        response = admin.client().post(
            f"{URL}/weekly/grants",
            {"user": member.user.username, "permission": "review"},
            format="json",
        )
        assert response.status_code == 201, response.json()
        granted.append(response.json()["grant_id"])
    client = operator.client()
    listed = pages(client, f"{URL}/weekly/grants", "grants", limit=2)
    assert [len(page) for page in listed] == [2, 2, 1]
    assert [grant["grant_id"] for page in listed for grant in page] == granted
    for bad in ("x", "WyJhIl0", "eyJhIjogMX0"):  # not base64 JSON; ["a"] vs ints; an object
        response = client.get(f"{URL}/weekly/grants", {"cursor": bad})
        assert response.status_code == 400, (bad, response.json())
