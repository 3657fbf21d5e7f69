"""Deciding a gate from the admin console: the gate page's decision form and the view it posts to.

The admin is one more surface of the one decision service (SPEC §9). The form posts to
`<gate id>/decide/`; the view calls `approvals.decisions.gate_decide` as
`Actor.for_admin(user, workspace)` (source `admin`) naming the opening the page showed, so the
service judges exactly as for the API (humans only, review permission, self-approval, reviewer
authority and clearances) and audits a refusal like any other. Before anyone clicks, the page
shows what the user may take (`approvals.eligibility.gate_eligibility`, read-only) with the
refused decisions' buttons disabled; the outcome or the refusal comes back as an admin message,
never an error page. A closed opening (decided, expired, superseded) shows who decided it, where
and when, and offers no form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import quote
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from approvals.decisions import gate_decide
from approvals.eligibility import gate_eligibility
from approvals.models import Gate, GateDecision, GateStatus
from approvals.pages.forms import DecisionForm
from approvals.pages.gate_view import OUTCOME_LABELS
from approvals.pages.views import OUTCOME_VERBS
from approvals.quorum import recorded_message
from governance.actors import Actor
from governance.admin_actions import AdminAction, admin_call


class AdminDecisionForm(DecisionForm):
    """The approval page's form (offered decisions only, a reason required for rework) without
    its hidden gate id: here the URL names the opening."""

    approval_request_id = None


def _decide(actor: Actor, gate: Gate, *, decision: str, reason: str) -> str:
    outcome = gate_decide(
        actor=actor,
        run=gate.run,
        decision=decision,
        reason=reason,
        approval_request_id=gate.pk,
        source="admin",
    )
    if not outcome.settled:
        return recorded_message(outcome.gate.quorum)
    return OUTCOME_VERBS[outcome.decision]


DECIDE = AdminAction("Decide", _decide)


def settling_record(gate: Gate) -> GateDecision | None:
    """The entry that settled this opening (who, where, when), if one did."""
    return GateDecision.objects.filter(gate=gate, settles=True).select_related("decided_by").first()


def decision_context(request: HttpRequest, gate: Gate) -> dict[str, Any]:
    """The gate page's decision panel: eligibility and the form for an open opening; for a
    closed one, the decision that settled it and the gate's next opening if it reopened."""
    actor = Actor.for_admin(request.user, gate.workspace)
    eligibility = gate_eligibility(actor=actor, gate=gate, run=gate.run)
    closed = gate.status != GateStatus.OPEN
    record = settling_record(gate) if closed else None
    newer = (
        Gate.objects.filter(run=gate.run_id, status=GateStatus.OPEN).exclude(pk=gate.pk).first()
        if closed
        else None
    )
    return {
        "eligibility": eligibility,
        "decision_form": None
        if eligibility.closed
        else AdminDecisionForm(decisions=gate.decisions),
        "decide_url": reverse("admin:approvals_gate_decide", args=[quote(gate.pk)]),
        "record": record,
        "outcome": OUTCOME_LABELS.get(record.decision, record.decision) if record else None,
        "newer_gate": newer,
    }


def decide_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST one decision on the gate `object_id` (404 outside the user's workspaces) and go back
    to its page, which shows the result as a message."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    gate = model_admin.get_object(request, object_id)
    form = AdminDecisionForm(request.POST, decisions=gate.decisions)
    if not form.is_valid():
        problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
        model_admin.message_user(request, f"Gate {gate}: {problems}", level=messages.ERROR)
    else:
        decided = admin_call(
            model_admin,
            request,
            gate,
            gate.workspace,
            DECIDE,
            decision=form.cleaned_data["decision"],
            reason=form.cleaned_data["reason"],
        )
        if not decided:
            _name_the_winner(model_admin, request, gate)
    return HttpResponseRedirect(reverse("admin:approvals_gate_change", args=[quote(gate.pk)]))


def _name_the_winner(model_admin, request: HttpRequest, gate: Gate) -> None:
    """After a refusal, say who settled the opening if someone did (a lost race, a stale page)."""
    record = settling_record(gate)
    if record is None:
        return
    who = record.decided_by.username if record.decided_by else "the system"
    when = date_format(timezone.localtime(record.decided_at), "DATETIME_FORMAT")
    label = OUTCOME_LABELS.get(record.decision, record.get_decision_display())
    model_admin.message_user(
        request,
        f"Gate {gate}: {label} by {who} via {record.get_source_display()} at {when}.",
        level=messages.WARNING,
    )
