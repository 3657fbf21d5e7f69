"""The admin's automation form: an automation's spec as the API takes it, one JSON box per part.

The form only parses (JSON, the top-level types the API's input serializer requires); what
makes a spec valid is the service's to judge (`automations.services.automation_spec_check`,
the same call for the preview, the create and the update). `service_data` turns the form into
the API's input: the whole spec for a create, and for an edit only the fields that differ from
the automation as shown, so an unchanged save writes nothing and the audit event's `changed`
names what the operator really changed.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from automations.models import Automation, AutomationStatus

# The API fields the form edits, in the order the page shows them.
EDITED_FIELDS = ("name", "description", "status", "agents", "flow", "execution", "input_schema")


class PrettyJSONField(forms.JSONField):
    """A JSON box showing its value indented, so a flow reads (and diffs) line by line."""

    def __init__(self, *, kind: type, kind_name: str, rows: int = 12, empty=None, **kwargs):
        self.kind, self.kind_name, self.empty = kind, kind_name, empty
        widget = forms.Textarea(attrs={"rows": rows, "class": "fg-json", "spellcheck": "false"})
        super().__init__(widget=widget, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if value is None:  # an empty box, not the word null
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False)

    def clean(self, value):
        """An empty box (or `[]` / `{}`, which Django counts as empty) is `empty()`."""
        cleaned = super().clean(value)
        if cleaned in self.empty_values and self.empty is not None:
            return self.empty()
        return cleaned

    def validate(self, value):
        super().validate(value)
        if value not in self.empty_values and not isinstance(value, self.kind):
            raise forms.ValidationError(f"Must be a JSON {self.kind_name}.")


class AutomationSpecForm(forms.Form):
    """Edit an automation's name, status and spec (agents, flow, execution, input schema)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    status = forms.ChoiceField(choices=AutomationStatus.choices, initial=AutomationStatus.ACTIVE)
    agents = PrettyJSONField(
        kind=list,
        kind_name="list",
        rows=8,
        required=False,
        empty=list,
        help_text="A list of agents; agent nodes name one by its agent_id.",
    )
    flow = PrettyJSONField(
        kind=dict,
        kind_name="object",
        rows=20,
        help_text='{"nodes": [...]}: agent, http and approval nodes (docs/api.md).',
    )
    execution = PrettyJSONField(
        kind=dict,
        kind_name="object",
        rows=3,
        required=False,
        empty=dict,
        help_text='e.g. {"max_parallel": 2}',
    )
    input_schema = PrettyJSONField(
        kind=dict,
        kind_name="object",
        rows=4,
        required=False,
        help_text="A JSON Schema the run inputs must satisfy; empty accepts any inputs.",
    )
    version = forms.IntegerField(
        required=False, min_value=1, widget=forms.HiddenInput, help_text="the version edited"
    )

    @classmethod
    def initial_of(cls, automation: Automation | None) -> dict[str, Any]:
        if automation is None:
            return {"agents": [], "flow": {"nodes": []}, "execution": {}, "input_schema": None}
        return {
            **{name: getattr(automation, name) for name in EDITED_FIELDS},
            "version": automation.version,
        }

    def service_data(self, automation: Automation | None) -> dict[str, Any]:
        """The API input of this form: every field for a create; for an edit the changed
        fields and the version shown (a precondition: someone else's later change is a 409)."""
        data = {name: self.cleaned_data[name] for name in EDITED_FIELDS}
        if automation is None:
            return data
        changed = {k: v for k, v in data.items() if v != getattr(automation, k)}
        if changed and self.cleaned_data.get("version"):
            changed["version"] = self.cleaned_data["version"]
        return changed


class AutomationCreateForm(AutomationSpecForm):
    """The spec form plus what only a create chooses: the workspace and the automation id."""

    workspace = forms.TypedChoiceField(coerce=int, help_text="One of your workspaces.")
    automation_id = forms.CharField(
        required=False,
        max_length=128,
        help_text="Letters, digits, '.', '_', ':' or '-'; generated when empty.",
    )

    field_order = ("workspace", "automation_id", *EDITED_FIELDS)

    def __init__(self, *args, workspaces, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].choices = [(w.pk, w.path) for w in workspaces]
        if len(workspaces) == 1:
            self.fields["workspace"].initial = workspaces[0].pk

    def service_data(self, automation: Automation | None) -> dict[str, Any]:
        data = super().service_data(None)
        if self.cleaned_data["automation_id"]:
            data["automation_id"] = self.cleaned_data["automation_id"]
        return data
