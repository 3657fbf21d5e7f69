"""Hold real API responses to the OpenAPI schema that `/api/schema/` publishes.

A generated client trusts the schema: a key the server sends but the schema does not name is
invisible to it, a required key the server omits breaks its parser, a wrong type breaks its
model. `SchemaConformance` finds the operation of a response (method, path template, status)
and walks the body against the operation's response schema, reporting every undocumented key,
missing required key and type mismatch with its JSON path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@dataclass
class SchemaConformance:
    schema: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    exercised: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        routes = []
        for template, operations in self.schema["paths"].items():
            pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
            routes.append((template.count("{"), re.compile(f"^{pattern}$"), operations))
        # A literal segment beats a parameter: `/runs` is not the automation `{id}`.
        self.routes = sorted(routes, key=lambda route: route[0])

    def operation(self, method: str, path: str) -> dict[str, Any]:
        for _, pattern, operations in self.routes:
            if pattern.match(path) and method.lower() in operations:
                return operations[method.lower()]
        raise AssertionError(f"{method} {path}: no operation in the schema")

    def check(self, method: str, path: str, response) -> Any:
        """Record the problems of one response and return its JSON (None without a body)."""
        operation = self.operation(method, path)
        where = f"{operation['operationId']} {response.status_code}"
        self.exercised.add(f"{operation['operationId']} {response.status_code}")
        documented = operation["responses"].get(str(response.status_code))
        if documented is None:
            self.problems.append(f"{where}: status not documented")
            return None
        content = documented.get("content")
        if not response.content:
            if content:
                self.problems.append(f"{where}: documented a body, sent none")
            return None
        body = response.json()
        if not content:
            self.problems.append(f"{where}: sent a body, documented none")
            return body
        self.walk(body, content["application/json"]["schema"], where)
        return body

    # --- The walk --------------------------------------------------------------------------

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**self.schema["components"]["schemas"][name], **extra}
        if "allOf" in schema and len(schema["allOf"]) == 1:
            extra = {k: v for k, v in schema.items() if k != "allOf"}
            return self.resolve({**schema["allOf"][0], **extra})
        return schema

    def walk(self, value: Any, schema: dict[str, Any], where: str) -> None:
        schema = self.resolve(schema)
        if value is None:
            if not schema.get("nullable") and schema.get("type") is not None:
                self.problems.append(f"{where}: null, not nullable")
            return
        for key in ("oneOf", "anyOf"):
            if key in schema:
                if not any(self._conforms(value, option, where) for option in schema[key]):
                    self.problems.append(f"{where}: matches none of {key}")
                return
        expected = schema.get("type")
        if expected is None:  # free-form (a JSONField): anything goes
            return
        types = JSON_TYPES[expected]
        if not isinstance(value, types) or (expected != "boolean" and isinstance(value, bool)):
            self.problems.append(f"{where}: {type(value).__name__}, documented {expected}")
            return
        if "enum" in schema and value not in schema["enum"]:
            self.problems.append(f"{where}: {value!r} not in the documented enum")
        if expected == "array":
            for index, item in enumerate(value):
                self.walk(item, schema.get("items", {}), f"{where}[{index}]")
        elif expected == "object":
            self._walk_object(value, schema, where)

    def _walk_object(self, value: dict, schema: dict[str, Any], where: str) -> None:
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                self.problems.append(f"{where}.{name}: required, missing")
        extra = schema.get("additionalProperties", not properties)
        for name, item in value.items():
            if name in properties:
                self.walk(item, properties[name], f"{where}.{name}")
            elif extra is False:
                self.problems.append(f"{where}.{name}: undocumented key")
            elif isinstance(extra, dict):
                self.walk(item, extra, f"{where}.{name}")

    def _conforms(self, value: Any, schema: dict[str, Any], where: str) -> bool:
        before = len(self.problems)
        self.walk(value, schema, where)
        conforms = len(self.problems) == before
        del self.problems[before:]
        return conforms
