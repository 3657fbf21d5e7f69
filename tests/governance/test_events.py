"""Domain events (governance.events): recorded in the change's transaction, numbered into a
gap-free feed order only once committed, set-based for set-based moves, and the run and gate
events the state machine and the approvals record."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from approvals.decisions import gate_decide
from automations.automation_control import automation_pause
from automations.models import RunStatus
from automations.runs import control
from governance.events import (
    EventOutsideTransaction,
    event_record,
    events_after,
    events_stamp,
    events_stamp_overdue,
)
from governance.models import WorkspaceEvent
from tests.factories import actor_for, awaiting, basic, make_run, new_automation, queued_runs


def types(workspace_id: int) -> list[str]:
    return [e.event_type for e in events_after(workspace_id=workspace_id, after=0, limit=100)]


@pytest.mark.django_db(transaction=True)
def test_an_event_cannot_be_recorded_outside_the_transaction_of_its_change(workspace):
    with pytest.raises(EventOutsideTransaction):
        event_record(workspace_id=workspace.pk, event_type="run.paused", data={})


@pytest.mark.django_db(transaction=True)
def test_runs_and_gates_record_their_events_in_order(operator, reviewer):
    run = awaiting(actor_for(operator), basic())  # claimed by the engine, parked on its gate
    gate_decide(actor=actor_for(reviewer), run=run, decision="cancel", reason="not now")
    ws = run.workspace_id
    assert types(ws) == ["run.started", "gate.opened", "gate.decided", "run.cancelled"]
    events = events_after(workspace_id=ws, after=0, limit=100)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[3].data == {
        "run_id": run.run_id,
        "automation_id": "basic",
        "status": "cancelled",
        "previous_status": "awaiting_approval",
        "cause": "gate_cancel",
    }
    assert events[2].data["decision"] == "cancel" and events[2].data["reason"] == "not now"
    assert events[1].data["approval_url"].endswith(f"/approvals/{events[1].data['gate_id']}/")


@pytest.mark.django_db(transaction=True)
def test_an_operator_cancel_cancels_the_run_which_supersedes_its_gate(operator):
    run = awaiting(actor_for(operator), basic())
    control.run_cancel(actor=actor_for(operator), run=run, reason="stop")
    assert types(run.workspace_id)[-2:] == ["run.cancelled", "gate.superseded"]


@pytest.mark.django_db(transaction=True)
def test_a_set_based_move_records_one_event_per_run(operator):
    actor = actor_for(operator)
    automation = new_automation(actor)
    runs = queued_runs(actor, automation, 25)
    automation_pause(actor=actor, automation=automation)
    paused = events_after(workspace_id=automation.workspace_id, after=0, limit=100)
    assert [e.event_type for e in paused] == ["run.paused"] * 25
    assert [e.data["run_id"] for e in paused] == [r.run_id for r in runs]
    assert {e.data["cause"] for e in paused} == {"automation_pause"}


@pytest.mark.django_db(transaction=True)
def test_a_reader_never_skips_an_event_that_commits_after_a_later_one(operator):
    """Event A is inserted first but commits last, B inserted later commits first. Numbering at
    insert would give A 1 and B 2: a reader that saw B (2) would move past A for ever. Stamped
    at commit, B is 1 and A is 2, and a reader at 1 still gets A."""
    ws = operator.workspace.pk
    inserted, release = threading.Event(), threading.Event()

    def slow_a() -> None:
        try:
            with transaction.atomic():
                event_record(workspace_id=ws, event_type="run.paused", data={"name": "A"})
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_a)
    thread.start()
    assert inserted.wait(10)
    with transaction.atomic():
        event_record(workspace_id=ws, event_type="run.paused", data={"name": "B"})
    first = events_after(workspace_id=ws, after=0, limit=10)
    assert [(e.seq, e.data["name"]) for e in first] == [(1, "B")]
    release.set()
    thread.join(10)
    later = events_after(workspace_id=ws, after=first[-1].seq, limit=10)
    assert [(e.seq, e.data["name"]) for e in later] == [(2, "A")]
    a, b = WorkspaceEvent.objects.order_by("pk")
    assert (a.data["name"], b.data["name"]) == ("A", "B")  # A was inserted first


@pytest.mark.django_db(transaction=True)
def test_events_whose_stamp_was_lost_are_stamped_by_the_sweep(operator, monkeypatch):
    ws = operator.workspace.pk
    monkeypatch.setattr("governance.events.events_stamp", lambda workspace_id: 1 / 0)
    with transaction.atomic():  # its after-commit stamp fails (logged, never raised)
        event_record(workspace_id=ws, event_type="run.paused", data={})
    monkeypatch.undo()
    assert events_after(workspace_id=ws, after=0, limit=10) == []
    assert events_stamp_overdue() == 0  # within the grace: its own stamp may still come
    WorkspaceEvent.objects.update(created_at="2000-01-01T00:00:00Z")
    assert events_stamp_overdue() == 1
    assert [e.seq for e in events_after(workspace_id=ws, after=0, limit=10)] == [1]
    assert events_stamp(ws) == 0  # nothing left: stamping is idempotent


@pytest.mark.django_db(transaction=True)
def test_only_committed_changes_have_events(operator):
    op = actor_for(operator)
    run = make_run(op, basic(), status=RunStatus.QUEUED)
    with pytest.raises(RuntimeError), transaction.atomic():
        control.run_pause(actor=op, run=run, reason="rolled back")
        raise RuntimeError
    assert not WorkspaceEvent.objects.exists()
