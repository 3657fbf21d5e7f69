"""JSON Schemas in approval requests: `response_schema`, `editable.schema` and policy rules'
`when`, all Draft 2020-12 (as an automation's `input_schema`, `automations.inputs`).

Schemas are checked when the request is made, so a decision never meets one that cannot be
applied; values are checked at decision time and every violation is reported under the path of
the offending value (`response.reason`, `arguments.amount`), as the run inputs are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

# Types a form can ask for (the approval page, Slack's modal); other schemas are answered with
# JSON on the page.
FORM_TYPES = ("string", "number", "integer", "boolean")


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a usable JSON Schema object, or None."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(root)"
        return f"not a valid JSON Schema (Draft 2020-12) at {where}: {exc.message}"
    return None


def satisfies(schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` satisfies `schema`; False when the schema cannot be applied to it (a
    `$ref` that resolves to nothing passes `schema_problem` and fails only when it is
    followed): fail closed, never an error."""
    try:
        return Draft202012Validator(schema).is_valid(value)
    except Unresolvable:
        return False


def violations(schema: dict[str, Any], value: Any, prefix: str) -> dict[str, list[str]]:
    """Every violation of `schema` by `value`, keyed by `prefix.path.to.value`; a schema that
    cannot be applied to it (a `$ref` resolving to nothing) is one violation at `prefix`."""
    try:
        errors = sorted(
            Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path)
        )
    except Unresolvable as exc:
        return {
            prefix: [
                f"The schema cannot be applied: its reference {exc.ref!r} resolves to nothing."
            ]
        }
    fields: dict[str, list[str]] = {}
    for error in errors:
        key = ".".join([prefix, *(str(part) for part in error.absolute_path)])
        fields.setdefault(key, []).append(error.message)
    return fields


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
