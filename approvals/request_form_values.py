"""From a form's values to what a decision on an approval request carries: the edits (a nested
object of the changed editable values) and the response (an object of the simple response
form's answers).

Shared by every form that asks for them — the approval page (`approvals.pages.request_form`)
and Slack's approve modal (`channels.interactions.slack_approve_form`) — so an input means the
same on both: an editable path is one text input holding the proposed value (a string as typed,
any other value as JSON: `90`, `true`, `["a"]`); an enum option carries its choice as JSON.
Pure functions that only shape values; the decision service judges them (editable paths and
schema, response schema).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from approvals.request_schemas import FormField
from governance.api.parsers import json_loads

MISSING = object()  # an editable path the proposed arguments do not hold


def value_at(arguments: Any, path: str) -> Any:
    """The value at a dotted `path` of `arguments`, or `MISSING`."""
    for part in path.split("."):
        if not isinstance(arguments, dict) or part not in arguments:
            return MISSING
        arguments = arguments[part]
    return arguments


def edit_text(arguments: Any, path: str) -> str:
    """What the input for `path` starts with: the proposed value, a string as it is, anything
    else as JSON; empty for a path the arguments do not hold."""
    current = value_at(arguments, path)
    if current is MISSING:
        return ""
    return current if isinstance(current, str) else json.dumps(current, ensure_ascii=False)


def edits_from_texts(
    arguments: Any, paths: list[str], texts: Mapping[str, str | None]
) -> dict[str, Any] | None:
    """The changed editable values as a nested object (`{"payee": {"iban": …}}`), None when
    nothing changed. `texts` holds what was typed per path; a path it lacks (or maps to None)
    was not submitted and stays as proposed.

    A typed value replaces a string as it is; for any other proposed value it is read as JSON,
    and text that is not JSON is kept as text (the editable schema says whether it is allowed).
    An empty input for a path the arguments do not hold adds nothing. Editable paths may nest
    (`payee` and `payee.iban`): a value typed for the outer path that is not an object replaces
    it whole, and a change of a path inside it, which has nowhere to go, is left out.
    """
    edits: dict[str, Any] = {}
    for path in paths:
        typed = texts.get(path)
        if typed is None:
            continue
        current = value_at(arguments, path)
        if current is MISSING and typed == "":
            continue
        value: Any = typed if isinstance(current, str) else _json_or_text(typed)
        if value == current and type(value) is type(current):
            continue
        *parents, leaf = path.split(".")
        target = edits
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                break  # an outer path was given a value that is not an object: it stands
        else:
            target[leaf] = value
    return edits or None


def _json_or_text(typed: str) -> Any:
    """`typed` read as JSON, or as it is when it is not JSON the API would accept (too deep,
    infinite, a NUL or a lone surrogate: `governance.api.parsers`), which no decision could
    store."""
    try:
        return json_loads(typed)
    except ValueError:
        return typed


def choice_value(choice: Any) -> str:
    """How an enum option travels in a form (JSON, so `1` and `"1"` stay apart)."""
    return json.dumps(choice)


def response_from_values(fields: list[FormField], values: Mapping[str, Any]) -> dict[str, Any]:
    """The answer of a simple response form (`request_schemas.form_fields`) as a JSON object.

    `values` holds each field's value by name as the form read it: an enum's `choice_value`,
    a boolean as bool (unset is False: an unticked box is an answer), a number or integer as
    a number, a string as text. An empty or missing value leaves its property out, so the
    response schema's `required` says whether it was needed.
    """
    answer: dict[str, Any] = {}
    for field in fields:
        value = values.get(field.name)
        if field.kind == "boolean":
            answer[field.name] = bool(value)
            continue
        if value in ("", None):
            continue
        if field.kind == "enum":
            # Not one of the options: kept as sent, and the response schema refuses it.
            value = _json_or_text(value) if isinstance(value, str) else value
        answer[field.name] = value
    return answer
