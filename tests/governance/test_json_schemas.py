"""User-written JSON Schemas are checked and applied in linear time (`governance.json_schemas`):
`pattern` runs on RE2, patterns RE2 cannot run and `patternProperties` are refused when the
schema is saved, on every surface that takes one."""

from __future__ import annotations

import pytest

from governance.json_schemas import satisfies, schema_problem, violations
from tests.factories import AUTOMATIONS_URL, REQUESTS_URL, automation_body, request_body
from tests.support.processes import finishes_within

CATASTROPHIC = {"type": "string", "pattern": "^(a+)+$"}


def _judge_catastrophe() -> None:
    assert violations(CATASTROPHIC, "a" * 50 + "!", "value") == {
        "value": [f"{'a' * 50 + '!'!r} does not match '^(a+)+$'"]
    }
    assert not satisfies({"properties": {"x": CATASTROPHIC}}, {"x": "a" * 100_000 + "!"})


def test_a_backtracking_pattern_is_judged_in_linear_time():
    """In a process of its own: Python's `re` would backtrack 2^50 steps here, holding the GIL.
    Whether it finishes within a minute is the claim, not how fast."""
    assert finishes_within(_judge_catastrophe, 60)


def test_patterns_still_match_as_they_did():
    schema = {"type": "object", "properties": {"iban": {"pattern": "^[A-Z]{2}[0-9]{2} ?[0-9]+$"}}}
    assert schema_problem(schema) is None
    assert satisfies(schema, {"iban": "DE00 1234"})
    assert violations(schema, {"iban": "de00"}, "arguments") == {
        "arguments.iban": ["'de00' does not match '^[A-Z]{2}[0-9]{2} ?[0-9]+$'"]
    }
    assert satisfies({"propertyNames": {"pattern": "^[a-z]+$"}}, {"abc": 1})
    assert not satisfies({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ABC": 1})


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"pattern": "(a)\\1"}, "pattern at (root)"),
        ({"properties": {"x": {"pattern": "^(?=a)"}}}, "pattern at properties/x"),
        ({"items": {"patternProperties": {"^a": {}}}}, "patternProperties is not supported"),
    ],
)
def test_what_cannot_run_in_linear_time_is_refused_when_checked(schema, says):
    problem = schema_problem(schema)
    assert problem is not None and says in problem


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"pattern": {"type": "string"}, "patternProperties": {"type": "object"}}},
        {"enum": [{"pattern": "(a)\\1"}], "default": {"patternProperties": {"x": {}}}},
        {"$defs": {"pattern": {"type": "string"}}, "$ref": "#/$defs/pattern"},
    ],
)
def test_names_and_data_that_look_like_those_keywords_are_not_refused(schema):
    assert schema_problem(schema) is None


@pytest.mark.django_db
def test_an_approval_request_with_a_backreference_is_a_400(agent):
    body = request_body(
        response_schema={"type": "object", "properties": {"code": {"pattern": "(x)\\1"}}}
    )
    response = agent.client().post(REQUESTS_URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert "RE2" in " ".join(response.json()["fields"]["response_schema"])


@pytest.mark.django_db
def test_an_automation_input_schema_with_pattern_properties_is_a_400(operator, no_broker):
    body = automation_body(input_schema={"type": "object", "patternProperties": {"^t": {}}})
    response = operator.client().post(AUTOMATIONS_URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert "patternProperties" in " ".join(response.json()["fields"]["input_schema"])
