"""Run inputs: the JSON object a run is started with, and the automation's optional JSON Schema
(`input_schema`, Draft 2020-12) they must satisfy.

The schema is checked when the automation is saved, so a run never meets a schema that cannot
be applied; the inputs are checked when the run starts, and every violation is reported under
the path of the offending value (`inputs.topic`, `inputs.items.2`) as a 400.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from governance.errors import InvalidRequest


def check_input_schema(schema: Any) -> None:
    """400 `INVALID_REQUEST` naming `input_schema` unless `schema` is null or a valid
    Draft 2020-12 schema object."""
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise InvalidRequest(
            "input_schema must be a JSON Schema object",
            fields={"input_schema": ["Must be an object or null."]},
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(root)"
        raise InvalidRequest(
            "input_schema is not a valid JSON Schema (Draft 2020-12)",
            fields={"input_schema": [f"{where}: {exc.message}"]},
        ) from None


def validate_inputs(schema: dict[str, Any] | None, inputs: dict[str, Any]) -> None:
    """400 `RUN_INPUTS_INVALID` with every violation of `schema` by `inputs` (none: no schema)."""
    if schema is None:
        return
    errors = sorted(
        Draft202012Validator(schema).iter_errors(inputs), key=lambda e: list(e.absolute_path)
    )
    if not errors:
        return
    fields: dict[str, list[str]] = {}
    for error in errors:
        key = ".".join(["inputs", *(str(part) for part in error.absolute_path)])
        fields.setdefault(key, []).append(error.message)
    raise InvalidRequest(
        "The run inputs do not match the automation's input_schema",
        code="RUN_INPUTS_INVALID",
        fields=fields,
    )
