"""Views of the approval pages: thin, reads through selectors, the decision through the service.

A gate of a workspace the reader is not a member of, or of an automation they cannot see,
answers the same 404 as a gate id that does not exist (SPEC §11). GETs never write.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from approvals.decisions import gate_decide
from approvals.eligibility import gate_eligibility
from approvals.models import Gate
from approvals.pages.forms import DecisionForm
from approvals.pages.gate_view import gate_view
from approvals.pages.live import live_status
from approvals.pages.pending import PAGE_SIZE, pending_for_user
from approvals.pages.request_form import RequestAnswerForm, request_of, request_view
from approvals.policy import GatePolicy, approval_barred_by
from governance.actors import Actor
from governance.errors import FlowgateError, Forbidden, NotFound
from governance.models import Membership
from governance.policy import Action, authorize

OUTCOME_VERBS = {"approve": "approved", "rework": "sent back for rework", "cancel": "cancelled"}
# Whole sentences (not "You {verb} this gate.", which read "You sent back for rework this gate.").
DECIDED_MESSAGES = {
    "approve": "You approved this gate.",
    "rework": "You sent this gate back for rework.",
    "cancel": "You cancelled the run at this gate.",
}


@login_required
@require_http_methods(["GET", "HEAD"])
def pending_list(request: HttpRequest) -> HttpResponse:
    """The reader's open gates in all their workspaces, newest first."""
    gates = list(pending_for_user(request.user)[: PAGE_SIZE + 1])
    for gate in gates:  # marked from the rule table the decision service applies
        gate.approve_barred = approval_barred_by(
            request.user, run=gate.run, policy=GatePolicy.of(gate.policy)
        )
    return render(
        request,
        "approvals/pending.html",
        {"gates": gates[:PAGE_SIZE], "truncated": len(gates) > PAGE_SIZE},
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def gate_page(request: HttpRequest, gate_id: str) -> HttpResponse:
    """One gate opening: what is under review, who may decide it, and the decision form."""
    gate, actor = _visible_gate(request, gate_id)
    form = answer_form = None
    asked = request_of(gate)
    if request.method == "POST":
        form = DecisionForm(request.POST, decisions=gate.decisions)
        if asked is not None:
            answer_form = RequestAnswerForm(request.POST, request=asked)
        approving = form.is_valid() and form.cleaned_data["decision"] == "approve"
        # The edits and the response go with an approval only (the service refuses them else).
        answer = answer_form if approving and answer_form is not None else None
        if form.is_valid() and (answer is None or answer.is_valid()):
            extra = (
                {}
                if answer is None
                else {"arguments": answer.edits(), "response": answer.response()}
            )
            try:
                outcome = gate_decide(
                    actor=actor,
                    run=gate.run,
                    decision=form.cleaned_data["decision"],
                    reason=form.cleaned_data["reason"],
                    approval_request_id=form.cleaned_data["approval_request_id"],
                    source="page",
                    **extra,
                )
            except FlowgateError as error:
                # Re-read: a lost race or an expiry changed the gate, and the page shows it.
                gate, actor = _visible_gate(request, gate_id)
                return _render(
                    request, gate, actor, form, answer_form, error=error, status=error.status
                )
            messages.success(request, DECIDED_MESSAGES[outcome.decision])
            return redirect("approval_pages:gate", gate_id=gate.pk)
        return _render(request, gate, actor, form, answer_form, status=400)
    return _render(request, gate, actor, form)


@login_required
@require_http_methods(["GET", "HEAD"])
def gate_status(request: HttpRequest, gate_id: str) -> JsonResponse:
    """The gate's live status for the open page's poller (`approvals.pages.live`); the same
    404 as the page for a gate the reader may not see."""
    gate, _ = _visible_gate(request, gate_id)
    response = JsonResponse(live_status(gate))
    response["Cache-Control"] = "no-store"
    return response


def _next_pending(request: HttpRequest, gate: Gate) -> Gate | None:
    """The newest other gate the reader may decide, offered once this one is closed."""
    return pending_for_user(request.user).exclude(pk=gate.pk).first()


def _visible_gate(request: HttpRequest, gate_id: str) -> tuple[Gate, Actor]:
    """The gate and the reader as an actor of its workspace; 404 unless they are a member who
    can see its automation."""
    gate = (
        Gate.objects.select_related(
            "run__automation",
            "run__workspace__organization",
            "run__requested_by",
            "requested_by",
        )
        .filter(pk=gate_id)
        .first()
    )
    membership = (
        Membership.objects.select_related("user", "workspace__organization")
        .filter(user=request.user, workspace_id=gate.workspace_id)
        .first()
        if gate is not None
        else None
    )
    if membership is None:
        raise Http404("No such approval")
    actor = Actor.for_member(membership, source="page")
    try:
        authorize(actor, Action.VIEW, gate.run.automation, audit=False)
    except (NotFound, Forbidden):
        raise Http404("No such approval") from None
    return gate, actor


def _render(
    request: HttpRequest,
    gate: Gate,
    actor: Actor,
    form: DecisionForm | None,
    answer_form: RequestAnswerForm | None = None,
    *,
    error: FlowgateError | None = None,
    status: int = 200,
) -> HttpResponse:
    if form is None:
        form = DecisionForm(initial={"approval_request_id": gate.pk}, decisions=gate.decisions)
    view = gate_view(gate, actor)
    asked = answer_form.request if answer_form is not None else request_of(gate)
    if asked is not None and answer_form is None:
        answer_form = RequestAnswerForm(request=asked)
    context = {
        **view,
        "approval_request": request_view(asked) if asked is not None else None,
        "answer_form": answer_form,
        "next_pending": None if view["is_open"] else _next_pending(request, gate),
        "eligibility": gate_eligibility(actor=actor, gate=gate, run=gate.run),
        "form": form,
        "error": error,
    }
    return render(request, "approvals/gate.html", context, status=status)
