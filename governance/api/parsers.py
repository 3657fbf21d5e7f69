"""The API's JSON parser: refuses what the database or the process cannot hold, as a 400.

DRF's `JSONParser` accepts JSON that PostgreSQL's jsonb rejects later (a 500 after validation):
numbers that overflow to infinity (`1e400`), `\\u0000` in strings or keys, and unpaired UTF-16
surrogates (`"\\ud800"`). Deep nesting makes the decoder raise `RecursionError`, which is not a
`ValueError` and so escapes DRF's own handling. Everything refused here becomes
`400 INVALID_REQUEST` "Malformed request body: …" through the one exception handler.

Size is limited before parsing (`governance.middleware.BodySizeLimitMiddleware`), so the walk
below is bounded by `FLOWGATE_MAX_BODY_BYTES`.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Deepest nesting of arrays/objects accepted; a flow needs about 8 (body → flow → nodes → node →
# gate → policy → data_classes → item), free-form metadata gets the rest.
MAX_DEPTH = 32


class FlowgateJSONParser(JSONParser):
    """`JSONParser` that refuses non-finite numbers, NUL characters, unpaired surrogates and
    nesting deeper than `MAX_DEPTH`, each with a message naming the problem."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            decoded = codecs.getreader(encoding)(stream)
            data = json.load(decoded, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError as exc:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels") from exc
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the checks above
            raise ParseError(f"JSON parse error - {exc}") from exc
        problem = json_problem(data)
        if problem:
            raise ParseError(problem)
        return data


def json_loads(text: str) -> Any:
    """`text` as JSON, under the rules of this parser (for JSON typed into a form, which then
    goes where a body's would); ValueError for anything the parser refuses."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    problem = json_problem(data)
    if problem:
        raise ValueError(problem)
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def json_problem(data: Any) -> str | None:
    """Why parsed JSON cannot be accepted (too deep, NUL, unpaired surrogate), or None.

    Iterative, so a hostile document cannot exhaust the stack here either.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                return f"JSON nested deeper than {MAX_DEPTH} levels"
            for key, item in value.items():
                problem = _string_problem(key)
                if problem:
                    return f"object key {problem}"
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                return f"JSON nested deeper than {MAX_DEPTH} levels"
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            problem = _string_problem(value)
            if problem:
                return f"string {problem}"
    return None


def _string_problem(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired UTF-16 surrogate"
    return None
