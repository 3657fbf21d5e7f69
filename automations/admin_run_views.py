"""The run page's own views in the admin: its action buttons (with the confirmation step of
destructive actions), the repair page, the live-update fragments of the page and of the run
list, and the changelist's bulk actions with the same confirmation.

Thin like every surface: they read the form, show what an action will do, and call the
services of `automations.runs` through `governance.admin_actions.admin_call` (the staff user as
the actor, authorised and audited by the service, a refusal shown as a message).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from automations.admin_actions import NODE_ACTIONS, REPAIR, RUN_PAGE_ACTIONS, RunAction
from automations.admin_run_list import run_change_url
from automations.admin_run_page import offered_actions
from automations.flow import MAX_ID_LENGTH
from automations.models import Run
from automations.runs.control import live_automation
from automations.runs.repair import run_reset_preview
from governance.admin_actions import MAX_REASON, admin_call
from governance.errors import Conflict, FlowgateError

CONFIRMED = "yes"
BULK_LISTED = 100  # runs named on the bulk confirmation page; it says when there are more


class RunActionForm(forms.Form):
    """A button of the run page: a run action, or a node action with its `node_id`."""

    action = forms.CharField(max_length=32)
    node_id = forms.CharField(required=False, max_length=MAX_ID_LENGTH)
    reason = forms.CharField(required=False, max_length=MAX_REASON)
    confirmed = forms.CharField(required=False, max_length=8)

    def clean(self):
        data = super().clean()
        action = self.run_action(data.get("action", ""))
        if action is None or (action.per_node and not data.get("node_id")):
            raise forms.ValidationError("Unknown action or invalid input.")
        return data

    @staticmethod
    def run_action(name: str) -> RunAction | None:
        return RUN_PAGE_ACTIONS.get(name) or NODE_ACTIONS.get(name)


class RepairForm(forms.Form):
    """The inputs of `repair.run_repair`; only the fields the operator changed are sent, so a
    repair that only resets the subtree writes no new automation version."""

    prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 8}))
    template_id = forms.CharField(required=False, max_length=MAX_ID_LENGTH)
    model_policy = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    reason = forms.CharField(required=False, max_length=MAX_REASON)

    def clean_model_policy(self):
        value = self.cleaned_data["model_policy"]
        if value is not None and not isinstance(value, dict):
            raise forms.ValidationError("The model policy is a JSON object.")
        return value


def _admin_context(model_admin, request, run: Run, title: str) -> dict[str, Any]:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": run,
        "title": title,
        "run_url": run_change_url(run),
        "act_url": reverse("admin:automations_run_act", args=[run.run_id]),
    }


def run_act(model_admin, request, run: Run):
    """POST a run page button. A destructive action the run's state allows first answers a
    confirmation page (with the reset preview for node resets); its "Yes" posts again with
    `confirmed`. An action the state does not allow goes straight to the service, whose refusal
    is the message (the page was stale)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = RunActionForm(request.POST)
    if not form.is_valid():
        model_admin.message_user(request, "Unknown action or invalid input.", level=messages.ERROR)
        return HttpResponseRedirect(run_change_url(run))
    data = form.cleaned_data
    action = form.run_action(data["action"])
    allowed, _ = offered_actions(run, list(run.nodes.all()))
    if action.confirm and data["confirmed"] != CONFIRMED and action.cause in allowed:
        return _confirmation(model_admin, request, run, data, action)
    admin_call(
        model_admin,
        request,
        run,
        run.workspace,
        action.action,
        reason=data["reason"],
        node_id=data["node_id"],
    )
    return HttpResponseRedirect(run_change_url(run))


def _confirmation(model_admin, request, run: Run, data: dict, action: RunAction):
    preview = None
    if action.previews_reset:
        try:
            preview = run_reset_preview(run=run, node_id=data["node_id"])
        except FlowgateError as exc:
            model_admin.message_user(request, f"Run {run}: {exc.message}", level=messages.ERROR)
            return HttpResponseRedirect(run_change_url(run))
    context = {
        **_admin_context(model_admin, request, run, f"{action.label} run {run}?"),
        "name": data["action"],
        "action": action,
        "node_id": data["node_id"],
        "reason": data["reason"],
        "preview": preview,
        "confirmed": CONFIRMED,
    }
    return TemplateResponse(request, "admin/automations/run/confirm_action.html", context)


def run_repair_page(model_admin, request, run: Run, node_id: str):
    """GET: the repair form for one node, filled from the live automation, with the reset
    preview (what the repair will send back to pending). POST: repair through the service."""
    automation = live_automation(run)
    try:
        preview = run_reset_preview(run=run, node_id=node_id)
        if automation is None:
            raise Conflict("The automation was deleted: nothing to repair")
    except FlowgateError as exc:
        model_admin.message_user(request, f"Run {run}: {exc.message}", level=messages.ERROR)
        return HttpResponseRedirect(run_change_url(run))
    initial = _repair_initial(automation, node_id)
    form = RepairForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data if name != "reason"}
        admin_call(
            model_admin,
            request,
            run,
            run.workspace,
            REPAIR.action,
            node_id=node_id,
            reason=form.cleaned_data["reason"],
            **changed,
        )
        return HttpResponseRedirect(run_change_url(run))
    allowed, _ = offered_actions(run, list(run.nodes.all()))
    context = {
        **_admin_context(model_admin, request, run, f"Repair {node_id} of run {run}"),
        "form": form,
        "node_id": node_id,
        "preview": preview,
        "allowed": REPAIR.cause in allowed,
    }
    return TemplateResponse(request, "admin/automations/run/repair.html", context)


def _repair_initial(automation, node_id: str) -> dict[str, Any]:
    node = next((n for n in automation.flow.get("nodes", []) if n.get("node_id") == node_id), {})
    builder = (node.get("metadata") or {}).get("builder") or {}
    agent = next((a for a in automation.agents if a.get("agent_id") == node.get("agent_id")), {})
    return {
        "prompt": builder.get("prompt") if isinstance(builder, dict) else None,
        "template_id": agent.get("template_id"),
        "model_policy": agent.get("model_policy"),
    }


def live_fragment(response):
    """The page again, for its poller (static/flowgate/admin-live.js), which takes the
    `data-live-region` parts out of it: the messages are left for the page the operator loads
    next (rendering them here would use them up), and nothing is cached."""
    if isinstance(response, TemplateResponse):
        response.context_data = {**(response.context_data or {}), "messages": ()}
    response["Cache-Control"] = "no-store"
    return response


def confirmed_bulk_action(name: str, run_action: RunAction, *, inputs_of):
    """A changelist action applying `run_action` to each selected run; a destructive one first
    answers a page listing the runs and asking to confirm (like Django's delete action)."""

    def run(model_admin, request, queryset):
        runs = queryset.select_related("automation", "workspace__organization")
        if run_action.confirm and request.POST.get("confirmed") != CONFIRMED:
            shown = list(runs[: BULK_LISTED + 1])
            context = {
                **model_admin.admin_site.each_context(request),
                "opts": model_admin.model._meta,
                "title": f"{run_action.label} the selected runs?",
                "runs": shown[:BULK_LISTED],
                "more": len(shown) > BULK_LISTED,
                # The same selection again: the ticked rows, or every run of the filtered list.
                "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
                "name": name,
                "action": run_action,
                "reason": request.POST.get("reason", ""),
                "confirmed": CONFIRMED,
            }
            return TemplateResponse(request, "admin/automations/run/confirm_bulk.html", context)
        for obj in runs:
            admin_call(
                model_admin, request, obj, obj.workspace, run_action.action, **inputs_of(request)
            )
        return None

    run.__name__ = name
    run.short_description = run_action.label
    return run
