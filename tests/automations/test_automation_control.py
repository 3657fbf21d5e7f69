"""Automation pause and resume (SPEC §5, §10 item 6): the services, the API, a real worker.

Service tests build run states in the database (runs started with `run_start`, whose execution
is scheduled after a commit that never happens inside a test transaction); the worker test
pauses a node that is really executing in a Celery worker process and resumes runs that then
complete there.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.models import F

from automations import engine, scheduling
from automations.automation_control import automation_pause, automation_resume
from automations.models import (
    Automation,
    AutomationStatus,
    LifecycleEvent,
    NodeState,
    Run,
    RunNode,
    RunStatus,
    StopKind,
)
from automations.runs.control import run_pause
from automations.services import automation_update, run_start
from governance.actors import Actor
from governance.errors import AutomationNotFound, Conflict
from governance.models import AuditEvent
from tests.factories import (
    actor_for,
    make_running,
    new_automation,
    queued_runs,
    set_status,
    simple_agents,
    simple_flow,
)
from tests.support import nodekinds
from tests.support.nodekinds import WORKER_ENV
from tests.support.wait import wait_for

URL = "/api/automations/v2"
PAUSED = "automation.governance.paused"
RESUMED = "automation.governance.resumed"
DENIED = "automation.governance.denied"


@pytest.fixture
def actor(operator) -> Actor:
    return actor_for(operator)


@pytest.fixture
def scheduled(monkeypatch) -> list[str]:
    """Run ids the resume hands to the workers (instead of publishing them)."""
    run_ids: list[str] = []
    monkeypatch.setattr(scheduling, "advance_many_now", run_ids.extend)
    return run_ids


@pytest.fixture
def revoked(monkeypatch) -> list[str]:
    """Task ids revoked after commit (instead of broadcasting to workers)."""
    task_ids: list[str] = []
    monkeypatch.setattr(scheduling, "revoke_now", task_ids.extend)
    return task_ids


def audit(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("seq"))


def audit_after_create() -> list[str]:
    """Automation events other than the creation (membership and token events are not)."""
    return list(
        AuditEvent.objects.filter(event_type__startswith="automation.")
        .exclude(event_type="automation.created")
        .values_list("event_type", flat=True)
    )


def lifecycle(run: Run, event: str) -> list[LifecycleEvent]:
    return list(LifecycleEvent.objects.filter(run=run, event=event).order_by("id"))


# --- the services ----------------------------------------------------------------------------


@pytest.mark.django_db
class TestPause:
    def test_queued_and_running_runs_are_paused_awaiting_and_finished_are_not(
        self, actor, revoked, django_capture_on_commit_callbacks
    ):
        automation = new_automation(actor)
        queued = queued_runs(actor, automation, 2)
        running = queued_runs(actor, automation, 1)[0]
        node = make_running(running)
        awaiting, completed = queued_runs(actor, automation, 2)
        set_status(awaiting, RunStatus.AWAITING_APPROVAL)
        set_status(completed, RunStatus.COMPLETED)
        before = {r.pk: r.version for r in Run.objects.all()}

        with django_capture_on_commit_callbacks(execute=True):
            result = automation_pause(actor=actor, automation=automation, reason=" maintenance ")

        assert result.runs == 3
        assert (result.automation.status, result.automation.version) == ("paused", 2)
        stored = Automation.objects.get(pk=automation.pk)
        assert (stored.status, stored.version) == (AutomationStatus.PAUSED, 2)
        for run in [*queued, running]:
            run.refresh_from_db()
            assert run.status == RunStatus.PAUSED
            assert (run.pause_reason, run.stop_reason) == ("maintenance", "maintenance")
            assert run.stop_kind == StopKind.AUTOMATION_PAUSED
            assert (run.lease_owner, run.lease_expires_at) == ("", None)
            assert run.version == before[run.pk] + 1
            (event,) = lifecycle(run, "run_paused")
            assert event.reason == "maintenance"
            assert event.metadata["automation_pause"] is True
            assert event.metadata["run_version"] == run.version
            assert event.metadata["fenced_nodes"] == (["draft"] if run == running else [])
        for run, status in ((awaiting, "awaiting_approval"), (completed, "completed")):
            run.refresh_from_db()
            assert (run.status, run.version, run.stop_kind) == (status, before[run.pk], "")
            assert lifecycle(run, "run_paused") == []
        # The in-flight attempt is fenced: token and task gone, the attempt still counts.
        fenced = RunNode.objects.get(pk=node.pk)
        assert (fenced.state, fenced.attempt_token, fenced.task_id) == ("pending", None, "")
        assert fenced.attempts == 1
        assert revoked == [node.task_id]
        (event,) = audit(PAUSED)
        assert event.actor_id == actor.actor_id
        assert event.payload == {
            "automationID": "weekly",
            "reason": "maintenance",
            "pausedRuns": 3,
            "version": 2,
        }

    @pytest.mark.parametrize("reason", [None, "", "   "])
    def test_default_reason(self, actor, revoked, reason):
        automation = new_automation(actor)
        (run,) = queued_runs(actor, automation, 1)
        automation_pause(actor=actor, automation=automation, reason=reason)
        run.refresh_from_db()
        assert run.pause_reason == "paused by operator"
        assert audit(PAUSED)[0].payload["reason"] == "paused by operator"

    def test_late_result_of_a_fenced_attempt_is_discarded(self, actor, revoked):
        automation = new_automation(actor)
        (run,) = queued_runs(actor, automation, 1)
        node = make_running(run)
        automation_pause(actor=actor, automation=automation)

        accepted = engine.node_result_accept(
            run.run_id,
            "draft",
            str(node.attempt_token),
            output={"status": "completed", "content": {"text": "late"}},
            failure=None,
        )

        assert accepted is False
        (discarded,) = lifecycle(run, "node_result_discarded")
        assert discarded.reason == "run is paused"
        node.refresh_from_db()
        assert (node.state, node.output) == (NodeState.PENDING, None)
        assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED

    def test_run_start_is_refused_while_paused(self, actor, revoked):
        automation = new_automation(actor)
        automation_pause(actor=actor, automation=automation)
        with pytest.raises(Conflict) as refused:
            run_start(actor=actor, automation=automation)
        assert refused.value.code == "AUTOMATION_V2_NOT_ACTIVE"
        assert not Run.objects.exists()

    def test_pausing_a_paused_automation_is_idempotent_and_catches_runs_queued_since(
        self, actor, revoked
    ):
        automation = new_automation(actor)
        (first,) = queued_runs(actor, automation, 1)
        automation_pause(actor=actor, automation=automation)
        # A run queued again meanwhile (a run resume, an approved gate) while still paused.
        set_status(first, RunStatus.QUEUED)

        again = automation_pause(actor=actor, automation=automation, reason="again")

        assert (again.automation.status, again.automation.version, again.runs) == ("paused", 2, 1)
        first.refresh_from_db()
        assert (first.status, first.pause_reason) == (RunStatus.PAUSED, "again")
        assert [e.payload["pausedRuns"] for e in audit(PAUSED)] == [1, 1]
        assert len(lifecycle(first, "run_paused")) == 2

    def test_a_deleted_automation_is_not_found(self, actor, revoked):
        from automations.services import automation_delete

        automation = new_automation(actor)
        stale = Automation.objects.get(pk=automation.pk)
        automation_delete(actor=actor, automation=automation)
        with pytest.raises(AutomationNotFound):
            automation_pause(actor=actor, automation=stale)
        assert audit(PAUSED) == []


@pytest.mark.django_db
class TestResume:
    def test_without_resume_runs_the_runs_stay_paused(self, actor, revoked, scheduled):
        automation = new_automation(actor)
        runs = queued_runs(actor, automation, 2)
        automation_pause(actor=actor, automation=automation)

        result = automation_resume(actor=actor, automation=automation)

        assert (result.automation.status, result.automation.version, result.runs) == (
            "active",
            3,
            0,
        )
        assert {r.status for r in Run.objects.filter(pk__in=[r.pk for r in runs])} == {"paused"}
        assert scheduled == []
        (event,) = audit(RESUMED)
        assert event.payload == {
            "automationID": "weekly",
            "resumeRuns": False,
            "resumedRuns": 0,
            "version": 3,
        }

    def test_resume_runs_queues_exactly_the_runs_the_pause_holds(
        self, actor, revoked, scheduled, django_capture_on_commit_callbacks
    ):
        automation = new_automation(actor)
        by_operator, held, running, changed_since = queued_runs(actor, automation, 4)
        run_pause(actor=actor, run=Run.objects.select_related("automation").get(pk=by_operator.pk))
        make_running(running)
        awaiting = queued_runs(actor, automation, 1)[0]
        set_status(awaiting, RunStatus.AWAITING_APPROVAL)
        automation_pause(actor=actor, automation=automation)
        # Changed since the automation pause by a path that kept the marker: not held any more.
        Run.objects.filter(pk=changed_since.pk).update(version=F("version") + 1)

        with django_capture_on_commit_callbacks(execute=True):
            result = automation_resume(actor=actor, automation=automation, resume_runs=True)

        assert result.runs == 2
        assert sorted(scheduled) == sorted([held.run_id, running.run_id])
        for run in (held, running):
            run.refresh_from_db()
            assert run.status == RunStatus.QUEUED
            assert run.resume_reason == "automation resumed"
            assert (run.pause_reason, run.stop_kind, run.stop_reason) == ("", "", "")
            (event,) = lifecycle(run, "run_resumed")
            assert event.metadata == {"automation_resume": True}
        by_operator.refresh_from_db()
        assert (by_operator.status, by_operator.pause_reason) == ("paused", "paused by operator")
        assert lifecycle(by_operator, "run_resumed") == []
        assert Run.objects.get(pk=changed_since.pk).status == RunStatus.PAUSED
        assert Run.objects.get(pk=awaiting.pk).status == RunStatus.AWAITING_APPROVAL
        assert audit(RESUMED)[0].payload["resumedRuns"] == 2

    def test_resume_runs_later_on_an_active_automation(self, actor, revoked, scheduled):
        automation = new_automation(actor)
        (run,) = queued_runs(actor, automation, 1)
        automation_pause(actor=actor, automation=automation)
        automation_resume(actor=actor, automation=automation)

        again = automation_resume(actor=actor, automation=automation, resume_runs=True)

        assert (again.automation.version, again.runs) == (3, 1)
        assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED
        assert [e.payload["resumedRuns"] for e in audit(RESUMED)] == [0, 1]
        # Nothing is held any more: a third call resumes nothing.
        assert automation_resume(actor=actor, automation=automation, resume_runs=True).runs == 0

    def test_a_run_resumed_once_is_not_resumed_twice(self, actor, revoked, scheduled):
        automation = new_automation(actor)
        (run,) = queued_runs(actor, automation, 1)
        automation_pause(actor=actor, automation=automation)
        automation_resume(actor=actor, automation=automation, resume_runs=True)
        run_pause(actor=actor, run=Run.objects.select_related("automation").get(pk=run.pk))

        assert automation_resume(actor=actor, automation=automation, resume_runs=True).runs == 0
        assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED


def _runs_with_a_third_running(actor: Actor, automation: Automation, count: int) -> None:
    for n, run in enumerate(queued_runs(actor, automation, count)):
        if n % 3 == 0:
            make_running(run)


# Savepoint and release (the test's transaction) + lock the automation + update it + lock the
# runs + read their running nodes + update those + read the runs' statuses, insert their
# `run.paused` events and read the webhook endpoints + update the runs + insert the lifecycle
# events + audit (2 statements). The owner's authorisation needs no query.
PAUSE_QUERIES = 14
# Savepoint and release + lock the automation + update it + lock the held runs + their events
# (3, as above) + update them + insert the lifecycle events + audit (2 statements).
RESUME_QUERIES = 12


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 30])
def test_query_counts_do_not_depend_on_the_number_of_runs(
    actor, revoked, scheduled, django_assert_num_queries, django_capture_on_commit_callbacks, count
):
    automation = new_automation(actor)
    _runs_with_a_third_running(actor, automation, count)

    with (
        django_capture_on_commit_callbacks(execute=True),
        django_assert_num_queries(PAUSE_QUERIES),
    ):
        paused = automation_pause(actor=actor, automation=automation)
    with django_assert_num_queries(RESUME_QUERIES):
        resumed = automation_resume(actor=actor, automation=automation, resume_runs=True)

    assert paused.runs == resumed.runs == count
    assert len(revoked) == len(range(0, count, 3))


@pytest.mark.django_db(transaction=True)
def test_run_now_racing_with_the_pause_is_paused_by_it_or_refused(actor, monkeypatch, revoked):
    """Eight threads start runs while the automation is paused: every run that got in before
    the pause is paused by it, every later start is refused; none is left queued."""
    monkeypatch.setattr(scheduling, "advance_now", lambda *args, **kwargs: None)
    automation = new_automation(actor)
    barrier = threading.Barrier(9)
    outcomes: list[str] = []

    def start() -> None:
        try:
            barrier.wait()
            run_start(actor=actor, automation=automation)
            outcomes.append("started")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    barrier.wait()
    result = automation_pause(actor=actor, automation=automation)
    for thread in threads:
        thread.join()

    assert set(outcomes) <= {"started", "AUTOMATION_V2_NOT_ACTIVE"}
    statuses = list(Run.objects.filter(automation=automation).values_list("status", flat=True))
    assert len(statuses) == outcomes.count("started") == result.runs
    assert set(statuses) <= {RunStatus.PAUSED}


# --- the API ---------------------------------------------------------------------------------


def create_via_api(member, automation_id: str = "weekly") -> dict:
    response = member.client().post(
        URL,
        {
            "automation_id": automation_id,
            "name": "Weekly report",
            "agents": simple_agents(),
            "flow": simple_flow(),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.django_db
class TestAPI:
    def test_operator_pauses_and_resumes(self, operator, revoked, scheduled):
        create_via_api(operator)
        client = operator.client()
        run_id = client.post(f"{URL}/weekly/run_now").json()["run"]["run_id"]

        response = client.post(f"{URL}/weekly/pause", {"reason": "deploy"}, format="json")

        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["ok"] is True and body["pausedRuns"] == 1
        assert body["automation"]["automation_id"] == "weekly"
        assert (body["automation"]["status"], body["automation"]["version"]) == ("paused", 2)
        assert body["automation"]["created_by"] == operator.user.username
        run = client.get(f"{URL}/runs/{run_id}").json()["run"]
        assert (run["status"], run["pause_reason"], run["stop_kind"]) == (
            "paused",
            "deploy",
            "automation_paused",
        )
        refused = client.post(f"{URL}/weekly/run_now")
        assert refused.status_code == 409
        assert refused.json()["code"] == "AUTOMATION_V2_NOT_ACTIVE"

        response = client.post(f"{URL}/weekly/resume", {"resume_runs": True}, format="json")

        assert response.status_code == 200, response.json()
        body = response.json()
        assert (body["ok"], body["resumedRuns"]) == (True, 1)
        assert (body["automation"]["status"], body["automation"]["version"]) == ("active", 3)
        assert client.get(f"{URL}/runs/{run_id}").json()["run"]["status"] == "queued"
        assert (len(audit(PAUSED)), len(audit(RESUMED))) == (1, 1)

    def test_no_body_uses_the_defaults(self, operator, revoked, scheduled):
        create_via_api(operator)
        client = operator.client()
        assert client.post(f"{URL}/weekly/pause").status_code == 200
        assert audit(PAUSED)[0].payload["reason"] == "paused by operator"
        response = client.post(f"{URL}/weekly/resume")
        assert response.status_code == 200
        assert audit(RESUMED)[0].payload["resumeRuns"] is False

    def test_repeated_calls_are_200_and_each_is_audited_once(self, operator, revoked, scheduled):
        create_via_api(operator)
        client = operator.client()
        versions = []
        for verb in ("pause", "pause", "resume", "resume"):
            response = client.post(f"{URL}/weekly/{verb}", {}, format="json")
            assert response.status_code == 200, response.json()
            versions.append(response.json()["automation"]["version"])
        assert versions == [2, 2, 3, 3]
        assert (len(audit(PAUSED)), len(audit(RESUMED))) == (2, 2)

    @pytest.mark.parametrize("role_fixture", ["viewer", "reviewer"])
    @pytest.mark.parametrize("verb", ["pause", "resume"])
    def test_roles_without_operate_get_403_audited_once(
        self, request, operator, role_fixture, verb
    ):
        create_via_api(operator)
        member = request.getfixturevalue(role_fixture)

        response = member.client().post(f"{URL}/weekly/{verb}", {}, format="json")

        assert response.status_code == 403
        assert response.json()["code"] == "AUTOMATION_V2_ACCESS_DENIED"
        (denial,) = audit(DENIED)
        assert denial.actor_id == member.user.username
        assert denial.payload["action"] == "operate"
        assert denial.payload["code"] == "AUTOMATION_V2_ACCESS_DENIED"
        assert audit(PAUSED) == audit(RESUMED) == []
        assert Automation.objects.get().version == 1

    @pytest.mark.parametrize("verb", ["pause", "resume"])
    def test_agent_needs_a_grant(self, operator, agent, revoked, scheduled, verb):
        create_via_api(operator)

        response = agent.client().post(f"{URL}/weekly/{verb}", {}, format="json")

        assert response.status_code == 403
        assert response.json()["code"] == "AUTOMATION_V2_MODIFY_FORBIDDEN"
        (denial,) = audit(DENIED)
        assert denial.payload["code"] == "AUTOMATION_V2_MODIFY_FORBIDDEN"

        grant = operator.client().post(
            f"{URL}/weekly/grants",
            {"user": agent.user.username, "permission": "operate"},
            format="json",
        )
        assert grant.status_code == 201, grant.json()
        assert agent.client().post(f"{URL}/weekly/{verb}", {}, format="json").status_code == 200
        assert len(audit(DENIED)) == 1

    @pytest.mark.parametrize("verb", ["pause", "resume"])
    def test_other_workspace_and_missing_are_404(self, operator, outsider, verb):
        create_via_api(operator)
        theirs = outsider.client().post(f"{URL}/weekly/{verb}", {}, format="json")
        missing = operator.client().post(f"{URL}/nope/{verb}", {}, format="json")
        for response in (theirs, missing):
            assert response.status_code == 404
            assert response.json()["code"] == "AUTOMATION_V2_NOT_FOUND"
        assert theirs.json()["automationID"] == "weekly"
        assert audit_after_create() == []
        assert Automation.objects.get().status == "active"

    def test_deleted_automation_is_404(self, operator):
        create_via_api(operator)
        assert operator.client().delete(f"{URL}/weekly").status_code == 204
        response = operator.client().post(f"{URL}/weekly/pause", {}, format="json")
        assert response.status_code == 404

    @pytest.mark.parametrize("verb", ["pause", "resume"])
    def test_anonymous_is_401(self, operator, client, verb):
        create_via_api(operator)
        response = client.post(f"{URL}/weekly/{verb}", {}, content_type="application/json")
        assert response.status_code == 401
        assert response.json()["code"] == "AUTHENTICATION_REQUIRED"

    @pytest.mark.parametrize(
        "verb,payload,field",
        [
            ("pause", {"reason": 5}, "reason"),
            ("pause", {"reason": ["x"]}, "reason"),
            ("pause", {"reason": "x" * 2001}, "reason"),
            ("pause", {"reason": "x", "resume_runs": True}, "resume_runs"),
            ("pause", [], "non_field_errors"),
            ("pause", "stop", "non_field_errors"),
            ("resume", {"resume_runs": "true"}, "resume_runs"),
            ("resume", {"resume_runs": 1}, "resume_runs"),
            ("resume", {"resume_runs": None}, "resume_runs"),
            ("resume", {"reason": "x"}, "reason"),
        ],
    )
    def test_bad_input_is_400_and_changes_nothing(self, operator, verb, payload, field):
        create_via_api(operator)
        response = operator.client().post(f"{URL}/weekly/{verb}", payload, format="json")
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == "INVALID_REQUEST"
        assert field in response.json()["fields"]
        assert Automation.objects.get().version == 1
        assert audit_after_create() == []

    def test_malformed_json_is_400(self, operator):
        create_via_api(operator)
        response = operator.client().post(
            f"{URL}/weekly/pause", b'{"reason": ', content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_REQUEST"
        assert Automation.objects.get().status == "active"


# --- with a real worker ----------------------------------------------------------------------


def _wait_status(run: Run, status: str, timeout: float = 30.0) -> Run:
    try:
        return wait_for(
            lambda: Run.objects.filter(pk=run.pk, status=status).first(),
            timeout=timeout,
            message=f"run {run.run_id} to be {status}",
        )
    except AssertionError as exc:
        current = Run.objects.get(pk=run.pk)
        history = list(LifecycleEvent.objects.filter(run=run).values_list("event", "reason"))
        raise AssertionError(
            f"{exc}; it is {current.status} ({current.detail}): {history}"
        ) from None


@pytest.mark.django_db(transaction=True)
def test_pause_and_resume_with_runs_executing_on_a_worker(
    operator, celery_worker_factory, monkeypatch, settings
):
    """A run awaiting approval, one executing a node on the worker and one queued: the pause
    holds the last two (the executing node's late result is discarded), run_now is refused,
    a plain resume leaves them paused, `resume_runs` queues them and they complete."""
    settings.FLOWGATE_NODE_KINDS = nodekinds.KINDS_SETTING
    celery_worker_factory(env=WORKER_ENV)
    actor = actor_for(operator)
    client = operator.client()
    automation = new_automation(actor)  # draft → approval gate
    awaiting = _wait_status(run_start(actor=actor, automation=automation), "awaiting_approval")

    sleep_flow = {
        "nodes": [
            {"node_id": "slow", "kind": "sleep", "metadata": {"sleep_s": 2.0}},
            {
                "node_id": "after",
                "kind": "agent",
                "agent_id": "writer",
                "objective": "Summarise",
                "depends_on": ["slow"],
            },
        ]
    }
    automation = automation_update(actor=actor, automation=automation, data={"flow": sleep_flow})
    running = run_start(actor=actor, automation=automation)
    wait_for(
        lambda: RunNode.objects.filter(
            run=running, node_id="slow", started_at__isnull=False
        ).exists(),
        timeout=20,
        message="the slow node to start executing",
    )
    with monkeypatch.context() as held_back:  # queued, its advance message not sent yet
        held_back.setattr(scheduling, "advance_now", lambda *args, **kwargs: None)
        queued = run_start(actor=actor, automation=automation)
    assert Run.objects.get(pk=queued.pk).status == RunStatus.QUEUED

    response = client.post(f"{URL}/weekly/pause", {"reason": "maintenance"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["pausedRuns"] == 2
    for run in (running, queued):
        run.refresh_from_db()
        assert (run.status, run.pause_reason) == (RunStatus.PAUSED, "maintenance")
    assert Run.objects.get(pk=awaiting.pk).status == RunStatus.AWAITING_APPROVAL
    wait_for(
        lambda: LifecycleEvent.objects.filter(run=running, event="node_result_discarded").exists(),
        timeout=20,
        message="the late result to be discarded",
    )
    slow = RunNode.objects.get(run=running, node_id="slow")
    assert (slow.state, slow.output, slow.attempts) == (NodeState.PENDING, None, 1)
    assert RunNode.objects.get(run=running, node_id="after").attempts == 0
    assert Run.objects.get(pk=running.pk).status == RunStatus.PAUSED

    refused = client.post(f"{URL}/weekly/run_now")
    assert (refused.status_code, refused.json()["code"]) == (409, "AUTOMATION_V2_NOT_ACTIVE")

    plain = client.post(f"{URL}/weekly/resume", {}, format="json")
    assert (plain.status_code, plain.json()["resumedRuns"]) == (200, 0)
    assert {Run.objects.get(pk=r.pk).status for r in (running, queued)} == {RunStatus.PAUSED}

    response = client.post(f"{URL}/weekly/resume", {"resume_runs": True}, format="json")

    assert (response.status_code, response.json()["resumedRuns"]) == (200, 2)
    for run in (running, queued):
        finished = _wait_status(run, RunStatus.COMPLETED)
        assert finished.resume_reason == "automation resumed"
    assert RunNode.objects.get(run=running, node_id="slow").attempts == 2
    assert RunNode.objects.get(run=queued, node_id="slow").attempts == 1
    assert Run.objects.get(pk=awaiting.pk).status == RunStatus.AWAITING_APPROVAL
    assert (len(audit(PAUSED)), len(audit(RESUMED))) == (1, 2)


@pytest.mark.django_db
def test_engine_holds_a_queued_run_of_a_paused_automation(actor, scheduled):
    """A run queued while its automation is paused (e.g. by an approval) is not executed: the
    engine pauses it like the automation pause, and `resume_runs` brings it back."""
    automation = new_automation(actor)
    (run,) = queued_runs(actor, automation, 1)
    Automation.objects.filter(pk=automation.pk).update(status="paused")
    engine.run_advance(run.run_id)
    run.refresh_from_db()
    assert (run.status, run.stop_kind) == (RunStatus.PAUSED, StopKind.AUTOMATION_PAUSED)
    assert run.started_at is None
    automation_resume(
        actor=actor, automation=Automation.objects.get(pk=automation.pk), resume_runs=True
    )
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
