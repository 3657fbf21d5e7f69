"""Fencing edge cases of `node_result_accept` that need no worker."""

from __future__ import annotations

import pytest

from automations.engine import node_result_accept
from automations.models import LifecycleEvent, Run, RunStatus
from tests.automations.test_api import URL, create


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
