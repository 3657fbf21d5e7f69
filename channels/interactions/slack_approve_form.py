"""Slack's approve modal for an approval request: the fields a reviewer may edit and the
response form, as Block Kit, and back from the submitted `view.state.values`.

A request's Approve button opens it (`takes_form`) when the request has editable paths or a
simple `response_schema` (`approvals.request_schemas.form_fields`: string, number, integer,
boolean and enum properties). A request whose response schema is not simple is answered on
the approval page, as before (the click is refused `RESPONSE_INVALID` and the user is sent the
page); so is one whose form does not fit Slack's limits (`approve_modal` is None).

One input block per editable path (`edit.<path>`, pre-filled with the proposed value: a string
as it is, any other value as JSON, optional) and per response property (`response.<name>`: an
enum a `static_select`, a boolean a one-box `checkboxes` whose unticked state answers false, an
integer or number a `number_input`, a string a `plain_text_input`; optional unless required).
The values are read into edits and a response by the functions the approval page uses
(`approvals.request_form_values`), and the decision service's refusals of them are mapped back
to the blocks (`inline_errors`). Pure: no queries but `request_asking`, no Slack calls.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from approvals.models import ApprovalRequest
from approvals.request_form_values import (
    choice_value,
    edit_text,
    edits_from_texts,
    response_from_values,
)
from approvals.request_schemas import FormField, form_fields
from channels.actions import CardAction
from channels.cards import clip
from channels.interactions.http import dig, listed
from channels.models import ChannelConnection

APPROVE_CALLBACK = "fg_approve"
EDIT_PREFIX = "edit."
RESPONSE_PREFIX = "response."
# Slack's limits of a modal (it refuses the whole view beyond them, and the user would only
# learn that the form could not be opened): blocks per view, characters of a block id, of a
# text input's value, of an option's value, options per select.
MAX_BLOCKS = 100
MAX_BLOCK_ID = 255
MAX_INPUT = 3000
MAX_OPTION_VALUE = 150
MAX_OPTIONS = 100
MAX_ERROR = 500  # characters of one inline error (the service's messages joined)


def request_asking(verified: Sequence[ChannelConnection], gate_id: str) -> ApprovalRequest | None:
    """The approval request gate opening `gate_id` was opened for, in a workspace of a
    connection that verified the interaction (one query; None for a flow's gate)."""
    return (
        ApprovalRequest.objects.select_related("gate")
        .filter(gate_id=gate_id, workspace_id__in=[c.workspace_id for c in verified])
        .first()
    )


def takes_form(request: ApprovalRequest) -> bool:
    """Whether approving `request` from Slack asks for edits or a response first."""
    fields = form_fields(request.response_schema)
    if request.response_schema is not None and fields is None:
        return False  # answered as JSON on the approval page
    return bool(_paths(request)) or fields is not None


def approve_modal(request: ApprovalRequest, action: CardAction) -> dict[str, Any] | None:
    """The modal approving `request` (the gate opening `action` names), or None when it does
    not fit Slack's limits (the approval page takes any form)."""
    fields = form_fields(request.response_schema) or []
    inputs = [_edit_input(request, path) for path in _paths(request)]
    inputs += [_response_input(field) for field in fields]
    if any(block is None for block in inputs) or len(inputs) + 1 > MAX_BLOCKS:
        return None
    lines = [f"{request.action}: {request.summary}"]
    if _paths(request):
        lines.append("Change what you approve below; what you leave is approved as asked.")
    heading = {"type": "plain_text", "text": clip("\n".join(lines), 3000)}
    return {
        "type": "modal",
        "callback_id": APPROVE_CALLBACK,
        "title": {"type": "plain_text", "text": "Approve"},
        "submit": {"type": "plain_text", "text": "Approve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"gate": action.gate_id}),
        "blocks": [
            {"type": "section", "text": heading},
            *inputs,
        ],
    }


def submitted(request: ApprovalRequest, values: Any) -> tuple[dict[str, Any] | None, Any]:
    """(edits, response) from a submitted modal's `view.state.values` (None for no edits and
    for a request that asks for no response). A block the view lacks was not submitted: its
    path stays as proposed, its property is left out."""
    texts = {}
    for path in _paths(request):
        element = _element(values, EDIT_PREFIX + path)
        if element is not None:
            texts[path] = _text(element.get("value")) or ""  # a cleared input: empty text
    edits = edits_from_texts(request.arguments, _paths(request), texts)
    fields = form_fields(request.response_schema)
    if fields is None:
        return edits, None
    answers = {
        field.name: _answer(field, _element(values, RESPONSE_PREFIX + field.name))
        for field in fields
    }
    return edits, response_from_values(fields, answers)


def inline_errors(fields: dict[str, list[str]], blocks: Sequence[str]) -> dict[str, str]:
    """The decision service's refusal `fields` (`arguments.amount`, `response.channel`,
    `response` …) as Slack's inline errors on the submitted view's input `blocks`: each on
    the block of its value, else (a whole-object problem, e.g. a missing required property)
    on the first block of its kind, else the first block, naming what it is about."""
    errors: dict[str, list[str]] = {}
    for key, messages in fields.items():
        block, exact = _block_of(key, blocks)
        if block is None:
            continue
        said = " ".join(messages) if exact else f"{key or 'form'}: {' '.join(messages)}"
        errors.setdefault(block, []).append(said)
    return {block: clip(" ".join(said), MAX_ERROR) for block, said in errors.items()}


# --- building ----------------------------------------------------------------------------------


def _paths(request: ApprovalRequest) -> list[str]:
    return [str(path) for path in (request.editable or {}).get("paths") or ()]


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool, hint=""):
    if len(block_id) > MAX_BLOCK_ID:
        return None
    block = {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": clip(label, 2000)},
        "element": {**element, "action_id": block_id},
    }
    if hint:
        block["hint"] = {"type": "plain_text", "text": clip(hint, 2000)}
    return block


def _edit_input(request: ApprovalRequest, path: str) -> dict[str, Any] | None:
    text = edit_text(request.arguments, path)
    if len(text) > MAX_INPUT:
        return None
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "max_length": MAX_INPUT,
        "multiline": "\n" in text or len(text) > 150 or text.startswith(("{", "[")),
    }
    if text:
        element["initial_value"] = text
    return _input(EDIT_PREFIX + path, path, element, optional=True)


def _response_input(field: FormField) -> dict[str, Any] | None:
    block_id = RESPONSE_PREFIX + field.name
    optional = not field.required
    if field.kind == "enum":
        options = [_option(str(choice), choice_value(choice)) for choice in field.choices]
        if len(options) > MAX_OPTIONS or any(len(o["value"]) > MAX_OPTION_VALUE for o in options):
            return None
        element = {"type": "static_select", "options": options}
    elif field.kind == "boolean":
        # Unticked is an answer (false), as on the page: never required.
        element, optional = {"type": "checkboxes", "options": [_option("Yes", "true")]}, True
    elif field.kind in ("integer", "number"):
        element = {"type": "number_input", "is_decimal_allowed": field.kind == "number"}
    else:
        element = {"type": "plain_text_input", "max_length": MAX_INPUT}
    return _input(block_id, field.label, element, optional=optional, hint=field.description)


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": clip(text, 75)}, "value": value}


# --- reading -----------------------------------------------------------------------------------


def _element(values: Any, block_id: str) -> dict[str, Any] | None:
    """The submitted state of the input in `block_id` (its action id is the block id)."""
    element = dig(values, block_id, block_id, default=None)
    return element if isinstance(element, dict) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _answer(field: FormField, element: dict[str, Any] | None) -> Any:
    """A response property's value as `response_from_values` takes it."""
    if element is None:
        return None
    if field.kind == "enum":
        return _text(dig(element, "selected_option", "value", default=None))
    if field.kind == "boolean":
        return bool(listed(element.get("selected_options")))
    text = _text(element.get("value"))
    if field.kind in ("integer", "number") and text:
        return _number(text, int if field.kind == "integer" else float)
    return text


def _number(text: str, kind: Callable[[str], Any]) -> Any:
    """`text` as a number, or as it is when it is not one (the response schema refuses it)."""
    try:
        value = kind(text.strip())
    except ValueError:
        return text
    return value if not isinstance(value, float) or math.isfinite(value) else text


def _block_of(key: str, blocks: Sequence[str]) -> tuple[str | None, bool]:
    """(block, whether it is the block of exactly that value) for a refusal's field key."""
    kind, _, rest = key.partition(".")
    prefix = {"arguments": EDIT_PREFIX, "response": RESPONSE_PREFIX}.get(kind)
    if prefix is not None and rest:
        if kind == "response":
            rest = rest.split(".")[0]  # a property of the flat response object
        for block in blocks:  # the input of that value, or of a value containing it
            path = block.removeprefix(prefix)
            if block.startswith(prefix) and (rest == path or rest.startswith(path + ".")):
                return block, True
        for block in blocks:  # an input of a value inside it
            if block.startswith(prefix + rest + "."):
                return block, False
    if prefix is not None:
        for block in blocks:
            if block.startswith(prefix):
                return block, False
    return (blocks[0] if blocks else None), False
