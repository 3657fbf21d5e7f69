"""Flows for the engine tests against a real worker (tests/automations/test_engine*.py): one
echo agent, agent and sleep nodes, and waiting for a run to settle."""

from __future__ import annotations

from automations.models import Run, RunStatus
from tests.support.wait import wait_for

AGENTS = [
    {
        "agent_id": "writer",
        "template_id": "t1",
        "model_policy": {"provider": "echo", "model": "echo-1"},
    }
]


def agent(node_id, *deps, prompt=None):
    node = {
        "node_id": node_id,
        "kind": "agent",
        "agent_id": "writer",
        "depends_on": list(deps),
        "objective": f"Do {node_id}",
    }
    if prompt:
        node["metadata"] = {"builder": {"prompt": prompt}}
    return node


def sleeper(node_id, *deps, seconds=0.5, **extra):
    """A node of the `sleep` kind (tests/support/nodekinds.py)."""
    return {
        "node_id": node_id,
        "kind": "sleep",
        "depends_on": list(deps),
        "metadata": {"sleep_s": seconds},
        **extra,
    }


def finished(run, timeout=30.0):
    """Wait until `run` is in a status where it no longer moves by itself; return it."""
    terminal = {
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.BLOCKED,
        RunStatus.CANCELLED,
        RunStatus.AWAITING_APPROVAL,
        RunStatus.PAUSED,
    }
    return wait_for(
        lambda: Run.objects.filter(pk=run.pk, status__in=terminal).first(),
        timeout=timeout,
        message=f"run {run.run_id} did not settle",
    )
