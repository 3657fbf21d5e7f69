"""Creating and editing an automation in the admin console: preview, then save.

One page (`templates/admin/automations/automation/spec_form.html`) for both: the spec as JSON
boxes (`automations.admin_automation_form`). "Preview" asks the service what the save would
store (`automation_spec_check`, nothing written) and draws the normalised flow; "Save" calls
`automation_create` / `automation_update` as `Actor.for_admin` (source `admin`), which
authorise, validate with that same check, write and audit exactly as for the API. An invalid
flow comes back as the service's problems grouped per node, drawn on the graph of what was
typed; a save shows the saved automation's warnings (`automations.warnings`). A refusal (not
allowed, gone) is an error message on the page it came from, as for every admin action.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import quote
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from automations.admin_automation_form import AutomationCreateForm, AutomationSpecForm
from automations.flow_diagram import flow_graph_svg
from automations.models import Automation
from automations.services import automation_create, automation_spec_check, automation_update
from automations.warnings import automation_warnings
from governance.actors import Actor
from governance.admin_scope import admin_scope
from governance.errors import Conflict, FlowgateError, InvalidFlow, InvalidRequest
from governance.models import Workspace

TEMPLATE = "admin/automations/automation/spec_form.html"


def automation_add_view(model_admin, request: HttpRequest) -> HttpResponse:
    """The create page: a workspace of the user's, an id, and the spec."""
    scope = admin_scope(request)
    workspaces = Workspace.objects.select_related("organization").order_by(
        "organization__slug", "slug"
    )
    if not scope.is_everything:
        workspaces = workspaces.filter(pk__in=scope.workspace_ids)
    workspaces = list(workspaces)
    form = AutomationCreateForm(
        request.POST if request.method == "POST" else None,
        initial=AutomationSpecForm.initial_of(None),
        workspaces=workspaces,
    )
    return _spec_page(model_admin, request, form, automation=None, workspaces=workspaces)


def automation_edit_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """The edit page of one automation (404 outside the user's workspaces, like its page)."""
    automation = model_admin.get_object(request, object_id)
    form = AutomationSpecForm(
        request.POST if request.method == "POST" else None,
        initial=AutomationSpecForm.initial_of(automation),
    )
    return _spec_page(model_admin, request, form, automation=automation)


def _spec_page(model_admin, request, form, *, automation: Automation | None, workspaces=()):
    preview = problems = None
    if request.method == "POST" and form.is_valid():
        workspace = automation.workspace if automation else _chosen(workspaces, form)
        data = form.service_data(automation)
        try:
            if "_save" not in request.POST:
                spec = automation_spec_check(workspace=workspace, data=data, current=automation)
                preview = _graphs(spec["flow"])
            else:
                return _save(model_admin, request, workspace, automation, data)
        except InvalidFlow as exc:
            problems = _per_node(exc.extra.get("errors", []))
            preview = _graphs(data.get("flow", automation.flow if automation else {}), problems)
        except (InvalidRequest, Conflict) as exc:
            _form_errors(form, exc)
        except FlowgateError as exc:  # not allowed, or gone since the page was read
            subject = f"Automation {automation.automation_id}" if automation else "Add automation"
            model_admin.message_user(request, f"{subject}: {exc.message}", level=messages.ERROR)
            return HttpResponseRedirect(_back(automation))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Automation._meta,
        "title": f"Edit {automation.automation_id}" if automation else "Add automation",
        "original": automation,
        "form": form,
        "problems": problems,
        "preview": preview,
        "previewed": preview is not None and problems is None,
        "has_view_permission": True,
    }
    return TemplateResponse(request, TEMPLATE, context)


def _save(model_admin, request, workspace, automation, data: dict[str, Any]) -> HttpResponse:
    actor = Actor.for_admin(request.user, workspace)
    if automation is None:
        saved = automation_create(actor=actor, data=data)
        outcome = f"Automation {saved.automation_id}: created (version 1)"
    elif not data:
        model_admin.message_user(request, "Nothing changed.", level=messages.INFO)
        return HttpResponseRedirect(_back(automation))
    else:
        saved = automation_update(actor=actor, automation=automation, data=data)
        outcome = f"Automation {saved.automation_id}: saved (version {saved.version})"
    model_admin.message_user(request, outcome, level=messages.SUCCESS)
    for warning in automation_warnings(saved):
        model_admin.message_user(request, warning["message"], level=messages.WARNING)
    return HttpResponseRedirect(_back(saved))


def _chosen(workspaces, form) -> Workspace:
    return next(w for w in workspaces if w.pk == form.cleaned_data["workspace"])


def _back(automation: Automation | None) -> str:
    if automation is None:
        return reverse("admin:automations_automation_changelist")
    return reverse("admin:automations_automation_change", args=[quote(automation.pk)])


def _per_node(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's problems as the page lists them: the spec's own first, then per node."""
    grouped: dict[str | None, list[dict[str, str]]] = defaultdict(list)
    for error in errors:
        grouped[error.get("node_id")].append(
            {"field": error.get("field", ""), "message": error.get("message", "")}
        )
    general = [{"node_id": None, "problems": grouped.pop(None)}] if None in grouped else []
    return general + [{"node_id": n, "problems": p} for n, p in grouped.items()]


def _graphs(flow: Any, problems: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The flow drawn wide and tall (phones); nodes with problems marked "invalid"."""
    if not isinstance(flow, Mapping):
        return None
    states = {p["node_id"]: "invalid" for p in problems or () if p["node_id"]}
    spec = {"flow": flow}
    return {
        "wide": flow_graph_svg(spec, states),
        "tall": flow_graph_svg(spec, states, vertical=True),
    }


def _form_errors(form, exc: FlowgateError) -> None:
    """A 400 naming fields (automation id, input schema) on those fields; the rest (a taken
    id, a version conflict) above the form."""
    fields = exc.extra.get("fields") or {}
    placed = False
    for name, texts in fields.items():
        if name in form.fields:
            for text in texts:
                form.add_error(name, text)
            placed = True
    if not placed:
        form.add_error(None, exc.message)
