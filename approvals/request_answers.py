"""What a decision on an approval request's gate adds to a gate decision: the approved
arguments (edited or as proposed), the diff, the validated form answer and the policy the
reviewer is judged by.

`gate_decide` asks `request_answer` for it under the run's lock when the run backs a request
(`REQUEST_TRIGGER`), judges the actor by `Answer.policy` instead of the gate's own (an edit may
have made the action stricter, `approvals.request_policy`), records `Answer.metadata` on the
decision and its audit event, and calls `Answer.settle` in the decision's transaction. The API
calls `judge` first, outside any transaction, so a malformed edit or answer is refused with
nothing written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from approvals import request_events
from approvals.models import ApprovalRequest, Gate, GateDecision
from approvals.policy import GatePolicy
from approvals.request_edits import NOT_EDITABLE, apply_edits
from approvals.request_policy import judged_policy
from governance.errors import InvalidRequest
from governance.json_schemas import violations

# `Run.trigger_type` of the runs that back approval requests.
REQUEST_TRIGGER = "approval_request"
ANSWER_NOT_ALLOWED = "APPROVAL_REQUEST_ANSWER_NOT_ALLOWED"
RESPONSE_INVALID = "APPROVAL_REQUEST_RESPONSE_INVALID"


def canonical_digest(value: Any) -> str:
    """SHA-256 of `value` in canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    """A judged decision on a request: what it approves and under which policy."""

    request: ApprovalRequest
    decision: str
    policy: GatePolicy
    approved_arguments: dict[str, Any] | None = None
    diff: list[dict[str, Any]] = field(default_factory=list)
    response: Any = None

    def digest(self, gate: Gate) -> str:
        """Binds the decision to what was reviewed and exactly what it approves."""
        return canonical_digest(
            {
                "reviewed_digest": gate.reviewed_digest,
                "decision": self.decision,
                "approved_arguments": self.approved_arguments,
                "response": self.response,
            }
        )

    def metadata(self, gate: Gate) -> dict[str, Any]:
        """Recorded on the decision and (camel-cased by the caller) in its audit event."""
        return {
            "approval_request": self.request.pk,
            "action": self.request.action,
            "edited": bool(self.diff),
            "diff": self.diff,
            "proposed_arguments_digest": canonical_digest(self.request.arguments),
            "approved_arguments_digest": (
                None
                if self.approved_arguments is None
                else canonical_digest(self.approved_arguments)
            ),
            "decision_digest": self.digest(gate),
        }

    def settle(self, record: GateDecision) -> None:
        """Write the outcome on the request row (the caller's transaction, run lock held)."""
        ApprovalRequest.objects.filter(pk=self.request.pk).update(
            decision=record,
            approved_arguments=self.approved_arguments,
            diff=self.diff,
            response=self.response,
        )
        request_events.request_event(
            request_events.DECIDED,
            self.request,
            decision=self.decision,
            edited=bool(self.diff),
        )


def judge(
    request: ApprovalRequest, *, decision: str, gate_policy: dict, arguments: Any, response: Any
) -> Answer:
    """The answer to `request` for `decision` (approve, rework or cancel), or 400.

    Edits and a response go with `approve` only. An approval gets the edited (else the
    proposed) arguments, validated against the editable paths and schema, and — when the
    request has a `response_schema` — a response that satisfies it.
    """
    if decision != "approve":
        if arguments is not None or response is not None:
            raise InvalidRequest(
                "Edited arguments and a response go with an approval only",
                code=ANSWER_NOT_ALLOWED,
            )
        return Answer(request=request, decision=decision, policy=GatePolicy.of(gate_policy))
    approved, changes = apply_edits(
        proposed=request.arguments, edits=arguments, editable=request.editable
    )
    if changes and (request.policy or {}).get("quorum"):
        # Every approval of a quorum must be of the same arguments; an edit by one approver
        # would be an approval nobody else gave. Send it back with the change instead.
        raise InvalidRequest(
            "A request that needs several approvals cannot be approved with edits: every "
            "approver must approve the same arguments (send it back with the change instead)",
            code=NOT_EDITABLE,
            fields={"arguments": ["Not editable under a quorum."]},
        )
    schema = request.response_schema
    if schema is None and response is not None:
        raise InvalidRequest(
            "This request asks for no response",
            code=ANSWER_NOT_ALLOWED,
            fields={"response": ["The request has no response_schema."]},
        )
    if schema is not None:
        if response is None:
            raise InvalidRequest(
                "This request needs a response (its response_schema) with the approval",
                code=RESPONSE_INVALID,
                fields={"response": ["Required."]},
            )
        problems = violations(schema, response, "response")
        if problems:
            raise InvalidRequest(
                "The response does not satisfy the request's response_schema",
                code=RESPONSE_INVALID,
                fields=problems,
            )
    return Answer(
        request=request,
        decision=decision,
        policy=judged_policy(request.policy, request.arguments, approved),
        approved_arguments=approved,
        diff=changes,
        response=response,
    )


def request_answer(
    *, run, gate: Gate, decision: str, arguments: Any, response: Any
) -> Answer | None:
    """The answer when `run` backs an approval request (one query), else None; 400 when
    edits or a response are given for an ordinary gate or do not fit the request."""
    request = (
        ApprovalRequest.objects.select_related("run").filter(gate=gate).first()
        if run.trigger_type == REQUEST_TRIGGER
        else None
    )
    if request is None:
        if arguments is not None or response is not None:
            raise InvalidRequest(
                "This gate takes no edited arguments or response (only approval requests do)",
                code=ANSWER_NOT_ALLOWED,
            )
        return None
    return judge(
        request, decision=decision, gate_policy=gate.policy, arguments=arguments, response=response
    )
