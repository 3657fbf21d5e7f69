"""Repair and the task actions on a run: edit a node and reset its subtree, retry/requeue a
node's subtree, continue a blocked node, preview a reset (reference notes §6.2-§6.4).

They go through `automations.runs.control.run_transition` like every operator action.

Node resets follow the reference notes §6: the reset set is the node's descendant subtree
(`flow.graph.descendants`); reset nodes go back to `pending` with their output cleared and,
except for retry/requeue, their attempts too. `cleared_outputs` names the reset nodes that held
an output (Flowgate keeps node outputs in the database, not in files, so these are node ids
rather than the original's file paths).

Repair edits the live automation through `services.automation_apply_change` (validated, new
version) and records one combined audit event, `automation.run.repaired`, whose payload carries
`automationVersion` and `automationChanged`; a repair naming only `node_id` changes no
automation field (no new version) and just resets the subtree. Repair and task retry/requeue
re-snapshot the run from the live automation (reference §6.2, §6.3): node rows of nodes added to
the flow since the run started are created pending, rows of removed nodes are dropped.
Continue accepts only a node with a blocked outcome (state `blocked`, or an output whose status
is `blocked`); the original also counted nodes merely waiting behind an unfinished dependency.
"""

from __future__ import annotations

import copy
from typing import Any

from automations.flow import descendants
from automations.models import Run
from automations.run_spec import RunSpec
from automations.runs.control import (
    RunChange,
    RunControlResult,
    blocked_node_ids,
    live_automation,
    requeue_fields,
    require_node_id,
    require_task_node,
    reset_subtree,
    resnapshot,
    run_transition,
)
from automations.runs.transitions import Cause
from automations.services import automation_apply_change
from governance.actors import Actor
from governance.errors import Conflict, InvalidRequest, NotFound


def run_repair(
    *,
    actor: Actor,
    run: Run,
    node_id: str,
    prompt: str | None = None,
    template_id: str | None = None,
    model_policy: dict[str, Any] | None = None,
    reason: str | None = None,
) -> RunControlResult:
    """Edit a node's prompt and/or its agent's template/model on the automation, reset the
    node's descendant subtree (outputs and attempts) and re-queue the run on the repaired spec.

    Reference notes §6.2. 400 `AUTOMATION_V2_REPAIR_NODE_REQUIRED` before anything is read;
    404 `AUTOMATION_V2_REPAIR_NODE_NOT_FOUND` / `AUTOMATION_V2_REPAIR_AGENT_NOT_FOUND` after the
    status check. The automation edit goes through `automation_apply_change` (validated, new
    version) in the same transaction as the run change.
    """
    node_id = require_node_id(node_id, code="AUTOMATION_V2_REPAIR_NODE_REQUIRED")
    prompt = (prompt or "").strip() or None
    template_id = (template_id or "").strip() or None

    def apply(change: RunChange) -> None:
        automation = change.automation
        flow = copy.deepcopy(automation.flow)
        agents = copy.deepcopy(automation.agents)
        node = next((n for n in flow.get("nodes", []) if n.get("node_id") == node_id), None)
        if node is None:
            raise NotFound(
                "Node not found", code="AUTOMATION_V2_REPAIR_NODE_NOT_FOUND", nodeID=node_id
            )
        previous_prompt = _builder_prompt(node)
        agent_id = node.get("agent_id")
        agent = next((a for a in agents if a.get("agent_id") == agent_id), None)
        previous_agent = copy.deepcopy(agent) if agent is not None else None
        data: dict[str, Any] = {}
        if prompt is not None:
            _set_builder_prompt(node, prompt)
            data["flow"] = flow
        if template_id is not None or model_policy is not None:
            if agent is None:
                raise NotFound(
                    "Node agent not found",
                    code="AUTOMATION_V2_REPAIR_AGENT_NOT_FOUND",
                    agentID=agent_id,
                )
            if template_id is not None:
                agent["template_id"] = template_id
            if model_policy is not None:
                agent["model_policy"] = model_policy
            data["agents"] = agents
        changed = automation_apply_change(locked=automation, data=data, changed_by=actor.user)
        resnapshot(change, automation)
        reset = descendants(change.flow_nodes, [node_id]) & set(change.spec.order)
        cleared = reset_subtree(change, reset, keep_attempts=False)
        change.run.last_failure = None
        requeue_fields(change)
        updated_agent = change.spec.agents.get(agent_id) if agent_id else None
        change.metadata.update(
            {
                "node_id": node_id,
                "reset_nodes": sorted(reset),
                "prompt_updated": prompt is not None,
                "template_updated": template_id is not None,
                "model_policy_updated": model_policy is not None,
                "reset_only": not data,
                "cleared_outputs": cleared,
                "previous_prompt": previous_prompt,
                "new_prompt": prompt,
                "previous_template_id": (previous_agent or {}).get("template_id"),
                "new_template_id": (updated_agent or {}).get("template_id"),
                "previous_model_policy": (previous_agent or {}).get("model_policy"),
                "new_model_policy": (updated_agent or {}).get("model_policy"),
                "automation_version": automation.version,
            }
        )
        change.audit.update(
            {
                "nodeID": node_id,
                "resetNodes": sorted(reset),
                "automationVersion": automation.version,
                "automationChanged": changed,
            }
        )

    return run_transition(
        actor=actor, run=run, action=Cause.REPAIR, reason=reason, node_id=node_id, apply=apply
    )


def _builder_prompt(node: dict[str, Any]) -> str | None:
    metadata = node.get("metadata")
    builder = metadata.get("builder") if isinstance(metadata, dict) else None
    prompt = builder.get("prompt") if isinstance(builder, dict) else None
    return prompt if isinstance(prompt, str) else None


def _set_builder_prompt(node: dict[str, Any], prompt: str) -> None:
    """Set `metadata.builder.prompt`, creating the objects; 400 when one is not an object."""
    if node.get("metadata") is None:
        node["metadata"] = {}
    metadata = node["metadata"]
    if isinstance(metadata, dict) and metadata.get("builder") is None:
        metadata["builder"] = {}
    if not isinstance(metadata, dict) or not isinstance(metadata["builder"], dict):
        raise InvalidRequest(
            "Node metadata is not repairable", code="AUTOMATION_V2_REPAIR_METADATA_INVALID"
        )
    metadata["builder"]["prompt"] = prompt


def run_task_retry(
    *, actor: Actor, run: Run, node_id: str, reason: str | None = None
) -> RunControlResult:
    """Reset a node's descendant subtree (outputs cleared, attempts kept) and re-queue the run
    on the automation's current spec (reference §6.3); lifecycle `run_task_retried`."""
    return _task_reset(
        actor=actor, run=run, node_id=node_id, reason=reason, action=Cause.TASK_RETRY
    )


def run_task_requeue(
    *, actor: Actor, run: Run, node_id: str, reason: str | None = None
) -> RunControlResult:
    """As `run_task_retry`, recorded as `run_task_requeued`."""
    return _task_reset(
        actor=actor, run=run, node_id=node_id, reason=reason, action=Cause.TASK_REQUEUE
    )


def _task_reset(
    *, actor: Actor, run: Run, node_id: str, reason: str | None, action: Cause
) -> RunControlResult:
    node_id = require_node_id(node_id, code="AUTOMATION_V2_TASK_NODE_REQUIRED")

    def apply(change: RunChange) -> None:
        live = live_automation(change.run)
        if live is not None:
            require_task_node(RunSpec.from_snapshot({"flow": live.flow}), node_id)
            resnapshot(change, live)
        else:
            require_task_node(change.spec, node_id)
        reset = sorted(descendants(change.flow_nodes, [node_id]) & set(change.spec.order))
        cleared = reset_subtree(change, reset, keep_attempts=True)
        change.run.last_failure = None
        requeue_fields(change)
        change.metadata.update(
            {
                "node_id": node_id,
                "reset_nodes": reset,
                "cleared_outputs": cleared,
                "automation_version": change.run.automation_snapshot.get("version"),
            }
        )
        change.audit.update({"nodeID": node_id, "resetNodes": reset})
        change.extra.update({"node_id": node_id, "reset_nodes": reset, "cleared_outputs": cleared})

    return run_transition(
        actor=actor, run=run, action=action, reason=reason, node_id=node_id, apply=apply
    )


def run_task_continue(
    *, actor: Actor, run: Run, node_id: str, reason: str | None = None
) -> RunControlResult:
    """Minimal reset of one blocked node (output and attempts cleared) and re-queue the run
    (reference §6.4). 409 `AUTOMATION_V2_TASK_NOT_BLOCKED` when the node has no blocked outcome
    (checked before the node's existence, as the original does)."""
    node_id = require_node_id(node_id, code="AUTOMATION_V2_TASK_NODE_REQUIRED")

    def apply(change: RunChange) -> None:
        run = change.run
        if node_id not in blocked_node_ids(change.nodes.values()):
            raise Conflict(
                "Task is not blocked",
                code="AUTOMATION_V2_TASK_NOT_BLOCKED",
                runID=run.run_id,
                nodeID=node_id,
            )
        require_task_node(change.spec, node_id)
        cleared = reset_subtree(change, [node_id], keep_attempts=False)
        if isinstance(run.last_failure, dict) and run.last_failure.get("node_id") == node_id:
            run.last_failure = None
        requeue_fields(change)
        change.metadata.update(
            {
                "node_id": node_id,
                "reset_nodes": [node_id],
                "cleared_outputs": cleared,
                "mode": "minimal_reset",
            }
        )
        change.audit.update({"nodeID": node_id, "resetNodes": [node_id]})
        change.extra.update({"node_id": node_id, "reset_nodes": [node_id]})

    return run_transition(
        actor=actor,
        run=run,
        action=Cause.TASK_CONTINUE,
        reason=reason,
        node_id=node_id,
        apply=apply,
    )


def run_reset_preview(*, run: Run, node_id: str) -> dict[str, Any]:
    """What a task retry/requeue of `node_id` would reset, without changing anything.

    A read (no lock, no write, no audit): the reset set on the spec a retry would use (the live
    automation, else the run's snapshot) and the reset nodes whose outputs would be cleared.
    `run` must come with its nodes prefetched (`selectors.run_get`).
    """
    node_id = require_node_id(node_id, code="AUTOMATION_V2_TASK_NODE_REQUIRED")
    live = live_automation(run)
    spec = RunSpec.from_snapshot(
        {"flow": live.flow} if live is not None else run.automation_snapshot
    )
    require_task_node(spec, node_id)
    reset = sorted(descendants(spec.nodes.values(), [node_id]) & set(spec.order))
    outputs = {n.node_id for n in run.nodes.all() if n.output is not None}
    return {
        "run_id": run.run_id,
        "node_id": node_id,
        "reset_nodes": reset,
        "cleared_outputs": [n for n in reset if n in outputs],
        "preserves_upstream_outputs": True,
    }
