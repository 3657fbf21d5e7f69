"""The approval page's part for approval requests: what was asked (action, summary, context,
arguments) and, with the decision form, the fields a reviewer may edit and the response form.

Editable paths are one input each, holding the proposed value: a string as typed, any other
value as JSON (`90`, `true`, `["a"]`). A simple `response_schema` (`request_schemas.form_fields`:
string, number, integer, boolean and enum properties) becomes one input per property; any other
schema one JSON text area. The form only shapes the values; the decision service judges them
(editable paths and schema, response schema, policy of the edited arguments).
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from django import forms

from approvals.models import ApprovalRequest, Gate
from approvals.request_answers import REQUEST_TRIGGER
from approvals.request_schemas import FormField, form_fields

EDIT_PREFIX = "edit."
RESPONSE_PREFIX = "response."
RESPONSE_JSON = "response_json"
_MISSING = object()


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


def _value_at(arguments: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(arguments, dict) or part not in arguments:
            return _MISSING
        arguments = arguments[part]
    return arguments


def _response_field(field: FormField) -> forms.Field:
    common = {"label": field.label, "required": field.required, "help_text": field.description}
    if field.kind == "enum":
        choices = [("", "—")] if not field.required else []
        choices += [(json.dumps(choice), str(choice)) for choice in field.choices]
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
            current = _value_at(request.arguments, path)
            initial = "" if current is _MISSING else current
            self.fields[EDIT_PREFIX + path] = forms.CharField(
                label=path,
                required=False,
                initial=initial if isinstance(initial, str) else json.dumps(initial),
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
        edits: dict[str, Any] = {}
        for path in self.edit_paths:
            current = _value_at(self.request.arguments, path)
            typed = self.cleaned_data.get(EDIT_PREFIX + path, "")
            if current is _MISSING and typed == "":
                continue
            value: Any = typed
            if not isinstance(current, str):
                # Not JSON: kept as text, and the editable schema says whether text is allowed.
                with suppress(ValueError):
                    value = json.loads(typed)
            if value == current and type(value) is type(current):
                continue
            *parents, leaf = path.split(".")
            target = edits
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        return edits or None

    def response(self) -> Any:
        """The answer as JSON, None when the request asks for none."""
        if self.response_fields is None:
            if RESPONSE_JSON not in self.fields:
                return None
            try:
                return json.loads(self.cleaned_data[RESPONSE_JSON])
            except ValueError:
                return self.cleaned_data[RESPONSE_JSON]
        answer = {}
        for field in self.response_fields:
            value = self.cleaned_data.get(RESPONSE_PREFIX + field.name)
            if field.kind == "enum":
                if value in ("", None):
                    continue
                value = json.loads(value)
            elif value in ("", None) and field.kind != "boolean":
                continue
            answer[field.name] = value
        return answer
