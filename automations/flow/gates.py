"""Approval gates: which nodes are gates and the normalised config a gate is opened with.

A `kind: approval` node without any gate config gets all three decisions; a gate's
`rework_targets` require `rework` among its decisions (otherwise the targets are dead config and a
decision outside the offered set is refused at decide time, SPEC §10.3). Original-style gates
follow the original instead (see `original_gates`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automations.flow.gate_expiry import expiry_source, parse_expiry
from automations.flow.gate_policy import parse_policy, policy_sources
from automations.flow.original_gates import (
    ORIGINAL_APPROVAL_SOURCE,
    ORIGINAL_DECISION_ALIASES,
    ORIGINAL_DEFAULT_DECISIONS,
    has_original_approval_marker,
    original_approval,
)
from automations.flow.problems import Problems, Report
from automations.flow.values import (
    JSON,
    clean,
    mapping,
    node_label,
    optional_string,
    reject_unknown_keys,
    text,
)

DECISIONS = ("approve", "rework", "cancel")

_GATE_KEYS = frozenset({"decisions", "rework_targets", "instructions", "expiry", "policy"})


def is_approval_node(node: Mapping[str, Any]) -> bool:
    """True for `kind: approval` and for nodes carrying any of the original's approval markers.

    Markers (original `is_automation_approval_node`): `stage_kind: approval`,
    `metadata.stage_kind: approval` (case-insensitive), `metadata.builder.task_class:
    human_decision_gate`, or a `metadata.approval` object with `allowed_decisions`, `decisions`
    or `require_explicit_decision: true`. Safe on unvalidated input.
    """
    return clean(node.get("kind")) == "approval" or has_original_approval_marker(node)


def gate_config(node: Mapping[str, Any]) -> JSON:
    """The normalised gate of an approval node, as the engine opens it and surfaces show it.

    Returns `{decisions, rework_targets, instructions, title, expiry, policy}`. The config comes
    from `node.gate`, or from `metadata.approval` for original-style nodes; policy keys are also
    looked up where the original authored them (`metadata.approval.metadata` at `/gate/…`,
    `/policy/…`, then top level; first hit wins) so imported flows keep their governance.
    `title` falls back from `metadata.builder.title` to `objective` to the node id, and
    `instructions` to `objective`. `expiry` is None when unset (the deployment default applies).
    Raises `InvalidFlow` when the gate config itself is invalid; rework targets are only checked
    against the flow by `validate_automation`.
    """
    problems = Problems()
    _, gate = _read_gate(node, problems.reporter(node_label(node.get("node_id"))))
    problems.raise_if_any()
    return {
        "decisions": gate["decisions"],
        "rework_targets": gate["rework_targets"],
        "instructions": gate["instructions"] or text(node.get("objective")),
        "title": _title(node),
        "expiry": gate["expiry"],
        "policy": gate["policy"],
    }


def normalise_gate_into(node: JSON, node_ids: set[str], report: Report) -> None:
    """Check the gate against the flow; store normalised decisions on new-style gates.

    Original-style config (`metadata.approval`) is left as authored; `gate_config` maps it on
    every read, so the stored spec stays what the author wrote.
    """
    path, gate = _read_gate(node, report)
    for target in gate["rework_targets"]:
        if target == node.get("node_id"):
            report(f"{path}.rework_targets", "a gate cannot be its own rework target")
        elif target not in node_ids:
            report(f"{path}.rework_targets", f"unknown node {target!r}")
    if path == "gate":
        node["gate"] = {**mapping(node.get("gate")), "decisions": gate["decisions"]}


def _read_gate(node: Mapping[str, Any], report: Report) -> tuple[str, JSON]:
    """Parse the gate config; returns where it came from (`gate` or `metadata.approval`) and
    `{decisions, rework_targets, instructions, expiry, policy}` (instructions without fallback)."""
    path, raw = _gate_source(node, report)
    original = path == ORIGINAL_APPROVAL_SOURCE
    decisions = _parse_decisions(raw, path, original, report)
    rework_targets = _parse_rework_targets(raw.get("rework_targets"), path, report)
    if rework_targets and decisions and "rework" not in decisions:
        if original:
            decisions.append("rework")
        else:
            report(f"{path}.decisions", "must include 'rework' when rework_targets are given")
    optional_string(raw, "instructions", f"{path}.", report)
    expiry_path, expiry, unit = expiry_source(raw, path, original)
    return path, {
        "decisions": decisions,
        "rework_targets": rework_targets,
        "instructions": text(raw.get("instructions")),
        "expiry": parse_expiry(expiry, expiry_path, unit, report),
        "policy": parse_policy(policy_sources(node, raw, path, report), report),
    }


def _gate_source(node: Mapping[str, Any], report: Report) -> tuple[str, Mapping[str, Any]]:
    gate = node.get("gate")
    if gate is not None:
        if not isinstance(gate, Mapping):
            report("gate", "must be an object")
            return "gate", {}
        reject_unknown_keys(gate, _GATE_KEYS, "gate", report)
        return "gate", gate
    approval = original_approval(node)
    if approval:
        return ORIGINAL_APPROVAL_SOURCE, approval
    return "gate", {}


def _parse_decisions(
    raw: Mapping[str, Any], path: str, original: bool, report: Report
) -> list[str]:
    """Decisions trimmed, lowercased and de-duplicated; absent means the default set.

    Every unknown label is reported, then [] is returned so the rework check stays quiet.
    """
    key = (
        "allowed_decisions"
        if original and raw.get("allowed_decisions") is not None
        else "decisions"
    )
    value = raw.get(key)
    if value is None:
        return list(ORIGINAL_DEFAULT_DECISIONS if original else DECISIONS)
    if not isinstance(value, list) or not value:
        report(f"{path}.{key}", "must be a non-empty list of approve, rework, cancel")
        return []
    decisions: list[str] = []
    unknown = False
    for label in value:
        decision = clean(label)
        if original:
            decision = ORIGINAL_DECISION_ALIASES.get(decision, decision)
        if decision not in DECISIONS:
            unknown = True
            report(f"{path}.{key}", f"unknown decision {label!r}; allowed: approve, rework, cancel")
        elif decision not in decisions:
            decisions.append(decision)
    return [] if unknown else decisions


def _parse_rework_targets(value: Any, path: str, report: Report) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        report(f"{path}.rework_targets", "must be a list of node ids")
        return []
    targets: list[str] = []
    for target in value:
        if not isinstance(target, str) or not target:
            report(f"{path}.rework_targets", f"entries must be node ids, not {target!r}")
        elif target not in targets:
            targets.append(target)
    return targets


def _title(node: Mapping[str, Any]) -> str:
    builder = mapping(mapping(node.get("metadata")).get("builder"))
    return text(builder.get("title")) or text(node.get("objective")) or str(node.get("node_id"))
