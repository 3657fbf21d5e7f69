"""Forms from the JSON Schemas of approval requests: a simple `response_schema` as one field
per property (the approval page, Slack's approve modal).

The schemas themselves (`response_schema`, `editable.schema`, policy rules' `when`, standing
approvals' `constraints`) are checked and applied by `governance.json_schemas`, in linear time:
when the request is made, so a decision never meets one that cannot be applied; values at
decision time, every violation under the path of the offending value (`response.reason`,
`arguments.amount`), as the run inputs are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Types a form can ask for (the approval page, Slack's modal); other schemas are answered with
# JSON on the page.
FORM_TYPES = ("string", "number", "integer", "boolean")


@dataclass(frozen=True)
class FormField:
    """One field of a form rendered from a simple object schema."""

    name: str
    kind: str  # string | number | integer | boolean | enum
    label: str
    required: bool
    choices: tuple[Any, ...] = ()
    description: str = ""


def form_fields(schema: dict[str, Any] | None) -> list[FormField] | None:
    """The fields of a flat object schema whose properties are simple (a `FORM_TYPES` type or
    an `enum`); None when the schema is anything else (the page then takes JSON)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        return None
    required = set(schema.get("required") or ())
    fields = []
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            return None
        if isinstance(spec.get("enum"), list) and spec["enum"]:
            kind, choices = "enum", tuple(spec["enum"])
        elif spec.get("type") in FORM_TYPES:
            kind, choices = spec["type"], ()
        else:
            return None
        fields.append(
            FormField(
                name=name,
                kind=kind,
                label=str(spec.get("title") or name),
                required=name in required,
                choices=choices,
                description=str(spec.get("description") or ""),
            )
        )
    return fields
