"""Approval requests: a principal (an agent built anywhere) asks humans to approve an action.

Design (issue 18): a request is not a second kind of approval. It is backed by a run of the
workspace's approval-requests automation (`APPROVAL_REQUESTS_AUTOMATION_ID`, made on demand,
owned by a service principal that never signs in, hidden from the automation list) whose
snapshot, made for the request, is one approval node carrying the request's summary, context
text, policy and expiry. The engine opens that node's gate in the request's own transaction
(`automations.engine.run_advance`), so the request is decided by the one decision service
(`approvals.decisions.gate_decide`) on every surface, with its policy, separation of duties,
audit, pages, pending list, chat cards and expiry. `ApprovalRequest` adds what a gate lacks.

Separation of duties: the run's requester is the requesting principal, and its
`requester_grantors` are the humans accountable for it — for an agent or service, everyone who
granted it anything on the workspace's automations — so neither may approve (a request is always
consequential, `approvals.request_policy`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from approvals import request_events
from approvals.decisions import gate_decide
from approvals.models import ApprovalRequest, Gate
from approvals.request_answers import REQUEST_TRIGGER, judge
from approvals.request_automation import SYSTEM_USERNAME, accountable_grantors, requests_automation
from approvals.request_json import PENDING, request_status
from approvals.request_policy import effective_policy, parse_request_policy
from approvals.selectors import request_get
from approvals.standing import standing_apply, standing_covering
from automations.engine import run_advance
from automations.flow import gate_config
from automations.models import Automation
from automations.services import run_create
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import InvalidFlow, InvalidRequest
from governance.json_schemas import schema_problem, violations
from governance.policy import WorkspaceAction, authorize_workspace

NODE_ID = "approval"
MAX_WAIT_S = 60
# Longest sleep between two reads of a long poll when no wake-up arrives (no Redis, or a lost
# message): bounds how late a waiter notices.
POLL_S = 1.0


@dataclass(frozen=True)
class Terms:
    """A validated request body."""

    action: str
    arguments: dict[str, Any]
    summary: str
    context: dict[str, Any]
    policy: dict[str, Any]
    expiry: dict[str, Any] | None
    response_schema: dict[str, Any] | None
    editable: dict[str, Any] | None


def request_create(*, actor: Actor, data: Mapping[str, Any]) -> ApprovalRequest:
    """Open an approval request for `actor` (who needs the workspace's `request_approval`
    right, 403 audited otherwise). `data` is the API body, its shapes checked by the input
    serializer; everything else is checked here (400 with every field's problems).

    One transaction: the approval-requests automation (made if missing, its row locked as any
    run start locks it), the run with the request's snapshot, the gate the engine opens for it,
    the request row and the audit event `approvals.request.created`, and — when one of the
    actor's standing approvals covers it (`approvals.standing`) — its approval; `gate_opened`
    (chat cards) and the request's events follow the commit.
    """
    authorize_workspace(actor, WorkspaceAction.REQUEST_APPROVAL)
    terms = _terms(data)
    node = _approval_node(terms)
    covering = standing_covering(actor=actor, action=terms.action, arguments=terms.arguments)
    with transaction.atomic():
        automation = requests_automation(actor)
        run = run_create(
            actor=actor,
            locked=automation,
            trigger_type=REQUEST_TRIGGER,
            inputs={
                "action": terms.action,
                "arguments": terms.arguments,
                "summary": terms.summary,
                "context": terms.context,
            },
            snapshot=_snapshot(automation, node),
            requester_grantors=[] if actor.is_human else accountable_grantors(actor),
        )
        run_advance(run.run_id)  # parks the run on the request's gate (same transaction)
        gate = Gate.objects.get(run=run, node_id=NODE_ID)
        request = ApprovalRequest.objects.create(
            id=f"req-{uuid.uuid4().hex}",
            workspace=actor.workspace,
            run=run,
            gate=gate,
            requested_by=actor.user,
            action=terms.action,
            arguments=terms.arguments,
            summary=terms.summary,
            context=terms.context,
            policy=terms.policy,
            response_schema=terms.response_schema,
            editable=terms.editable,
        )
        audit_record(
            workspace=actor.workspace,
            event_type="approvals.request.created",
            actor=actor,
            payload={
                "requestID": request.pk,
                "runID": run.run_id,
                "gateID": gate.pk,
                "action": terms.action,
                "policy": gate.policy,
                "reviewedDigest": gate.reviewed_digest,
            },
        )
        request_events.request_event(request_events.CREATED, request)
        standing_apply(actor=actor, request=request, gate=gate, covering=covering)
    return request_get(actor, request.pk)


def request_decide(
    *,
    actor: Actor,
    request: ApprovalRequest,
    decision: str,
    reason: str | None = None,
    arguments: Any = None,
    response: Any = None,
    source: str = "api",
) -> ApprovalRequest:
    """Decide `request` through `gate_decide` (every check of a gate decision applies; the
    approval records the approved arguments). Edits and the response are judged first, outside
    any transaction, so a malformed one is refused (400) with nothing written; the decision
    service judges them again under the run's lock."""
    judge(
        request,
        decision=(decision or "").strip().lower(),
        gate_policy=request.gate.policy,
        arguments=arguments,
        response=response,
    )
    gate_decide(
        actor=actor,
        run=request.run,
        decision=decision,
        reason=reason,
        approval_request_id=request.gate_id,
        source=source,
        arguments=arguments,
        response=response,
    )
    return request_get(actor, request.pk)


def request_wait(*, actor: Actor, request_id: str, timeout: float) -> ApprovalRequest:
    """The request once it is no longer pending, or as it is after `timeout` seconds (at most
    `MAX_WAIT_S`). Every read is a fresh autocommit query (no transaction is held while
    waiting); between reads the caller sleeps on the gate's wake-up channel
    (`approvals.request_events`), which a decision's commit in any process ends at once."""
    request = request_get(actor, request_id)
    deadline = time.monotonic() + min(max(timeout, 0.0), MAX_WAIT_S)
    if request_status(request) != PENDING or timeout <= 0:
        return request
    with request_events.gate_closing(request.gate_id) as wakeup:
        while True:
            request = request_get(actor, request_id)
            remaining = deadline - time.monotonic()
            if request_status(request) != PENDING or remaining <= 0:
                return request
            wakeup.wait(min(remaining, POLL_S))


# --- helpers ------------------------------------------------------------------------------------


def _snapshot(automation: Automation, node: dict[str, Any]) -> dict[str, Any]:
    """The run's snapshot: the automation with the request's approval node as its flow."""
    return {
        "automation_id": automation.automation_id,
        "name": automation.name,
        "version": automation.version,
        "flow": {"nodes": [node]},
        "agents": [],
        "execution": {},
        "workspace_root": "",
        "handoff_config": None,
        "input_schema": None,
        "created_by": SYSTEM_USERNAME,
        "changed_by_id": None,
    }


def _approval_node(terms: Terms) -> dict[str, Any]:
    """The request's approval node; its gate is checked with the flow's own gate parser (the
    expiry's problems become 400 field errors under `expiry`)."""
    gate: dict[str, Any] = {
        "decisions": ["approve", "rework", "cancel"],
        "instructions": terms.context.get("text") or "",
        "policy": effective_policy(terms.policy, terms.arguments),
    }
    if terms.expiry is not None:
        gate["expiry"] = terms.expiry
    node = {
        "node_id": NODE_ID,
        "kind": "approval",
        "objective": terms.summary,
        "metadata": {"builder": {"title": terms.summary}},
        "gate": gate,
    }
    try:
        gate_config(node)
    except InvalidFlow as exc:
        fields: dict[str, list[str]] = {}
        for error in exc.extra.get("errors") or ():
            fields.setdefault(error["field"].removeprefix("gate."), []).append(error["message"])
        raise InvalidRequest("Invalid approval request", fields=fields) from None
    return node


def _terms(data: Mapping[str, Any]) -> Terms:
    fields: dict[str, list[str]] = {}

    def report(field: str, message: str) -> None:
        fields.setdefault(field, []).append(message)

    policy = parse_request_policy(data.get("policy"), report)
    response_schema = data.get("response_schema")
    if response_schema is not None:
        problem = schema_problem(response_schema)
        if problem is not None:
            report("response_schema", problem)
        if policy.get("quorum"):
            # Each approver of a quorum would answer; the answers could differ and no single
            # one is the request's. Ask one person, or ask in the context instead.
            report(
                "response_schema",
                "a request that needs several approvals (policy.quorum) cannot ask for a "
                "response: whose answer would it be?",
            )
    editable = _editable(data.get("editable"), data["arguments"], report)
    if fields:
        raise InvalidRequest("Invalid approval request", fields=fields)
    return Terms(
        action=data["action"],
        arguments=data["arguments"],
        summary=data["summary"].strip(),
        context=data.get("context") or {},
        policy=policy,
        expiry=data.get("expiry"),
        response_schema=response_schema,
        editable=editable,
    )


def _editable(value: Any, arguments: dict[str, Any], report) -> dict[str, Any] | None:
    """`{paths, schema}`: dotted paths (at least one) and an optional JSON Schema the proposed
    arguments must already satisfy."""
    if value is None:
        return None
    paths, schema = value.get("paths"), value.get("schema")
    for path in paths:
        if any(not part for part in path.split(".")):
            report("editable.paths", f"{path!r} is not a dotted path")
    if schema is not None:
        problem = schema_problem(schema)
        if problem is not None:
            report("editable.schema", problem)
            return None
        for where, messages in violations(schema, arguments, "arguments").items():
            report("editable.schema", f"the proposed {where} violates it: {'; '.join(messages)}")
    return {"paths": list(paths), "schema": schema}
