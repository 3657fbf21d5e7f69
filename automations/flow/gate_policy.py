"""Gate policy: who may decide a gate (reviewer eligibility), its risk tier, data classes and
quorum (how many distinct people, and from which workspace groups, must approve)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automations.flow.original_gates import ORIGINAL_APPROVAL_SOURCE, original_approval
from automations.flow.problems import Report
from automations.flow.values import JSON, clean, in_range, reject_unknown_keys, text
from governance.models import DATA_CLASSES

REVIEWER_ELIGIBILITY = ("none", "any_human_reviewer", "elevated_reviewer")

_POLICY_KEYS = frozenset({"reviewer_eligibility", "risk_tier", "data_classes", "quorum"})
_QUORUM_KEYS = frozenset({"required_approvals", "groups"})
_QUORUM_GROUP_KEYS = frozenset({"group", "approvals"})
# Far above any real two-person (or n-person) rule; keeps a typo from parking every run.
MAX_REQUIRED_APPROVALS = 50
MAX_QUORUM_GROUPS = 20
MAX_GROUP_NAME = 150  # Django's auth group name length

# (field path, object) pairs to look policy keys up in, in priority order.
PolicySources = list[tuple[str, Mapping[str, Any]]]


def policy_sources(
    node: Mapping[str, Any], raw: Mapping[str, Any], path: str, report: Report
) -> PolicySources:
    """Where policy keys are looked up, in priority order: `gate.policy`, then the original's
    `metadata.approval.metadata` at `/gate`, `/policy` and its top level, so imported flows keep
    their governance."""
    sources: PolicySources = []
    policy = raw.get("policy") if path == "gate" else None
    if isinstance(policy, Mapping):
        reject_unknown_keys(policy, _POLICY_KEYS, "gate.policy", report)
        sources.append(("gate.policy", policy))
    elif policy is not None:
        report("gate.policy", "must be an object")
    gate_metadata = original_approval(node).get("metadata")
    if isinstance(gate_metadata, Mapping):
        base = f"{ORIGINAL_APPROVAL_SOURCE}.metadata"
        for key in ("gate", "policy"):
            if isinstance(gate_metadata.get(key), Mapping):
                sources.append((f"{base}.{key}", gate_metadata[key]))
        sources.append((base, gate_metadata))
    return sources


def _first_hit(sources: PolicySources, key: str) -> tuple[str, Any]:
    for path, source in sources:
        if source.get(key) is not None:
            return f"{path}.{key}", source[key]
    return key, None


def parse_policy(sources: PolicySources, report: Report) -> JSON:
    """`{reviewer_eligibility, risk_tier, data_classes}` with defaults none/None/[], plus
    `quorum` when the gate asks for more than one approval (absent otherwise, so a gate
    without a quorum keeps the policy it always had)."""
    path, eligibility = _first_hit(sources, "reviewer_eligibility")
    eligibility = "none" if eligibility is None else clean(eligibility)
    if eligibility not in REVIEWER_ELIGIBILITY:
        report(path, f"must be one of {', '.join(REVIEWER_ELIGIBILITY)}")
    path, risk_tier = _first_hit(sources, "risk_tier")
    if risk_tier is not None and not text(risk_tier):
        report(path, "must be a non-empty string")
    path, classes = _first_hit(sources, "data_classes")
    data_classes = _data_classes(classes, path, report)
    path, single = _first_hit(sources, "data_class")  # the original's single-class form
    if single is not None:
        data_classes += [c for c in _data_classes([single], path, report) if c not in data_classes]
    policy: JSON = {
        "reviewer_eligibility": eligibility,
        "risk_tier": clean(risk_tier) if text(risk_tier) else None,
        "data_classes": data_classes,
    }
    path, quorum = _first_hit(sources, "quorum")
    parsed = parse_quorum(quorum, path, report)
    if parsed is not None:
        policy["quorum"] = parsed
    return policy


def parse_quorum(value: Any, path: str, report: Report) -> JSON | None:
    """`{required_approvals: M, groups: [{group, approvals}]}` normalised, or None when it
    asks for nothing more than today's single approval (absent, or M = 1 without groups).

    M counts distinct people; a group's `approvals` count the approvers who belong to that
    workspace group (one person may count for several groups), and M is raised to at least
    the largest group's count so the numbers shown always add up. Whether the groups exist and
    have enough eligible members is a save-time warning (`approvals.quorum`), not an error:
    groups and grants change after the flow is saved."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        report(path, "must be an object {required_approvals, groups}")
        return None
    reject_unknown_keys(value, _QUORUM_KEYS, path, report)
    required = value.get("required_approvals", 1)
    if not in_range(required, low=1, high=MAX_REQUIRED_APPROVALS, integer=True):
        report(
            f"{path}.required_approvals",
            f"must be an integer from 1 to {MAX_REQUIRED_APPROVALS}",
        )
        return None
    groups = _quorum_groups(value.get("groups"), f"{path}.groups", report)
    if groups is None:
        return None
    required = max([required, *(g["approvals"] for g in groups)])
    if required == 1 and not groups:
        return None
    return {"required_approvals": required, "groups": groups}


def _quorum_groups(value: Any, path: str, report: Report) -> list[JSON] | None:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_QUORUM_GROUPS:
        report(path, f"must be a list of at most {MAX_QUORUM_GROUPS} {{group, approvals}}")
        return None
    groups: list[JSON] = []
    for index, entry in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(entry, Mapping):
            report(where, "must be an object {group, approvals}")
            return None
        reject_unknown_keys(entry, _QUORUM_GROUP_KEYS, where, report)
        name, approvals = entry.get("group"), entry.get("approvals", 1)
        if not text(name) or len(name.strip()) > MAX_GROUP_NAME:
            report(f"{where}.group", f"must be a group name of 1 to {MAX_GROUP_NAME} characters")
            return None
        if not in_range(approvals, low=1, high=MAX_REQUIRED_APPROVALS, integer=True):
            report(f"{where}.approvals", f"must be an integer from 1 to {MAX_REQUIRED_APPROVALS}")
            return None
        if any(g["group"] == name.strip() for g in groups):
            report(f"{where}.group", f"names {name.strip()!r} twice")
            return None
        groups.append({"group": name.strip(), "approvals": approvals})
    return groups


def _data_classes(value: Any, path: str, report: Report) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        report(path, "must be a list of data classes")
        return []
    classes: list[str] = []
    for label in value:
        data_class = clean(label)
        if data_class not in DATA_CLASSES:
            report(path, f"unknown data class {label!r}; allowed: {', '.join(DATA_CLASSES)}")
        elif data_class not in classes:
            classes.append(data_class)
    return classes
