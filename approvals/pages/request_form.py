"""The approval page's part for approval requests: what was asked (action, summary, context,
arguments) and, with the decision form, the fields a reviewer may edit and the response form.

Editable paths are one input each, holding the proposed value: a string as typed, any other
value as JSON (`90`, `true`, `["a"]`). A simple `response_schema` (`request_schemas.form_fields`:
string, number, integer, boolean and enum properties) becomes one input per property; any other
schema one JSON text area. The form only shapes the values (`approvals.request_form_values`,
shared with Slack's approve modal); the decision service judges them (editable paths and
schema, response schema, policy of the edited arguments).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms

from approvals.models import ApprovalRequest, Gate
from approvals.request_answers import REQUEST_TRIGGER
from approvals.request_form_values import (
    choice_value,
    edit_text,
    edits_from_texts,
    response_from_values,
)
from approvals.request_schemas import FormField, form_fields

EDIT_PREFIX = "edit."
RESPONSE_PREFIX = "response."
RESPONSE_JSON = "response_json"


@dataclass(frozen=True)
class RequestView:
    """An approval request as its page shows it."""

    request: ApprovalRequest
    arguments: str
    approved: str | None
    links: list[dict[str, str]]


def request_of(gate: Gate) -> ApprovalRequest | None:
    """The request a gate was opened for (no query for a flow's gate)."""
    if gate.run.trigger_type != REQUEST_TRIGGER:
        return None
    return ApprovalRequest.objects.filter(gate=gate).select_related("decision").first()


def request_view(request: ApprovalRequest) -> RequestView:
    links = [
        link
        for link in (request.context or {}).get("links") or ()
        if str(link.get("url", "")).startswith(("https://", "http://"))
    ]
    approved = request.approved_arguments if request.decision_id else None
    return RequestView(
        request=request,
        arguments=_pretty(request.arguments),
        approved=_pretty(approved) if approved is not None else None,
        links=links,
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _response_field(field: FormField) -> forms.Field:
    common = {"label": field.label, "required": field.required, "help_text": field.description}
    if field.kind == "enum":
        choices = [("", "—")] if not field.required else []
        choices += [(choice_value(choice), str(choice)) for choice in field.choices]
        return forms.ChoiceField(choices=choices, **common)
    if field.kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if field.kind == "integer":
        return forms.IntegerField(**common)
    if field.kind == "number":
        return forms.FloatField(**common)
    return forms.CharField(max_length=5000, **common)


class RequestAnswerForm(forms.Form):
    """The edit and response inputs of one request (only used with an approval)."""

    def __init__(self, *args, request: ApprovalRequest, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.edit_paths = list((request.editable or {}).get("paths") or ())
        for path in self.edit_paths:
            self.fields[EDIT_PREFIX + path] = forms.CharField(
                label=path,
                required=False,
                initial=edit_text(request.arguments, path),
                max_length=10_000,
            )
        self.response_fields = form_fields(request.response_schema)
        if self.response_fields is not None:
            for field in self.response_fields:
                self.fields[RESPONSE_PREFIX + field.name] = _response_field(field)
        elif request.response_schema is not None:
            self.fields[RESPONSE_JSON] = forms.CharField(
                label="Response (JSON)", widget=forms.Textarea(attrs={"rows": 4})
            )

    @property
    def edit_inputs(self) -> list:
        return [self[EDIT_PREFIX + path] for path in self.edit_paths]

    @property
    def response_inputs(self) -> list:
        return [self[name] for name in self.fields if not name.startswith(EDIT_PREFIX)]

    def edits(self) -> dict[str, Any] | None:
        """The changed editable values as a nested object, None when nothing changed."""
        texts = {path: self.cleaned_data.get(EDIT_PREFIX + path, "") for path in self.edit_paths}
        return edits_from_texts(self.request.arguments, self.edit_paths, texts)

    def response(self) -> Any:
        """The answer as JSON, None when the request asks for none."""
        if self.response_fields is None:
            if RESPONSE_JSON not in self.fields:
                return None
            try:
                return json.loads(self.cleaned_data[RESPONSE_JSON])
            except ValueError:
                return self.cleaned_data[RESPONSE_JSON]
        values = {
            field.name: self.cleaned_data.get(RESPONSE_PREFIX + field.name)
            for field in self.response_fields
        }
        return response_from_values(self.response_fields, values)
