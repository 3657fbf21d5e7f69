"""Fencing edge cases of `node_result_accept` that need no worker."""

from __future__ import annotations

import pytest

from automations.engine import node_result_accept
from automations.models import LifecycleEvent, Run, RunStatus
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import create_automation as create


@pytest.mark.django_db
def test_result_for_a_node_no_longer_in_the_flow_is_discarded(operator):
    create(operator, automation_id="weekly")
    run_id = operator.client().post(f"{URL}/weekly/run_now").json()["run"]["run_id"]
    Run.objects.filter(run_id=run_id).update(status=RunStatus.RUNNING)
    accepted = node_result_accept(
        run_id, "removed-node", "0" * 32, output={"status": "completed"}, failure=None
    )
    assert accepted is False
    event = LifecycleEvent.objects.get(run__run_id=run_id, event="node_result_discarded")
    assert event.reason == "node no longer in the flow"
    assert Run.objects.get(run_id=run_id).status == RunStatus.RUNNING


@pytest.mark.django_db
def test_stale_sweep_resends_attempts_that_never_started(
    operator, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """A node message stuck in a busy broker is not a stalled provider: the run is not paused,
    the attempt is re-sent under a fresh token (the old message will no longer claim it)."""
    from datetime import timedelta

    from django.utils import timezone

    from automations import scheduling
    from automations.models import NodeState, RunNode
    from automations.runs import sweeps

    sent = []
    monkeypatch.setattr(scheduling, "dispatch_now", sent.append)
    create(operator, automation_id="weekly")
    run_id = operator.client().post(f"{URL}/weekly/run_now").json()["run"]["run_id"]
    old = timezone.now() - timedelta(seconds=settings.FLOWGATE_STALE_AFTER_S + 5)
    Run.objects.filter(run_id=run_id).update(status=RunStatus.RUNNING, heartbeat_at=old)
    RunNode.objects.filter(run__run_id=run_id, node_id="draft").update(
        state=NodeState.RUNNING, attempts=1, attempt_token="1" * 32, task_id="t-old"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert sweeps.sweep_stale_runs() == [run_id]
    run = Run.objects.get(run_id=run_id)
    assert run.status == RunStatus.RUNNING
    assert run.heartbeat_at > old
    node = RunNode.objects.get(run=run, node_id="draft")
    assert node.state == NodeState.RUNNING and node.attempts == 1
    assert str(node.attempt_token) != "1" * 32
    assert [(a[1], a[2]) for a in sent] == [("draft", str(node.attempt_token))]
    assert LifecycleEvent.objects.filter(run=run, event="run_work_resent").exists()


@pytest.mark.django_db
def test_stale_sweep_reaps_a_run_whose_node_started_and_went_silent(operator, settings):
    """Its only attempt is used up (the flow has no retry), so the run fails, stale-reaped."""
    from datetime import timedelta

    from django.utils import timezone

    from automations.models import NodeState, RunNode
    from automations.runs import sweeps

    create(operator, automation_id="weekly")
    run_id = operator.client().post(f"{URL}/weekly/run_now").json()["run"]["run_id"]
    old = timezone.now() - timedelta(seconds=settings.FLOWGATE_STALE_AFTER_S + 5)
    Run.objects.filter(run_id=run_id).update(status=RunStatus.RUNNING, heartbeat_at=old)
    RunNode.objects.filter(run__run_id=run_id, node_id="draft").update(
        state=NodeState.RUNNING, attempts=1, attempt_token="1" * 32, started_at=old
    )
    sweeps.sweep_stale_runs()
    run = Run.objects.get(run_id=run_id)
    assert (run.status, run.stop_kind) == (RunStatus.FAILED, "stale_reaped")
    assert run.last_failure["failure_kind"] == "stale_no_provider_activity"


@pytest.mark.django_db
def test_heartbeat_of_a_fenced_attempt_refreshes_nothing(operator):
    """Paused, resumed and restarted under a new token: the old attempt (still executing
    somewhere) no longer keeps the run alive; only the new attempt's heartbeat counts."""
    from datetime import timedelta

    from automations.engine import attempt_heartbeat, run_advance
    from automations.models import RunNode

    create(operator, automation_id="weekly")
    run_id = operator.client().post(f"{URL}/weekly/run_now").json()["run"]["run_id"]
    run_advance(run_id)
    run = Run.objects.get(run_id=run_id)
    old_token = str(RunNode.objects.get(run=run, node_id="draft").attempt_token)
    assert attempt_heartbeat(run.pk, old_token) is True

    client = operator.client()
    assert client.post(f"{URL}/runs/{run_id}/pause").status_code == 200
    assert attempt_heartbeat(run.pk, old_token) is False
    assert client.post(f"{URL}/runs/{run_id}/resume").status_code == 200
    run_advance(run_id)
    new_token = str(RunNode.objects.get(run=run, node_id="draft").attempt_token)
    assert new_token not in (old_token, "None")

    stale = Run.objects.get(pk=run.pk).heartbeat_at - timedelta(hours=1)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=stale)
    assert attempt_heartbeat(run.pk, old_token) is False
    assert Run.objects.get(pk=run.pk).heartbeat_at == stale
    assert attempt_heartbeat(run.pk, new_token) is True
    assert Run.objects.get(pk=run.pk).heartbeat_at > stale
