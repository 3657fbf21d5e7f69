"""Run lists: one automation's runs and the workspace's runs (filters, keyset cursor, limits),
tenancy before the limit, read-only, and a query count that does not grow with the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import Decision, Gate, GateDecision, GateStatus
from automations.models import Automation, Run, RunStatus
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import create_automation as create
from tests.factories import start_runs

RUNS = f"{URL}/runs"


def ids(body) -> list[str]:
    return [run["run_id"] for run in body["runs"]]


def add_gate_history(run_id: str, decider) -> None:
    """An open gate and a decision on an earlier opening, so every prefetch has rows."""
    run = Run.objects.get(run_id=run_id)
    now = timezone.now()
    decided = Gate.objects.create(
        id=f"gate-{run_id}-1",
        run=run,
        workspace=run.workspace,
        node_id="approval",
        round=1,
        status=GateStatus.DECIDED,
        title="Approve",
        requested_at=now,
        expires_at=now + timedelta(days=1),
    )
    GateDecision.objects.create(
        gate=decided,
        run=run,
        node_id="approval",
        decision=Decision.REWORK,
        decided_by=decider,
        decider_kind="human",
        source="api",
    )
    Gate.objects.create(
        id=f"gate-{run_id}-2",
        run=run,
        workspace=run.workspace,
        node_id="approval",
        round=2,
        title="Approve",
        requested_at=now,
        expires_at=now + timedelta(days=1),
    )
    Run.objects.filter(pk=run.pk).update(status=RunStatus.AWAITING_APPROVAL)


def only_selects(queries) -> bool:
    return all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries)


@pytest.mark.django_db
class TestAutomationRuns:
    def test_newest_first_with_the_original_shape(self, operator, viewer):
        create(operator, automation_id="weekly")
        create(operator, automation_id="other")
        started = start_runs(operator, "weekly", 3)
        start_runs(operator, "other", 2)
        response = viewer.client().get(f"{URL}/weekly/runs")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert set(body) == {"automationID", "runs", "count", "next_cursor"}
        assert body["automationID"] == "weekly"
        assert ids(body) == started[::-1]
        assert body["count"] == 3
        detail = viewer.client().get(f"{RUNS}/{started[-1]}").json()["run"]
        assert body["runs"][0] == detail

    def test_limit(self, operator):
        create(operator, automation_id="weekly")
        started = start_runs(operator, "weekly", 4)
        body = operator.client().get(f"{URL}/weekly/runs", {"limit": 2}).json()
        assert ids(body) == started[:1:-1]
        assert body["count"] == 2

    def test_default_limit_is_50(self, operator):
        create(operator, automation_id="weekly")
        automation = Automation.objects.get(automation_id="weekly")
        Run.objects.bulk_create(
            Run(run_id=f"run-{n}", workspace=operator.workspace, automation=automation)
            for n in range(55)
        )
        assert operator.client().get(f"{URL}/weekly/runs").json()["count"] == 50
        assert operator.client().get(f"{URL}/weekly/runs", {"limit": 200}).json()["count"] == 55

    @pytest.mark.parametrize("limit", ["0", "201", "x", "1.5", "-1", " "])
    def test_bad_limit_is_400(self, operator, limit):
        create(operator, automation_id="weekly")
        response = operator.client().get(f"{URL}/weekly/runs", {"limit": limit})
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_REQUEST"
        assert "limit" in response.json()["fields"]

    def test_invisible_automation_is_404(self, operator, outsider):
        create(operator, automation_id="weekly")
        start_runs(operator, "weekly", 1)
        for path in (f"{URL}/weekly/runs", f"{URL}/nope/runs", f"{URL}/{'x' * 200}/runs"):
            response = outsider.client().get(path)
            assert response.status_code == 404
            assert response.json()["code"] == "AUTOMATION_V2_NOT_FOUND"

    def test_deleted_automation_is_404(self, operator):
        create(operator, automation_id="weekly")
        start_runs(operator, "weekly", 1)
        assert operator.client().delete(f"{URL}/weekly").status_code == 204
        assert operator.client().get(f"{URL}/weekly/runs").status_code == 404

    def test_agent_and_reviewer_can_read(self, operator, agent, reviewer):
        create(operator, automation_id="weekly")
        start_runs(operator, "weekly", 1)
        for member in (agent, reviewer):
            assert member.client().get(f"{URL}/weekly/runs").json()["count"] == 1

    def test_anonymous_is_401(self, operator, client):
        create(operator, automation_id="weekly")
        response = client.get(f"{URL}/weekly/runs")
        assert response.status_code == 401
        assert response.json()["code"] == "AUTHENTICATION_REQUIRED"

    def test_query_count_does_not_grow_with_runs_or_limit(
        self, operator, viewer, django_assert_num_queries
    ):
        create(operator, automation_id="weekly")
        client = viewer.client()
        for run_id in start_runs(operator, "weekly", 2):
            add_gate_history(run_id, operator.user)
        # token, membership, automation, the viewer's object permissions (user, groups),
        # the runs, then nodes, lifecycle events, open gates, decisions (with gate and user)
        with django_assert_num_queries(10):
            assert client.get(f"{URL}/weekly/runs").json()["count"] == 2
        for run_id in start_runs(operator, "weekly", 23):
            add_gate_history(run_id, operator.user)
        with django_assert_num_queries(10):
            assert client.get(f"{URL}/weekly/runs").json()["count"] == 25
        with django_assert_num_queries(10):
            assert client.get(f"{URL}/weekly/runs", {"limit": 10}).json()["count"] == 10
        with django_assert_num_queries(10):
            assert client.get(f"{URL}/weekly/runs", {"limit": 200}).json()["count"] == 25

    def test_get_never_writes(self, operator):
        create(operator, automation_id="weekly")
        start_runs(operator, "weekly", 2)
        before = list(Run.objects.order_by("pk").values())
        with CaptureQueriesContext(connection) as queries:
            assert operator.client().get(f"{URL}/weekly/runs").status_code == 200
        assert only_selects(queries.captured_queries)
        assert list(Run.objects.order_by("pk").values()) == before


@pytest.mark.django_db
class TestWorkspaceRuns:
    def test_every_automation_newest_first(self, operator, viewer):
        create(operator, automation_id="a")
        create(operator, automation_id="b")
        first = start_runs(operator, "a", 1)
        second = start_runs(operator, "b", 2)
        third = start_runs(operator, "a", 1)
        body = viewer.client().get(RUNS).json()
        assert set(body) == {"runs", "count", "next_cursor"}
        assert ids(body) == (first + second + third)[::-1]
        assert body["count"] == 4
        assert body["next_cursor"] is None
        assert {run["automation_id"] for run in body["runs"]} == {"a", "b"}

    def test_other_workspaces_runs_never_appear_even_when_newer(self, operator, outsider):
        create(operator, automation_id="weekly")
        create(outsider, automation_id="weekly")
        mine = start_runs(operator, "weekly", 2)
        start_runs(outsider, "weekly", 5)  # newer: a limit applied before the tenant filter
        body = operator.client().get(RUNS, {"limit": 2}).json()  # would return none of mine
        assert ids(body) == mine[::-1]
        assert body["next_cursor"] is None
        filtered = operator.client().get(RUNS, {"automation_id": "weekly", "limit": 200}).json()
        assert ids(filtered) == mine[::-1]
        assert outsider.client().get(RUNS, {"limit": 200}).json()["count"] == 5

    def test_status_and_automation_filters(self, operator):
        create(operator, automation_id="a")
        create(operator, automation_id="b")
        a_runs = start_runs(operator, "a", 3)
        b_runs = start_runs(operator, "b", 2)
        Run.objects.filter(run_id__in=[a_runs[0], b_runs[1]]).update(status=RunStatus.FAILED)
        client = operator.client()
        failed = client.get(RUNS, {"status": "failed"}).json()
        assert ids(failed) == [b_runs[1], a_runs[0]]
        assert all(run["status"] == "failed" for run in failed["runs"])
        assert ids(client.get(RUNS, {"automation_id": "b"}).json()) == b_runs[::-1]
        both = client.get(RUNS, {"automation_id": "a", "status": "queued"}).json()
        assert ids(both) == [a_runs[2], a_runs[1]]
        assert client.get(RUNS, {"automation_id": "zzz"}).json() == {
            "runs": [],
            "count": 0,
            "next_cursor": None,
        }

    def test_runs_of_a_deleted_automation_stay_listed(self, operator):
        create(operator, automation_id="weekly")
        old = start_runs(operator, "weekly", 1)
        assert operator.client().delete(f"{URL}/weekly").status_code == 204
        create(operator, automation_id="weekly")
        new = start_runs(operator, "weekly", 1)
        body = operator.client().get(RUNS, {"automation_id": "weekly"}).json()
        assert ids(body) == new + old

    def test_cursor_pages_through_everything_once(self, operator):
        create(operator, automation_id="weekly")
        started = start_runs(operator, "weekly", 5)
        client = operator.client()
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            body = client.get(RUNS, params).json()
            assert body["count"] == len(body["runs"])
            seen += ids(body)
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert seen == started[::-1]

    def test_cursor_with_equal_timestamps_and_a_filter(self, operator):
        create(operator, automation_id="weekly")
        started = start_runs(operator, "weekly", 6)
        Run.objects.update(created_at=timezone.now())  # ties are broken by id, descending
        Run.objects.filter(run_id__in=started[::2]).update(status=RunStatus.PAUSED)
        client = operator.client()
        first = client.get(RUNS, {"limit": 2, "status": "paused"}).json()
        second = client.get(
            RUNS, {"limit": 2, "status": "paused", "cursor": first["next_cursor"]}
        ).json()
        assert ids(first) + ids(second) == started[::2][::-1]
        assert second["next_cursor"] is None

    def test_exact_page_has_no_next_cursor(self, operator):
        create(operator, automation_id="weekly")
        start_runs(operator, "weekly", 2)
        assert operator.client().get(RUNS, {"limit": 2}).json()["next_cursor"] is None

    @pytest.mark.parametrize(
        "params,field",
        [
            ({"limit": 0}, "limit"),
            ({"limit": 201}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"status": "done"}, "status"),
            ({"status": "QUEUED"}, "status"),
            ({"automation_id": "a/b"}, "automation_id"),
            ({"automation_id": "x" * 129}, "automation_id"),
            ({"automation_id": "bad\nid"}, "automation_id"),
            ({"cursor": "c" * 201}, "cursor"),
        ],
    )
    def test_bad_query_is_400_naming_the_parameter(self, operator, params, field):
        response = operator.client().get(RUNS, params)
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_REQUEST"
        assert field in response.json()["fields"]

    def test_blank_parameters_mean_absent(self, operator):
        """As in every list (DRF reads a query string like a form): `?status=` is no filter."""
        create(operator, automation_id="weekly")
        start_runs(operator, "weekly", 2)
        params = {"status": "", "automation_id": "", "cursor": "", "limit": ""}
        body = operator.client().get(RUNS, params).json()
        assert body["count"] == 2

    @pytest.mark.parametrize("cursor", ["!!", "bm90IGpzb24", "WyJ4IiwgMV0", "WzEsIDJd"])
    def test_bad_cursor_is_400(self, operator, cursor):
        response = operator.client().get(RUNS, {"cursor": cursor})
        assert response.status_code == 400
        assert response.json() == {"error": "Invalid cursor", "code": "INVALID_REQUEST"}

    def test_anonymous_is_401(self, client):
        assert client.get(RUNS).status_code == 401

    def test_query_count_does_not_grow_with_runs_or_limit(
        self, operator, viewer, django_assert_num_queries
    ):
        create(operator, automation_id="weekly")
        client = viewer.client()
        for run_id in start_runs(operator, "weekly", 2):
            add_gate_history(run_id, operator.user)
        # token, membership, the page, then nodes, lifecycle events, open gates, decisions
        with django_assert_num_queries(7):
            assert client.get(RUNS).json()["count"] == 2
        for run_id in start_runs(operator, "weekly", 23):
            add_gate_history(run_id, operator.user)
        with django_assert_num_queries(7):
            assert client.get(RUNS).json()["count"] == 25
        with django_assert_num_queries(7):
            body = client.get(RUNS, {"limit": 10}).json()
            assert body["count"] == 10
        with django_assert_num_queries(7):
            assert client.get(RUNS, {"limit": 200}).json()["count"] == 25
        with django_assert_num_queries(7):
            params = {"limit": 10, "cursor": body["next_cursor"], "automation_id": "weekly"}
            assert client.get(RUNS, params).json()["count"] == 10

    def test_list_items_are_the_run_json(self, operator):
        create(operator, automation_id="weekly")
        (run_id,) = start_runs(operator, "weekly", 1)
        add_gate_history(run_id, operator.user)
        client = operator.client()
        item = client.get(RUNS).json()["runs"][0]
        assert item == client.get(f"{RUNS}/{run_id}").json()["run"]
        checkpoint = item["checkpoint"]
        assert checkpoint["awaiting_gate"]["approval_request_id"] == f"gate-{run_id}-2"
        assert [d["decision"] for d in checkpoint["gate_history"]] == ["rework"]
        assert checkpoint["lifecycle_history"][0]["event"] == "run_queued"

    def test_get_never_writes(self, operator):
        create(operator, automation_id="weekly")
        start_runs(operator, "weekly", 2)
        with CaptureQueriesContext(connection) as queries:
            assert operator.client().get(RUNS).status_code == 200
        assert only_selects(queries.captured_queries)


@pytest.mark.django_db
def test_lifecycle_history_rendered_by_the_database_equals_the_python_rendering(operator):
    """List pages take each run's lifecycle_history from PostgreSQL (`LIFECYCLE_JSON_SQL`);
    it must equal `lifecycle_json`, including times on a millisecond boundary (float
    rounding), empty and set reasons and stop kinds, and nested metadata."""
    from datetime import UTC, datetime

    from automations.api.run_json import lifecycle_histories, lifecycle_json
    from automations.models import LifecycleEvent

    create(operator, automation_id="weekly")
    run_ids = start_runs(operator, "weekly", 2)
    runs = list(Run.objects.filter(run_id__in=run_ids))
    stamps = [
        datetime(2026, 11, 24, 6, 0, 0, 123000, tzinfo=UTC),
        datetime(2026, 11, 24, 6, 0, 0, 999999, tzinfo=UTC),
        datetime(2001, 9, 9, 1, 46, 40, 1000, tzinfo=UTC),
    ]
    for n, at in enumerate(stamps):
        event = LifecycleEvent.objects.create(
            run=runs[n % 2],
            event="run_paused",
            reason="" if n else "because",
            stop_kind="operator_stopped" if n else "",
            metadata={"n": n, "nested": {"list": [1, 2.5, None]}},
        )
        LifecycleEvent.objects.filter(pk=event.pk).update(at=at)
    pks = [run.pk for run in runs]
    expected = {
        run.pk: [lifecycle_json(e) for e in LifecycleEvent.objects.filter(run=run)] for run in runs
    }
    assert lifecycle_histories(pks) == expected
    assert lifecycle_histories(pks, in_database=False) == expected
