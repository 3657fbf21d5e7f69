"""The run state machine (`automations.runs`): one table lists every status change, and the one
primitive refuses every (cause, status) pair the table does not list, for one run and for a
set of runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import timezone

from automations.models import TERMINAL_STATUSES, Automation, Run, RunStatus
from automations.runs import state
from automations.runs.transitions import TRANSITIONS, Cause
from automations.services import automation_create, run_start
from governance.actors import Actor
from governance.errors import Conflict
from governance.models import Membership, WorkspaceEvent

PAIRS = [(cause, status) for cause in Cause for status in RunStatus]
ROOT = Path(__file__).resolve().parents[2]


def test_every_cause_has_one_row():
    assert set(TRANSITIONS) == set(Cause)
    assert all(row.sources <= set(RunStatus) for row in TRANSITIONS.values())


@pytest.mark.django_db
@pytest.mark.parametrize(("cause", "status"), PAIRS, ids=[f"{c}-{s}" for c, s in PAIRS])
def test_run_move_follows_the_table(cause, status, workspace):
    run = Run(
        run_id="run-x",
        status=status,
        lease_owner="w:1",
        pause_reason="p",
        workspace=workspace,
        automation=Automation(automation_id="weekly"),
    )
    now = timezone.now()
    row = TRANSITIONS[cause]
    if status not in row.sources:
        with pytest.raises(Conflict) as refused:
            state.run_move(run, cause, now=now)
        assert refused.value.code == row.code
        assert refused.value.extra["runID"] == "run-x"
        assert run.status == status  # nothing changed
        assert not WorkspaceEvent.objects.exists()
        return
    assert state.run_move(run, cause, now=now) == status
    assert run.status == row.target
    # The move records its domain event (a first claim is `run.started`), nothing else does.
    recorded = [(e.event_type, e.data["status"]) for e in WorkspaceEvent.objects.all()]
    expected = state.RUN_EVENTS.get(cause)
    assert recorded == ([(expected, row.target)] if expected else [])
    # The fields every change to the target implies.
    assert (run.lease_owner == "") == (row.target != RunStatus.RUNNING)
    if row.target == RunStatus.QUEUED:
        assert (run.pause_reason, run.finished_at) == ("", None)
    if row.target in TERMINAL_STATUSES:
        assert run.finished_at == now


@pytest.fixture
def runs(operator):
    """One run in every status, of one automation (the set-based move's input)."""
    membership = Membership.objects.select_related("user", "workspace__organization").get(
        user=operator.user, workspace=operator.workspace
    )
    actor = Actor.for_member(membership)
    automation = automation_create(
        actor=actor,
        data={
            "automation_id": "states",
            "name": "States",
            "agents": [{"agent_id": "w", "template_id": "t", "model_policy": {"provider": "echo"}}],
            "flow": {"nodes": [{"node_id": "a", "kind": "agent", "agent_id": "w"}]},
        },
    )
    made = {}
    for status in RunStatus:
        run = run_start(actor=actor, automation=automation)
        Run.objects.filter(pk=run.pk).update(status=status)
        made[status] = run.pk
    return made


@pytest.mark.django_db
@pytest.mark.parametrize("cause", list(Cause))
def test_runs_move_moves_only_runs_in_a_source_status(runs, cause):
    row = TRANSITIONS[cause]
    moved = state.runs_move(list(runs.values()), cause, now=timezone.now())
    assert moved == len(row.sources)
    after = dict(Run.objects.filter(pk__in=runs.values()).values_list("pk", "status"))
    for status, pk in runs.items():
        assert after[pk] == (row.target if status in row.sources else status)


# Writes of a run's status: an attribute assignment of a RunStatus, or status= in an update().
STATUS_WRITE = re.compile(r"\.status\s*=\s*RunStatus\.|\.update\([^)]*\bstatus\s*=")


def test_only_the_state_module_writes_run_status():
    """A new `run.status = ...` or `.update(status=...)` outside `automations/runs/state.py`
    would bypass the table: this scan fails on it."""
    offenders = []
    for app in ("automations", "approvals", "channels", "governance", "config"):
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts or path == ROOT / "automations/runs/state.py":
                continue
            text = path.read_text()
            for match in STATUS_WRITE.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                snippet = text[match.start() : text.find("\n", match.start())]
                if "Run" in snippet or "RunStatus" in snippet or "run" in path.name:
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: {snippet.strip()}")
    assert offenders == []
