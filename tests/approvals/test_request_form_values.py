"""From form values to a decision's edits and response (approvals/request_form_values.py),
shared by the approval page and Slack's approve modal."""

from __future__ import annotations

from approvals.request_form_values import (
    choice_value,
    edit_text,
    edits_from_texts,
    response_from_values,
)
from approvals.request_schemas import form_fields

ARGUMENTS = {"amount": 100, "memo": "Invoice 42", "urgent": False, "payee": {"iban": "DE00"}}
PATHS = ["amount", "memo", "urgent", "payee.iban", "payee.bic"]


def test_an_input_starts_with_the_proposed_value_strings_as_they_are_others_as_json():
    assert [edit_text(ARGUMENTS, path) for path in PATHS] == [
        "100",
        "Invoice 42",
        "false",
        "DE00",
        "",
    ]
    assert edit_text({"tags": ["café"]}, "tags") == '["café"]'


def test_only_changed_values_become_edits_nested_by_path():
    texts = {
        "amount": "90",  # JSON for a number
        "memo": "Invoice 42",  # unchanged
        "urgent": "false",  # unchanged (JSON false)
        "payee.iban": "DE99",
        "payee.bic": "",  # a path the arguments lack, left empty: adds nothing
    }
    assert edits_from_texts(ARGUMENTS, PATHS, texts) == {"amount": 90, "payee": {"iban": "DE99"}}
    assert (
        edits_from_texts(ARGUMENTS, PATHS, {path: edit_text(ARGUMENTS, path) for path in PATHS})
        is None
    )


def test_text_is_kept_as_typed_where_a_string_was_proposed_or_json_does_not_parse():
    texts = {"memo": "100", "amount": "ninety", "payee.bic": "XYZ"}
    assert edits_from_texts(ARGUMENTS, PATHS, texts) == {
        "memo": "100",  # a string stays a string
        "amount": "ninety",  # not JSON: the editable schema judges it
        "payee": {"bic": "XYZ"},
    }
    assert edits_from_texts(ARGUMENTS, PATHS, {"memo": ""}) == {"memo": ""}  # cleared


def test_a_path_the_form_did_not_submit_stays_as_proposed():
    assert edits_from_texts(ARGUMENTS, PATHS, {"amount": None}) is None
    assert edits_from_texts(ARGUMENTS, PATHS, {}) is None


def test_a_simple_response_form_answers_a_json_object():
    fields = form_fields(
        {
            "type": "object",
            "properties": {
                "channel": {"enum": ["sepa", 1]},
                "urgent": {"type": "boolean"},
                "fee": {"type": "number"},
                "note": {"type": "string"},
            },
        }
    )
    values = {"channel": choice_value(1), "fee": 2.5, "note": ""}
    assert response_from_values(fields, values) == {"channel": 1, "urgent": False, "fee": 2.5}
    assert response_from_values(fields, {"channel": choice_value("sepa"), "urgent": True}) == {
        "channel": "sepa",
        "urgent": True,
    }
