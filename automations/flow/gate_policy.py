"""Gate policy: who may decide a gate (reviewer eligibility), its risk tier and data classes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automations.flow.original_gates import ORIGINAL_APPROVAL_SOURCE, original_approval
from automations.flow.problems import Report
from automations.flow.values import JSON, clean, reject_unknown_keys, text
from governance.models import DATA_CLASSES

REVIEWER_ELIGIBILITY = ("none", "any_human_reviewer", "elevated_reviewer")

_POLICY_KEYS = frozenset({"reviewer_eligibility", "risk_tier", "data_classes"})

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
    """`{reviewer_eligibility, risk_tier, data_classes}` with defaults none/None/[]."""
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
    return {
        "reviewer_eligibility": eligibility,
        "risk_tier": clean(risk_tier) if text(risk_tier) else None,
        "data_classes": data_classes,
    }


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
