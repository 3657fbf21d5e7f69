"""Run inputs: the JSON object a run is started with, and the automation's optional JSON Schema
(`input_schema`, Draft 2020-12) they must satisfy.

The schema is checked and applied by `governance.json_schemas` (patterns in linear time). It is
checked when the automation is saved, so a run never meets a schema that cannot
be applied; the inputs are checked when the run starts, and every violation is reported under
the path of the offending value (`inputs.topic`, `inputs.items.2`) as a 400.
"""

from __future__ import annotations

from typing import Any

from governance.errors import InvalidRequest
from governance.json_schemas import schema_problem, violations


def check_input_schema(schema: Any) -> None:
    """400 `INVALID_REQUEST` naming `input_schema` unless `schema` is null or a valid
    Draft 2020-12 schema object."""
    if schema is None:
        return
    problem = schema_problem(schema)
    if problem is not None:
        raise InvalidRequest(
            "input_schema is not a usable JSON Schema (Draft 2020-12)",
            fields={"input_schema": [problem]},
        )


def validate_inputs(schema: dict[str, Any] | None, inputs: dict[str, Any]) -> None:
    """400 `RUN_INPUTS_INVALID` with every violation of `schema` by `inputs` (none: no schema)."""
    if schema is None:
        return
    fields = violations(schema, inputs, "inputs")
    if not fields:
        return
    raise InvalidRequest(
        "The run inputs do not match the automation's input_schema",
        code="RUN_INPUTS_INVALID",
        fields=fields,
    )
