"""JSON Schemas that users write, checked and applied in linear time.

Flowgate applies schemas its users write to values its users send: an automation's
`input_schema` to run inputs (`automations.inputs`), an approval request's `response_schema`,
`editable.schema` and policy rules to the request's arguments and answers, a standing
approval's `constraints` to the arguments of later requests (`approvals.request_schemas`). An
agent making a request supplies both the schema and the value.

jsonschema evaluates `pattern` with Python's `re`, a backtracking engine: `^(a+)+$` against
thirty characters runs for minutes holding the GIL, so one request could stall a worker (and
every tenant behind it). Here `pattern` runs on RE2 (google-re2), whose matching time is linear
in the input; a pattern RE2 cannot compile (backreferences, lookaround) is refused when the
schema is checked. `patternProperties` is refused too: jsonschema matches its keys with `re` in
several places (`additionalProperties`, `unevaluatedProperties`) that cannot be redirected
safely. Formats are annotations only (no format checker), so `format: regex` compiles nothing.

Every schema is Draft 2020-12. A `$ref` that resolves to nothing passes the meta-schema check and
fails only when followed: applying such a schema fails closed (`satisfies` False, one violation).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing.exceptions import Unresolvable

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to the user, not logged


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str):
    return re2.compile(pattern, options=_OPTIONS)


def _pattern(validator, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    """The `pattern` keyword, matched by RE2 (jsonschema's own uses `re.search` alike)."""
    if not validator.is_type(instance, "string"):
        return
    try:
        matched = _compiled(pattern).search(instance) is not None
    except re2.error:  # a schema saved before patterns were checked: fail closed
        yield ValidationError(f"The pattern {pattern!r} cannot be applied.")
        return
    if not matched:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = validators.extend(Draft202012Validator, validators={"pattern": _pattern})


# Keywords whose values are data, not schemas, and those mapping names to schemas.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
_NAMED_SCHEMAS = frozenset({"properties", "$defs", "definitions", "dependentSchemas"})


def _subschemas(node: Any, where: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """Every (sub)schema object of a schema document, with its path; values of data keywords
    and the name maps themselves (`properties`…) are not schemas, their entries are."""
    if isinstance(node, list):
        for index, value in enumerate(node):
            yield from _subschemas(value, (*where, str(index)))
        return
    if not isinstance(node, dict):
        return
    yield where, node
    for key, value in node.items():
        if key in _DATA_KEYWORDS:
            continue
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            for name, subschema in value.items():
                yield from _subschemas(subschema, (*where, key, str(name)))
        else:
            yield from _subschemas(value, (*where, str(key)))


def _linear_time_problem(schema: dict) -> str | None:
    """Why a valid schema cannot be applied in linear time (see the module docstring)."""
    for where, node in _subschemas(schema):
        at = "/".join(where) or "(root)"
        if isinstance(node.get("patternProperties"), dict):
            return f"patternProperties is not supported (at {at}): use properties"
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            try:
                _compiled(pattern)
            except re2.error as exc:
                message = exc.args[0] if exc.args else exc
                if isinstance(message, bytes):
                    message = message.decode(errors="replace")
                return (
                    f"the pattern at {at} is not supported ({message}): patterns use RE2 "
                    "syntax, without backreferences or lookaround"
                )
    return None


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a usable JSON Schema object, or None."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    try:
        Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(root)"
        return f"not a valid JSON Schema (Draft 2020-12) at {where}: {exc.message}"
    return _linear_time_problem(schema)


def satisfies(schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` satisfies `schema`; False when the schema cannot be applied to it."""
    try:
        return Validator(schema).is_valid(value)
    except Unresolvable:
        return False


def violations(schema: dict[str, Any], value: Any, prefix: str) -> dict[str, list[str]]:
    """Every violation of `schema` by `value`, keyed by `prefix.path.to.value`; a schema that
    cannot be applied to it (a `$ref` resolving to nothing) is one violation at `prefix`."""
    try:
        errors = sorted(Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
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
