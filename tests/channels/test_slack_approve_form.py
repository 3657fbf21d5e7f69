"""Slack's approve modal, the pure half (channels/interactions/slack_approve_form.py): where
the decision service's refusal of a form's values shows, per submitted input block. The modal
end to end is tested in test_slack_request_modal.py."""

from __future__ import annotations

from channels.interactions.slack_approve_form import inline_errors

BLOCKS = ["edit.amount", "edit.payee", "response.channel", "response.count"]


def test_a_refusal_shows_on_the_input_of_its_value():
    fields = {
        "arguments.amount": ["9000 is greater than the maximum of 500"],
        "arguments.payee.iban": ["'x' does not match '^DE'"],  # inside the edited object
        "response.channel": ["'pigeon' is not one of ['sepa', 'swift']"],
    }
    assert inline_errors(fields, BLOCKS) == {
        "edit.amount": "9000 is greater than the maximum of 500",
        "edit.payee": "'x' does not match '^DE'",
        "response.channel": "'pigeon' is not one of ['sepa', 'swift']",
    }


def test_a_refusal_of_a_whole_object_shows_on_the_first_input_of_its_kind_naming_it():
    fields = {
        "arguments": ["Not editable under a quorum."],
        "response": ["'count' is a required property"],
    }
    assert inline_errors(fields, BLOCKS) == {
        "edit.amount": "arguments: Not editable under a quorum.",
        "response.channel": "response: 'count' is a required property",
    }


def test_a_refusal_without_an_input_of_its_own_shows_somewhere_never_nowhere():
    only_responses = ["response.channel"]
    assert inline_errors({"arguments.memo": ["Not editable."]}, only_responses) == {
        "response.channel": "arguments.memo: Not editable."
    }
    assert inline_errors({"arguments.payee": ["Must be an object."]}, ["edit.payee.iban"]) == {
        "edit.payee.iban": "arguments.payee: Must be an object."
    }
    assert inline_errors({"response": ["Required."]}, []) == {}
