"""A reviewer's edits of an approval request's arguments: which paths may change, the merged
arguments and the diff a decision records.

Edits are a JSON object merged into the proposed arguments (objects merge key by key, any other
value replaces), so a reviewer may send only the fields they change or the whole object. Every
changed value must lie at or under one of `editable.paths` (dotted paths such as `amount` or
`payee.iban`), and the merged arguments must satisfy `editable.schema`. Pure functions; the
decision service (`approvals.request_answers`) applies them under the run's lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from governance.errors import InvalidRequest
from governance.json_schemas import violations

NOT_EDITABLE = "APPROVAL_REQUEST_EDIT_NOT_ALLOWED"
EDIT_INVALID = "APPROVAL_REQUEST_EDIT_INVALID"
MAX_PATHS = 100


def merged(proposed: Any, edits: Any) -> Any:
    """`edits` merged into `proposed` (objects key by key, other values replaced)."""
    if isinstance(proposed, Mapping) and isinstance(edits, Mapping):
        result = dict(proposed)
        for key, value in edits.items():
            result[key] = merged(proposed[key], value) if key in proposed else value
        return result
    return edits


def diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """The changed leaves between two JSON values: `{path, op, from, to}`, `op` one of
    `add`, `replace` (edits never remove a key)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        changes = []
        for key in after:
            where = f"{path}.{key}" if path else str(key)
            if key not in before:
                changes.append({"path": where, "op": "add", "from": None, "to": after[key]})
            else:
                changes += diff(before[key], after[key], where)
        return changes
    if before == after and type(before) is type(after):
        return []
    return [{"path": path, "op": "replace", "from": before, "to": after}]


def _covered(path: str, editable_paths: list[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in editable_paths)


def apply_edits(
    *, proposed: dict[str, Any], edits: Any, editable: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(approved arguments, diff) for `edits` of `proposed`; 400 naming every change outside
    the editable paths (`APPROVAL_REQUEST_EDIT_NOT_ALLOWED`) or every violation of the editable
    schema (`APPROVAL_REQUEST_EDIT_INVALID`). No edits: the proposed arguments, no diff."""
    if edits is None:
        return proposed, []
    if not isinstance(edits, Mapping):
        raise InvalidRequest(
            "arguments must be an object",
            code=EDIT_INVALID,
            fields={"arguments": ["Must be an object."]},
        )
    approved = merged(proposed, edits)
    changes = diff(proposed, approved)
    if not changes:
        return proposed, []
    paths = list((editable or {}).get("paths") or ())
    outside = [change["path"] for change in changes if not _covered(change["path"], paths)]
    if outside:
        raise InvalidRequest(
            "Only the request's editable paths may be changed"
            + (f" ({', '.join(paths)})" if paths else ": this request is not editable"),
            code=NOT_EDITABLE,
            fields={f"arguments.{p}": ["Not editable."] for p in outside},
        )
    schema = (editable or {}).get("schema")
    problems = violations(schema, approved, "arguments") if schema else {}
    if problems:
        raise InvalidRequest(
            "The edited arguments do not satisfy the request's editable schema",
            code=EDIT_INVALID,
            fields=problems,
        )
    return approved, changes
