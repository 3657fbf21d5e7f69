"""How the admin console calls a service: as the staff user, in the object's workspace, with a
refusal shown as an admin message.

An admin action is one more surface of the services (SPEC §9): the actor is
`Actor.for_admin(user, workspace)` (source `admin`; the membership's role decides, a superuser
who is not a member acts as a workspace admin), the service authorises and audits exactly as for
the API, and its typed error (403, 404, 409, 400) becomes an error message on the page instead
of a 500. A table of `AdminAction`s gives both the changelist's bulk actions and the buttons of
an object page from one definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.utils.text import capfirst

from governance.actors import Actor
from governance.errors import FlowgateError

MAX_REASON = 2000  # as the API's reason fields


@dataclass(frozen=True)
class AdminAction:
    """One button: `call(actor, obj, **inputs)` runs the service and returns what happened."""

    label: str
    call: Callable[..., str]


def admin_call(model_admin, request, obj, workspace, action: AdminAction, **inputs: Any) -> bool:
    """Run one action on one object as the request's staff user; report it as a message."""
    actor = Actor.for_admin(request.user, workspace)
    subject = f"{capfirst(obj._meta.verbose_name)} {obj}"
    try:
        outcome = action.call(actor, obj, **inputs)
    except FlowgateError as exc:
        model_admin.message_user(request, f"{subject}: {exc.message}", level=messages.ERROR)
        return False
    model_admin.message_user(request, f"{subject}: {outcome}", level=messages.SUCCESS)
    return True


class ReasonActionForm(ActionForm):
    """The changelist's action bar, with the reason the services record."""

    reason = forms.CharField(required=False, max_length=MAX_REASON, label="Reason")


class ObjectActionForm(forms.Form):
    """The input of an object page's action buttons."""

    action = forms.CharField(max_length=32)
    reason = forms.CharField(required=False, max_length=MAX_REASON)
    resume_runs = forms.BooleanField(required=False)


def bulk_action(name: str, action: AdminAction, *, prepare, workspace_of, inputs_of):
    """A changelist action applying `action` to each selected object.

    `prepare(queryset)` adds the joins the service needs; `inputs_of(request)` reads the action
    bar's inputs (validated by the action form before the action runs).
    """

    def run(model_admin, request, queryset):
        for obj in prepare(queryset):
            admin_call(model_admin, request, obj, workspace_of(obj), action, **inputs_of(request))

    run.__name__ = name
    return admin.action(description=action.label)(run)
