"""The policy of an approval request, as a function of its arguments.

A request carries a gate's policy (`reviewer_eligibility`, `risk_tier`, `data_classes`, parsed
by the flow's own `parse_policy`) plus optional `rules`: each names a JSON Schema (`when`) over
the arguments and the policy that applies when the arguments satisfy it, e.g. "an `amount`
above 10 000 is `money_movement_contract` with `financial_record` data". The gate opens with
the policy of the proposed arguments; a reviewer who edits the arguments is judged by the
policy of the edited ones (`judged_policy`), so an edit cannot slip a stricter action past a
reviewer without the authority for it.

Two choices the issue left open, written down here:
- a request is always consequential: its eligibility is at least `any_human_reviewer`, so the
  requester and the humans accountable for it (`approvals.policy.SEPARATION_RULES`) never
  approve it themselves;
- an edit that changes the risk tier to another tier that needs approval raises it (tiers have
  no order of their own), and the reviewer then needs elevated review authority, as on an
  `elevated_reviewer` gate; added data classes need their clearances, as on any gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from approvals.policy import APPROVAL_REQUIRED_RISK_TIERS, GatePolicy
from automations.flow.gate_policy import REVIEWER_ELIGIBILITY, parse_policy
from automations.flow.problems import Report
from automations.flow.values import JSON, reject_unknown_keys
from governance.json_schemas import satisfies, schema_problem

POLICY_KEYS = frozenset({"reviewer_eligibility", "risk_tier", "data_classes"})
MAX_RULES = 50
# A request asks a human: the eligibility is never below this.
MIN_ELIGIBILITY = "any_human_reviewer"


def _stricter(first: str, second: str) -> str:
    return max(first, second, key=REVIEWER_ELIGIBILITY.index)


def parse_request_policy(value: Any, report: Report) -> JSON:
    """The normalised policy of a request body's `policy` (problems reported under `policy.…`):
    the gate policy keys, eligibility raised to `MIN_ELIGIBILITY`, and `rules`, each
    `{when, reviewer_eligibility, risk_tier, data_classes}` normalised the same way."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        report("policy", "must be an object")
        return {}
    reject_unknown_keys(value, {*POLICY_KEYS, "quorum", "rules"}, "policy", report)
    policy = _parse_part(value, "policy", report, keys={*POLICY_KEYS, "quorum"})
    policy["reviewer_eligibility"] = _stricter(policy["reviewer_eligibility"], MIN_ELIGIBILITY)
    rules = value.get("rules") or []
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        report("policy.rules", f"must be a list of at most {MAX_RULES} rules")
        rules = []
    policy["rules"] = []
    for index, rule in enumerate(rules):
        path = f"policy.rules.{index}"
        if not isinstance(rule, Mapping):
            report(path, "must be an object")
            continue
        reject_unknown_keys(rule, {*POLICY_KEYS, "when"}, path, report)
        problem = schema_problem(rule.get("when"))
        if problem is not None:
            report(f"{path}.when", problem)
        parsed = _parse_part(rule, path, report)
        policy["rules"].append({"when": rule.get("when"), **parsed})
    return policy


def _parse_part(
    value: Mapping[str, Any],
    path: str,
    report: Report,
    keys: frozenset[str] | set[str] = POLICY_KEYS,
) -> JSON:
    """The gate-policy `keys` of `value`, parsed as an approval node's (problems at
    `path.key`). A quorum belongs to the request as a whole, never to one of its rules."""
    return parse_policy([(path, {k: value[k] for k in keys if k in value})], report)


def effective_policy(policy: Mapping[str, Any], arguments: Any) -> JSON:
    """The gate policy of `arguments` under the request's normalised `policy`: the base, then
    every rule whose `when` the arguments satisfy, in order (the strictest eligibility, every
    data class, the last matching rule's risk tier)."""
    eligibility = policy.get("reviewer_eligibility") or MIN_ELIGIBILITY
    risk_tier = policy.get("risk_tier")
    classes = list(policy.get("data_classes") or ())
    for rule in policy.get("rules") or ():
        if not satisfies(rule["when"], arguments):
            continue
        eligibility = _stricter(eligibility, rule.get("reviewer_eligibility") or "none")
        risk_tier = rule.get("risk_tier") or risk_tier
        classes += [c for c in rule.get("data_classes") or () if c not in classes]
    effective: JSON = {
        "reviewer_eligibility": eligibility,
        "risk_tier": risk_tier,
        "data_classes": classes,
    }
    if policy.get("quorum"):
        effective["quorum"] = policy["quorum"]  # the two-person rule holds whatever the edit
    return effective


def tier_raised(proposed: Mapping[str, Any], approved: Mapping[str, Any]) -> bool:
    """Whether the approved arguments' risk tier is another tier that needs approval."""
    after = approved.get("risk_tier")
    return after != proposed.get("risk_tier") and after in APPROVAL_REQUIRED_RISK_TIERS


def judged_policy(policy: Mapping[str, Any], proposed: Any, approved: Any) -> GatePolicy:
    """The policy a reviewer approving `approved` (possibly edited from `proposed`) is judged
    by: that of the approved arguments, elevated when the edit raised the risk tier."""
    before = effective_policy(policy, proposed)
    after = effective_policy(policy, approved)
    if tier_raised(before, after):
        after["reviewer_eligibility"] = "elevated_reviewer"
    return GatePolicy.of(after)


def parse_grant_policy(value: Any, report: Report) -> JSON:
    """A standing approval's `policy` (`approvals.standing`): the most it approves in advance,
    the gate policy keys only (no `rules`, and no `quorum`: a two-person rule is never met in
    advance), eligibility raised to `MIN_ELIGIBILITY` as a request's is."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        report("policy", "must be an object")
        value = {}
    reject_unknown_keys(value, POLICY_KEYS, "policy", report)
    policy = _parse_part(value, "policy", report)
    policy["reviewer_eligibility"] = _stricter(policy["reviewer_eligibility"], MIN_ELIGIBILITY)
    return policy


def policy_within(effective: Mapping[str, Any], most: Mapping[str, Any]) -> bool:
    """Whether a request whose gate has the `effective` policy stays within `most` (a standing
    approval's): no stricter eligibility, no data class beyond `most`'s, no quorum, and a risk
    tier that is `most`'s or needs no approval (tiers have no order of their own)."""
    if effective.get("quorum"):
        return False
    rank = REVIEWER_ELIGIBILITY.index
    if rank(effective.get("reviewer_eligibility") or "none") > rank(
        most.get("reviewer_eligibility") or "none"
    ):
        return False
    if not set(effective.get("data_classes") or ()) <= set(most.get("data_classes") or ()):
        return False
    tier = effective.get("risk_tier")
    return tier in (None, most.get("risk_tier")) or tier not in APPROVAL_REQUIRED_RISK_TIERS
