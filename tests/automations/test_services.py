"""Automation services called directly: id rules, what an update writes, deletes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import signals
from approvals.models import Gate, GateStatus
from automations import scheduling, services
from automations.engine import node_result_accept
from automations.models import (
    Automation,
    LifecycleEvent,
    NodeState,
    Run,
    RunNode,
    RunStatus,
    StopKind,
)
from governance.errors import AutomationNotFound, InvalidRequest
from governance.models import AuditEvent
from tests.factories import (
    actor_for,
    gate_row,
    make_running,
    new_automation,
    queued_runs,
    set_status,
)
from tests.factories import automation_body as body
from tests.factories import create_automation as create


@pytest.mark.django_db
class TestIds:
    @pytest.mark.parametrize("bad_id", ["weekly\n", "weekly\r\n", "a\x00b", "runs", " weekly"])
    def test_ids_must_match_the_whole_pattern(self, operator, bad_id):
        with pytest.raises(InvalidRequest):
            services.automation_create(actor=actor_for(operator), data=body(automation_id=bad_id))
        assert not Automation.objects.exists()


@pytest.mark.django_db
class TestUpdate:
    def test_writes_only_the_changed_columns(self, operator):
        create(operator, automation_id="weekly")
        automation = Automation.objects.select_related("created_by", "workspace").get()
        with CaptureQueriesContext(connection) as queries:
            services.automation_update(
                actor=actor_for(operator), automation=automation, data={"name": "Renamed"}
            )
        (update,) = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "automations_')]
        assert '"name"' in update and '"version"' in update and '"updated_at"' in update
        assert '"flow"' not in update and '"status"' not in update

    def test_spec_changes_rewrite_the_normalised_spec(self, operator):
        create(operator, automation_id="weekly")
        automation = Automation.objects.select_related("created_by", "workspace").get()
        updated = services.automation_update(
            actor=actor_for(operator), automation=automation, data={"execution": {}}
        )
        assert updated.version == 2
        assert Automation.objects.get().execution == {"max_parallel": 1}

    def test_update_of_a_concurrently_deleted_automation_is_not_found(self, operator):
        create(operator, automation_id="weekly")
        stale = Automation.objects.select_related("created_by", "workspace").get()
        services.automation_delete(actor=actor_for(operator), automation=stale)
        with pytest.raises(AutomationNotFound):
            services.automation_update(
                actor=actor_for(operator), automation=stale, data={"name": "Late"}
            )
        with pytest.raises(AutomationNotFound):
            services.automation_delete(actor=actor_for(operator), automation=stale)
        assert Automation.objects.get().name == "Weekly report"


@pytest.mark.django_db
class TestDeleteCancelsLiveRuns:
    """A deleted automation's runs answer 404, so the delete cancels the live ones itself."""

    @pytest.fixture
    def after_commit(self, monkeypatch) -> dict[str, list[str]]:
        """Task ids revoked and gates whose cards are updated after commit (not broadcast)."""
        seen: dict[str, list[str]] = {"revoked": [], "gates": []}
        monkeypatch.setattr(scheduling, "revoke_now", seen["revoked"].extend)

        def closed(gate_id, outcome, **kwargs):
            seen["gates"].append(gate_id)
            assert outcome == signals.SUPERSEDED

        signals.gate_closed.connect(closed, weak=False)
        yield seen
        signals.gate_closed.disconnect(closed)

    def test_live_runs_are_cancelled_their_gate_superseded_and_finished_runs_left_alone(
        self, operator, after_commit, django_capture_on_commit_callbacks
    ):
        actor = actor_for(operator)
        automation = new_automation(actor)
        queued, running, paused, awaiting, completed = queued_runs(actor, automation, 5)
        node = make_running(running)
        set_status(paused, RunStatus.PAUSED)
        set_status(awaiting, RunStatus.AWAITING_APPROVAL)
        gate = gate_row(awaiting)
        set_status(completed, RunStatus.COMPLETED)
        before = dict(Run.objects.values_list("pk", "version"))

        with django_capture_on_commit_callbacks(execute=True):
            services.automation_delete(actor=actor, automation=automation)

        for run in (queued, running, paused, awaiting):
            row = Run.objects.get(pk=run.pk)
            assert row.status == RunStatus.CANCELLED
            assert row.stop_kind == StopKind.OPERATOR_STOPPED
            assert row.detail == row.stop_reason == services.AUTOMATION_DELETED_REASON
            assert row.finished_at is not None and row.lease_owner == ""
            assert row.version == before[run.pk] + 1
            event = LifecycleEvent.objects.get(run=run, event="run_stopped")
            assert event.stop_kind == StopKind.OPERATOR_STOPPED
            assert event.metadata["automation_deleted"] is True
        assert LifecycleEvent.objects.get(run=running, event="run_stopped").metadata[
            "fenced_nodes"
        ] == ["draft"]
        assert LifecycleEvent.objects.get(run=awaiting, event="run_stopped").metadata[
            "superseded_gates"
        ] == [gate.pk]
        fenced = RunNode.objects.get(pk=node.pk)
        assert (fenced.state, fenced.attempt_token, fenced.task_id) == (NodeState.PENDING, None, "")
        gate.refresh_from_db()
        assert gate.status == GateStatus.SUPERSEDED and gate.closed_at is not None
        untouched = Run.objects.get(pk=completed.pk)
        assert (untouched.status, untouched.version) == (RunStatus.COMPLETED, before[completed.pk])
        assert not LifecycleEvent.objects.filter(run=completed, event="run_stopped").exists()
        assert after_commit == {"revoked": [node.task_id], "gates": [gate.pk]}
        event = AuditEvent.objects.get(event_type="automation.deleted")
        assert event.payload == {"automationID": "weekly", "version": 2, "cancelledRuns": 4}

    def test_a_node_result_arriving_after_the_delete_is_discarded(self, operator, after_commit):
        actor = actor_for(operator)
        automation = new_automation(actor)
        (run,) = queued_runs(actor, automation, 1)
        node = make_running(run)
        services.automation_delete(actor=actor, automation=automation)
        accepted = node_result_accept(
            run.run_id,
            "draft",
            str(node.attempt_token),
            output={"status": "completed"},
            failure=None,
        )
        assert accepted is False
        assert RunNode.objects.get(pk=node.pk).output is None
        assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
        assert LifecycleEvent.objects.filter(run=run, event="node_result_discarded").exists()

    @pytest.mark.parametrize("count", [3, 30])
    def test_the_delete_takes_the_same_queries_whatever_the_number_of_runs(
        self, operator, after_commit, count, django_assert_max_num_queries
    ):
        actor = actor_for(operator)
        automation = new_automation(actor)
        runs = queued_runs(actor, automation, count)
        for run in runs[::3]:
            make_running(run)
        for run in runs[1::3]:
            set_status(run, RunStatus.AWAITING_APPROVAL)
            gate_row(run)
        # Authorise, lock and update the automation, then the run, node and gate statements,
        # the run and gate events (read the runs, insert, read the webhook endpoints; insert and
        # read the endpoints again), the lifecycle INSERT and the audit event: 18 for 3 runs
        # and for 30.
        with django_assert_max_num_queries(18):
            services.automation_delete(actor=actor, automation=automation)
        assert set(Run.objects.values_list("status", flat=True)) == {RunStatus.CANCELLED}
        assert Gate.objects.filter(status=GateStatus.SUPERSEDED).count() == len(runs[1::3])
        assert LifecycleEvent.objects.filter(event="run_stopped").count() == count
