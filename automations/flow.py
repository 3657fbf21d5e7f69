"""Automation specs: validation, normalisation and the graph helpers the run engine reuses.

Pure functions over the JSON-shaped spec (no database), so the API, the admin, the seed command and
the engine judge a flow the same way, and a run's snapshot can be re-read without a query.

Validation collects every problem before raising one `InvalidFlow` (400,
`AUTOMATION_V2_INVALID_FLOW`) whose body names the offending nodes and fields, so a client can fix
a flow in one round trip. Each error is `{"node_id": str | None, "field": str, "message": str}`;
`field` is relative to the node for node problems (`gate.decisions`) and to the spec otherwise
(`execution.max_parallel`, `agents[0].agent_id`, `handoff_config.inbox_dir`).

Decisions made here (the spec leaves them open):
- An explicit `kind` of `agent`/`http` on a node that carries one of the original's approval
  markers is refused: the original would silently treat it as a gate.
- A `kind: approval` node without any gate config gets all three decisions; a gate's
  `rework_targets` require `rework` among its decisions (otherwise the targets are dead config and
  a decision outside the offered set is refused at decide time, SPEC §10.3). Original-style gates
  (`metadata.approval`) keep the original's behaviour instead: labels are mapped
  (reject/deny → cancel, changes/request_changes/ask_changes → rework), the default is
  approve + cancel, and `rework` is appended when rework targets are given.
- The new-style objects (`gate`, `gate.expiry`, `gate.policy`, `retry`, `http`, `handoff_config`)
  refuse unknown keys, so a typo such as `expires_after` cannot silently fall back to a default.
  `metadata`, `execution` and agents stay free-form apart from the checked keys.
- Handoff dirs must lie strictly below the workspace root and be distinct from one another.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from governance.errors import InvalidFlow
from governance.models import DATA_CLASSES

JSON = dict[str, Any]
# Reports one problem of the thing being checked: (field, message).
Report = Callable[[str, str], None]

NODE_KINDS = ("agent", "http", "approval")
DECISIONS = ("approve", "rework", "cancel")
ON_EXPIRY = ("cancel", "remind", "escalate")
REVIEWER_ELIGIBILITY = ("none", "any_human_reviewer", "elevated_reviewer")
MAX_ID_LENGTH = 128
MAX_PARALLEL = 16
MAX_ATTEMPTS = 20
MAX_BACKOFF_S = 3600
MAX_HTTP_TIMEOUT_S = 300

HANDOFF_DEFAULTS: JSON = {
    "inbox_dir": "shared/handoffs/inbox",
    "approved_dir": "shared/handoffs/approved",
    "archived_dir": "shared/handoffs/archived",
    "auto_approve": True,
}
# handoff_dirs() key → handoff_config key.
HANDOFF_DIR_KEYS = {"inbox": "inbox_dir", "approved": "approved_dir", "archived": "archived_dir"}

_GATE_KEYS = frozenset({"decisions", "rework_targets", "instructions", "expiry", "policy"})
_EXPIRY_KEYS = frozenset({"expires_after_s", "on_expiry", "remind_every_s", "escalate_to"})
_POLICY_KEYS = frozenset({"reviewer_eligibility", "risk_tier", "data_classes"})
_RETRY_KEYS = frozenset({"max_attempts", "backoff_s"})
_HTTP_KEYS = frozenset({"url", "method", "timeout_s"})
ORIGINAL_APPROVAL_SOURCE = "metadata.approval"
# The original's default labels were ["Approve", "Reject"]; reject maps to cancel.
_ORIGINAL_DEFAULT_DECISIONS = ("approve", "cancel")
_ORIGINAL_DECISION_ALIASES = {
    "reject": "cancel",
    "deny": "cancel",
    "changes": "rework",
    "request_changes": "rework",
    "ask_changes": "rework",
}
# Where the original kept an expiry policy (in milliseconds) inside `metadata.approval`.
_ORIGINAL_EXPIRY_PATHS = (
    ("expiry_policy",),
    ("gate_expiry_policy",),
    ("policy", "expiry"),
    ("policy", "gate_expiry"),
)
_USERNAME = re.compile(r"[\w.@+-]{1,150}")


# --- public API ---------------------------------------------------------------------------------


def validate_automation(
    *,
    flow: Any,
    agents: Any,
    execution: Any,
    workspace_root: Any,
    handoff_config: Any,
) -> JSON:
    """Check a whole automation spec and return it normalised, or raise `InvalidFlow`.

    Called on create and on every update with the full merged spec, because a change to one part
    (an agent removed, a node renamed) can invalidate another. The inputs are not mutated.
    Returns `{"flow": {"nodes": [...]}, "agents": [...], "execution": {...},
    "handoff_config": {...} | None}`.
    """
    flow, agents, execution, handoff_config = copy.deepcopy(
        (flow, agents, execution, handoff_config)
    )
    problems = _Problems()
    agent_list, agent_ids = _normalise_agents(agents, problems)
    raw_nodes = _flow_nodes(flow, problems)
    node_ids = _check_node_ids(raw_nodes, problems)
    nodes = [_normalise_node(node, node_ids, agent_ids, problems) for _, node in raw_nodes]
    _check_cycles(nodes, problems)
    result = {
        "flow": {**flow, "nodes": nodes} if isinstance(flow, Mapping) else {"nodes": nodes},
        "agents": agent_list,
        "execution": _normalise_execution(execution, problems),
        "handoff_config": _normalise_handoff(workspace_root, handoff_config, problems),
    }
    problems.raise_if_any()
    return result


def is_approval_node(node: Mapping[str, Any]) -> bool:
    """True for `kind: approval` and for nodes carrying any of the original's approval markers.

    Markers (original `is_automation_approval_node`): `stage_kind: approval`,
    `metadata.stage_kind: approval` (case-insensitive), `metadata.builder.task_class:
    human_decision_gate`, or a `metadata.approval` object with `allowed_decisions`, `decisions`
    or `require_explicit_decision: true`. Safe on unvalidated input.
    """
    return _clean(node.get("kind")) == "approval" or _has_original_approval_marker(node)


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
    problems = _Problems()
    _, gate = _read_gate(node, problems.reporter(_label(node.get("node_id"))))
    problems.raise_if_any()
    return {
        "decisions": gate["decisions"],
        "rework_targets": gate["rework_targets"],
        "instructions": gate["instructions"] or _text(node.get("objective")),
        "title": _title(node),
        "expiry": gate["expiry"],
        "policy": gate["policy"],
    }


def descendants(nodes: Iterable[Mapping[str, Any]], roots: Iterable[str]) -> set[str]:
    """`roots` plus every node that transitively depends on one of them.

    The reset set of rework, recover, repair and task retry (original
    `collect_automation_descendants`): roots are included even when they are not in the flow.
    """
    dependents: dict[str, list[str]] = {}
    for node in nodes:
        for dependency in node.get("depends_on") or ():
            dependents.setdefault(dependency, []).append(node["node_id"])
    found = set(roots)
    queue = deque(found)
    while queue:
        for child in dependents.get(queue.popleft(), ()):
            if child not in found:
                found.add(child)
                queue.append(child)
    return found


def handoff_dirs(workspace_root: Any, handoff_config: Any = None) -> dict[str, Path]:
    """The resolved `inbox`/`approved`/`archived` dirs of an automation, checked again at use.

    Re-resolving when handoffs are read or moved (not only at save) matters because a symlink
    created after validation could otherwise lead outside the workspace root (SPEC §10.10).
    `handoff_config=None` means the defaults, as the original's `effective_handoff_config`.
    Raises `InvalidFlow` naming the offending `handoff_config.*` field or `workspace_root`.
    """
    problems = _Problems()
    report = problems.reporter(None)
    config = _handoff_config(handoff_config, report)
    dirs = _resolve_handoff_dirs(workspace_root, config, report)
    problems.raise_if_any()
    return dirs


# --- error collection ---------------------------------------------------------------------------


@dataclass
class _Problems:
    """Every problem found, so one 400 lists them all instead of one per round trip."""

    errors: list[JSON] = field(default_factory=list)

    def add(self, node_id: str | None, field_name: str, message: str) -> None:
        self.errors.append({"node_id": node_id, "field": field_name, "message": message})

    def reporter(self, node_id: str | None) -> Report:
        return lambda field_name, message: self.add(node_id, field_name, message)

    def raise_if_any(self) -> None:
        if self.errors:
            nodes = sorted({error["node_id"] for error in self.errors if error["node_id"]})
            raise InvalidFlow(_summary(self.errors), nodes=nodes, errors=self.errors)


def _summary(errors: list[JSON]) -> str:
    def describe(error: JSON) -> str:
        where = f"node {error['node_id']!r} " if error["node_id"] else ""
        return f"{where}{error['field']}: {error['message']}"

    shown = "; ".join(describe(error) for error in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"Invalid automation flow: {shown}{more}"


# --- small value helpers ------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """Trimmed and lowercased when a string; other values pass through for the type checks."""
    return value.strip().lower() if isinstance(value, str) else value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _label(node_id: Any) -> str | None:
    """The id to name a node by in errors; None when it has no usable id."""
    return node_id if isinstance(node_id, str) and node_id else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _in_range(
    value: Any, *, low: float, high: float = math.inf, integer: bool = False, open_low: bool = False
) -> bool:
    """Range check that refuses booleans (JSON `true` is an int in Python) and NaN/inf."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        return False
    above_low = low < value if open_low else low <= value
    return above_low and value <= high


def _id_problem(value: Any) -> str | None:
    """Why `value` is not a usable node/agent id (ids appear in URLs, cards and logs)."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters"
    if not value.isprintable() or any(char.isspace() for char in value):
        return "must not contain whitespace or control characters"
    return None


def _reject_unknown_keys(
    value: Mapping[str, Any], allowed: Collection[str], path: str, report: Report
) -> None:
    for key in sorted(set(value) - set(allowed), key=str):
        report(f"{path}.{key}", f"unknown key; expected one of {', '.join(sorted(allowed))}")


def _optional_string(value: Mapping[str, Any], key: str, path: str, report: Report) -> None:
    if value.get(key) is not None and not isinstance(value[key], str):
        report(f"{path}{key}", "must be a string")


# --- agents, flow shape, node ids ---------------------------------------------------------------


def _normalise_agents(agents: Any, problems: _Problems) -> tuple[list[JSON], set[str]]:
    """Agent profiles as given, checked; returns them and the ids agent nodes may reference."""
    if agents is None:
        return [], set()
    if not isinstance(agents, list):
        problems.add(None, "agents", "must be a list of agent objects")
        return [], set()
    profiles: list[JSON] = []
    seen: set[str] = set()
    report = problems.reporter(None)
    for index, agent in enumerate(agents):
        path = f"agents[{index}]"
        if not isinstance(agent, Mapping):
            report(path, "must be an object")
            continue
        _check_agent_id(agent.get("agent_id"), seen, f"{path}.agent_id", report)
        if agent.get("model_policy") is not None and not isinstance(agent["model_policy"], Mapping):
            report(f"{path}.model_policy", "must be an object")
        for key in ("template_id", "display_name"):
            _optional_string(agent, key, f"{path}.", report)
        profiles.append(dict(agent))
    return profiles, seen


def _check_agent_id(agent_id: Any, seen: set[str], path: str, report: Report) -> None:
    problem = _id_problem(agent_id)
    if problem:
        report(path, problem)
    elif agent_id in seen:
        report(path, f"duplicate agent_id {agent_id!r}")
    else:
        seen.add(agent_id)


def _flow_nodes(flow: Any, problems: _Problems) -> list[tuple[int, Mapping[str, Any]]]:
    """The node objects of the flow with their positions (used to point at id-less nodes)."""
    if not isinstance(flow, Mapping):
        problems.add(None, "flow", "must be an object with a 'nodes' list")
        return []
    nodes = flow.get("nodes")
    if not isinstance(nodes, list):
        problems.add(None, "flow.nodes", "must be a list of node objects")
        return []
    found = []
    for index, node in enumerate(nodes):
        if isinstance(node, Mapping):
            found.append((index, node))
        else:
            problems.add(None, f"flow.nodes[{index}]", "must be an object")
    return found


def _check_node_ids(nodes: list[tuple[int, Mapping[str, Any]]], problems: _Problems) -> set[str]:
    """Report bad and duplicate ids; return every id present, so references to a node with a
    bad id are not reported a second time as unknown."""
    seen: set[str] = set()
    duplicates: set[str] = set()
    for index, node in nodes:
        node_id = node.get("node_id")
        problem = _id_problem(node_id)
        if problem:
            problems.add(_label(node_id), "node_id", f"flow.nodes[{index}]: node_id {problem}")
        elif node_id in seen and node_id not in duplicates:
            duplicates.add(node_id)
            problems.add(node_id, "node_id", f"duplicate node_id {node_id!r}")
        if _label(node_id):
            seen.add(node_id)
    return seen


# --- one node -----------------------------------------------------------------------------------


def _normalise_node(
    raw: Mapping[str, Any], node_ids: set[str], agent_ids: set[str], problems: _Problems
) -> JSON:
    """Check one node and return a copy with `kind`, `depends_on` (and gate decisions) resolved."""
    report = problems.reporter(_label(raw.get("node_id")))
    node = dict(raw)
    _check_metadata(raw, report)
    _optional_string(raw, "objective", "", report)
    _check_retry(raw.get("retry"), report)
    if raw.get("timeout_s") is not None and not _in_range(raw["timeout_s"], low=0, open_low=True):
        report("timeout_s", "must be a positive number of seconds")
    node["depends_on"] = _check_depends_on(raw, node_ids, report)
    node["kind"] = kind = _resolve_kind(raw, report)
    if kind == "agent":
        _check_agent_reference(raw.get("agent_id"), agent_ids, report)
    elif kind == "http":
        node["http"] = _normalise_http(raw.get("http"), report)
    elif kind == "approval":
        _normalise_gate_into(node, node_ids, report)
    return node


def _has_original_approval_marker(node: Mapping[str, Any]) -> bool:
    metadata = _mapping(node.get("metadata"))
    approval = metadata.get("approval")
    return (
        _clean(node.get("stage_kind")) == "approval"
        or _clean(metadata.get("stage_kind")) == "approval"
        or _clean(_mapping(metadata.get("builder")).get("task_class")) == "human_decision_gate"
        or (
            isinstance(approval, Mapping)
            and (
                "allowed_decisions" in approval
                or "decisions" in approval
                or approval.get("require_explicit_decision") is True
            )
        )
    )


def _resolve_kind(raw: Mapping[str, Any], report: Report) -> str | None:
    """Explicit kind, else approval (original markers), else agent when an agent_id is given.

    Markers win over agent_id because the original's approval nodes carry an agent_id too.
    """
    marked = _has_original_approval_marker(raw)
    if raw.get("kind") is None:
        if marked:
            return "approval"
        if raw.get("agent_id") is not None:
            return "agent"
        report("kind", "is required (agent, http or approval) when the node has no agent_id")
        return None
    kind = _clean(raw["kind"])
    if kind not in NODE_KINDS:
        report("kind", f"must be one of agent, http, approval, not {raw['kind']!r}")
        return None
    if marked and kind != "approval":
        report("kind", f"is {kind!r} but the node carries an approval marker")
        return None
    return kind


def _check_metadata(raw: Mapping[str, Any], report: Report) -> None:
    """The engine reads `metadata.builder.prompt/title`; other metadata is free-form."""
    metadata = raw.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, Mapping):
        report("metadata", "must be an object")
        return
    builder = metadata.get("builder")
    if builder is not None and not isinstance(builder, Mapping):
        report("metadata.builder", "must be an object")
    elif builder is not None:
        for key in ("prompt", "title"):
            _optional_string(builder, key, "metadata.builder.", report)


def _check_depends_on(raw: Mapping[str, Any], node_ids: set[str], report: Report) -> list[str]:
    """Upstream ids, defaulted to [] and de-duplicated; each must name another node."""
    value = raw.get("depends_on")
    if value is None:
        return []
    if not isinstance(value, list):
        report("depends_on", "must be a list of node ids")
        return []
    dependencies: list[str] = []
    for dependency in value:
        if not isinstance(dependency, str) or not dependency:
            report("depends_on", f"entries must be node ids, not {dependency!r}")
            continue
        if dependency == raw.get("node_id"):
            report("depends_on", "a node cannot depend on itself")
        elif dependency not in node_ids:
            report("depends_on", f"unknown node {dependency!r}")
        if dependency not in dependencies:
            dependencies.append(dependency)
    return dependencies


def _check_retry(value: Any, report: Report) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        report("retry", "must be an object")
        return
    _reject_unknown_keys(value, _RETRY_KEYS, "retry", report)
    attempts = value.get("max_attempts")
    if attempts is not None and not _in_range(attempts, low=1, high=MAX_ATTEMPTS, integer=True):
        report("retry.max_attempts", f"must be an integer from 1 to {MAX_ATTEMPTS}")
    backoff = value.get("backoff_s")
    if backoff is not None and not _in_range(backoff, low=0, high=MAX_BACKOFF_S):
        report("retry.backoff_s", f"must be a number of seconds from 0 to {MAX_BACKOFF_S}")


def _check_agent_reference(agent_id: Any, agent_ids: set[str], report: Report) -> None:
    if agent_id is None or agent_id == "":
        report("agent_id", "agent nodes need an agent_id")
    elif not isinstance(agent_id, str):
        report("agent_id", "must be a string")
    elif agent_id not in agent_ids:
        report("agent_id", f"unknown agent {agent_id!r}; it must be one of agents[].agent_id")


def _normalise_http(value: Any, report: Report) -> Any:
    """Shape checks only; which hosts may be called is decided at execution (allowlist)."""
    if not isinstance(value, Mapping):
        report("http", "http nodes need an 'http' object with a url")
        return value
    _reject_unknown_keys(value, _HTTP_KEYS, "http", report)
    if not _is_web_url(value.get("url")):
        report("http.url", "must be an http:// or https:// URL with a host")
    method = value.get("method")
    if method is not None and (not isinstance(method, str) or method.strip().upper() != "POST"):
        report("http.method", "only POST is supported")
    timeout = value.get("timeout_s")
    if timeout is not None and not _in_range(
        timeout, low=0, high=MAX_HTTP_TIMEOUT_S, open_low=True
    ):
        report(
            "http.timeout_s",
            f"must be a number of seconds above 0 and at most {MAX_HTTP_TIMEOUT_S}",
        )
    return {**value, "method": "POST"}


def _is_web_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url.strip())
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return False


# --- approval gates -----------------------------------------------------------------------------


def _normalise_gate_into(node: JSON, node_ids: set[str], report: Report) -> None:
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
        node["gate"] = {**_mapping(node.get("gate")), "decisions": gate["decisions"]}


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
    _optional_string(raw, "instructions", f"{path}.", report)
    expiry_path, expiry, unit = _expiry_source(raw, path, original)
    return path, {
        "decisions": decisions,
        "rework_targets": rework_targets,
        "instructions": _text(raw.get("instructions")),
        "expiry": _parse_expiry(expiry, expiry_path, unit, report),
        "policy": _parse_policy(_policy_sources(node, raw, path, report), report),
    }


def _gate_source(node: Mapping[str, Any], report: Report) -> tuple[str, Mapping[str, Any]]:
    gate = node.get("gate")
    if gate is not None:
        if not isinstance(gate, Mapping):
            report("gate", "must be an object")
            return "gate", {}
        _reject_unknown_keys(gate, _GATE_KEYS, "gate", report)
        return "gate", gate
    approval = _mapping(_mapping(node.get("metadata")).get("approval"))
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
        return list(_ORIGINAL_DEFAULT_DECISIONS if original else DECISIONS)
    if not isinstance(value, list) or not value:
        report(f"{path}.{key}", "must be a non-empty list of approve, rework, cancel")
        return []
    decisions: list[str] = []
    unknown = False
    for label in value:
        decision = _clean(label)
        if original:
            decision = _ORIGINAL_DECISION_ALIASES.get(decision, decision)
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


def _expiry_source(raw: Mapping[str, Any], path: str, original: bool) -> tuple[str, Any, str]:
    """(field path, value, unit): `expiry` in seconds, else the original's ms-based policies."""
    if raw.get("expiry") is not None or not original:
        return f"{path}.expiry", raw.get("expiry"), "s"
    for keys in _ORIGINAL_EXPIRY_PATHS:
        value: Any = raw
        for key in keys:
            value = _mapping(value).get(key)
        if value is not None:
            return ".".join((path, *keys)), value, "ms"
    return f"{path}.expiry", None, "s"


def _parse_expiry(value: Any, path: str, unit: str, report: Report) -> JSON | None:
    """`{expires_after_s, on_expiry, remind_every_s, escalate_to}` in whole seconds, or None.

    `expires_after_s` None or 0 means the deployment default (FLOWGATE_GATE_DEFAULT_EXPIRY_S).
    The original's `*_ms` fields are converted, rounding up.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        report(path, "must be an object")
        return None
    if unit == "s":
        _reject_unknown_keys(value, _EXPIRY_KEYS, path, report)
    on_expiry = "cancel" if value.get("on_expiry") is None else _clean(value["on_expiry"])
    if on_expiry not in ON_EXPIRY:
        report(
            f"{path}.on_expiry",
            f"must be one of cancel, remind, escalate, not {value['on_expiry']!r}",
        )
    expires = _seconds(value, f"expires_after_{unit}", path, unit, report, positive=False)
    remind = _seconds(value, f"remind_every_{unit}", path, unit, report, positive=True)
    if on_expiry == "remind" and value.get(f"remind_every_{unit}") is None:
        report(f"{path}.remind_every_{unit}", "is required when on_expiry is 'remind'")
    escalate_to = _usernames(value.get("escalate_to"), f"{path}.escalate_to", unit, report)
    if on_expiry == "escalate" and escalate_to == []:
        report(f"{path}.escalate_to", "needs at least one username when on_expiry is 'escalate'")
    return {
        "expires_after_s": expires,
        "on_expiry": on_expiry,
        "remind_every_s": remind,
        "escalate_to": escalate_to or [],
    }


def _seconds(
    value: Mapping[str, Any], key: str, path: str, unit: str, report: Report, *, positive: bool
) -> int | float | None:
    """A duration in seconds (None when absent); ms values are converted, rounding up."""
    amount = value.get(key)
    if amount is None:
        return None
    integer = key.startswith("expires_after") or unit == "ms"
    if not _in_range(amount, low=0, integer=integer, open_low=positive):
        kind = "an integer" if integer else "a number"
        bound = "above 0" if positive else "0 or more"
        report(f"{path}.{key}", f"must be {kind} {bound}")
        return None
    return math.ceil(amount / 1000) if unit == "ms" else amount


def _usernames(value: Any, path: str, unit: str, report: Report) -> list[str] | None:
    """Flowgate usernames to escalate to (existence is checked when escalating); None after a
    reported problem, so callers do not report the same field twice."""
    if value is None:
        return []
    if unit == "ms" and isinstance(value, str):  # the original allowed a single recipient
        value = [value]
    if not isinstance(value, list):
        report(path, "must be a list of usernames")
        return None
    names: list[str] = []
    for name in value:
        if not isinstance(name, str) or not _USERNAME.fullmatch(name.strip()):
            report(path, f"{name!r} is not a username")
            return None
        if name.strip() not in names:
            names.append(name.strip())
    return names


def _policy_sources(
    node: Mapping[str, Any], raw: Mapping[str, Any], path: str, report: Report
) -> list[tuple[str, Mapping[str, Any]]]:
    """Where policy keys are looked up, in priority order: `gate.policy`, then the original's
    `metadata.approval.metadata` at `/gate`, `/policy` and its top level."""
    sources: list[tuple[str, Mapping[str, Any]]] = []
    policy = raw.get("policy") if path == "gate" else None
    if isinstance(policy, Mapping):
        _reject_unknown_keys(policy, _POLICY_KEYS, "gate.policy", report)
        sources.append(("gate.policy", policy))
    elif policy is not None:
        report("gate.policy", "must be an object")
    gate_metadata = _mapping(_mapping(node.get("metadata")).get("approval")).get("metadata")
    if isinstance(gate_metadata, Mapping):
        base = f"{ORIGINAL_APPROVAL_SOURCE}.metadata"
        for key in ("gate", "policy"):
            if isinstance(gate_metadata.get(key), Mapping):
                sources.append((f"{base}.{key}", gate_metadata[key]))
        sources.append((base, gate_metadata))
    return sources


def _first_hit(sources: list[tuple[str, Mapping[str, Any]]], key: str) -> tuple[str, Any]:
    for path, source in sources:
        if source.get(key) is not None:
            return f"{path}.{key}", source[key]
    return key, None


def _parse_policy(sources: list[tuple[str, Mapping[str, Any]]], report: Report) -> JSON:
    """`{reviewer_eligibility, risk_tier, data_classes}` with defaults none/None/[]."""
    path, eligibility = _first_hit(sources, "reviewer_eligibility")
    eligibility = "none" if eligibility is None else _clean(eligibility)
    if eligibility not in REVIEWER_ELIGIBILITY:
        report(path, f"must be one of {', '.join(REVIEWER_ELIGIBILITY)}")
    path, risk_tier = _first_hit(sources, "risk_tier")
    if risk_tier is not None and not _text(risk_tier):
        report(path, "must be a non-empty string")
    path, classes = _first_hit(sources, "data_classes")
    data_classes = _data_classes(classes, path, report)
    path, single = _first_hit(sources, "data_class")  # the original's single-class form
    if single is not None:
        data_classes += [c for c in _data_classes([single], path, report) if c not in data_classes]
    return {
        "reviewer_eligibility": eligibility,
        "risk_tier": _clean(risk_tier) if _text(risk_tier) else None,
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
        data_class = _clean(label)
        if data_class not in DATA_CLASSES:
            report(path, f"unknown data class {label!r}; allowed: {', '.join(DATA_CLASSES)}")
        elif data_class not in classes:
            classes.append(data_class)
    return classes


def _title(node: Mapping[str, Any]) -> str:
    builder = _mapping(_mapping(node.get("metadata")).get("builder"))
    return _text(builder.get("title")) or _text(node.get("objective")) or str(node.get("node_id"))


# --- cycles -------------------------------------------------------------------------------------


def _check_cycles(nodes: list[JSON], problems: _Problems) -> None:
    """Report every node on a dependency cycle, with one concrete cycle per tangle."""
    graph = _dependency_graph(nodes)
    for component in _strongly_connected(graph):
        if len(component) < 2:  # self-dependencies are reported by _check_depends_on
            continue
        members = set(component)
        cycle = " -> ".join(_cycle_through(min(members), graph, members))
        for node_id in sorted(members):
            problems.add(
                node_id, "depends_on", f"dependency cycle: {cycle} (each depends on the next)"
            )


def _dependency_graph(nodes: list[JSON]) -> dict[str, list[str]]:
    """node id → ids it depends on, keeping only edges to other existing nodes."""
    graph: dict[str, list[str]] = {n["node_id"]: [] for n in nodes if _label(n.get("node_id"))}
    for node in nodes:
        node_id = node.get("node_id")
        if isinstance(node_id, str) and node_id in graph:
            graph[node_id] += [
                d for d in node["depends_on"] if isinstance(d, str) and d in graph and d != node_id
            ]
    return graph


def _strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so a long chain of nodes cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node_id: str) -> None:
        index[node_id] = low[node_id] = len(index)
        stack.append(node_id)
        on_stack.add(node_id)

    for start in sorted(graph):
        if start in index:
            continue
        visit(start)
        work = [(start, iter(graph[start]))]
        while work:
            node_id, edges = work[-1]
            for target in edges:
                if target not in index:
                    visit(target)
                    work.append((target, iter(graph[target])))
                    break
                if target in on_stack:
                    low[node_id] = min(low[node_id], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node_id])
                if low[node_id] == index[node_id]:
                    components.append(_pop_component(stack, on_stack, node_id))
    return components


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    component: list[str] = []
    while True:
        node_id = stack.pop()
        on_stack.discard(node_id)
        component.append(node_id)
        if node_id == root:
            return component


def _cycle_through(start: str, graph: Mapping[str, list[str]], members: set[str]) -> list[str]:
    """A shortest cycle from `start` back to itself inside one strongly connected component."""
    parents: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node_id = queue.popleft()
        for target in graph[node_id]:
            if target == start:
                path = [node_id]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [*reversed(path), start]
            if target in members and target not in parents:
                parents[target] = node_id
                queue.append(target)
    return [start]  # unreachable for a real component


# --- execution and handoffs ---------------------------------------------------------------------


def _normalise_execution(execution: Any, problems: _Problems) -> JSON:
    """Execution policy with `max_parallel` defaulted to 1; other keys kept as given."""
    if execution is None:
        return {"max_parallel": 1}
    if not isinstance(execution, Mapping):
        problems.add(None, "execution", "must be an object")
        return {"max_parallel": 1}
    max_parallel = 1 if execution.get("max_parallel") is None else execution["max_parallel"]
    if not _in_range(max_parallel, low=1, high=MAX_PARALLEL, integer=True):
        problems.add(None, "execution.max_parallel", f"must be an integer from 1 to {MAX_PARALLEL}")
    return {**execution, "max_parallel": max_parallel}


def _normalise_handoff(
    workspace_root: Any, handoff_config: Any, problems: _Problems
) -> JSON | None:
    """The handoff config with defaults filled in (None stays None), its dirs checked on disk."""
    report = problems.reporter(None)
    if handoff_config is None:
        if workspace_root not in (None, ""):
            _workspace_root(workspace_root, report)
        return None
    config = _handoff_config(handoff_config, report)
    _resolve_handoff_dirs(workspace_root, config, report)
    return config


def _handoff_config(value: Any, report: Report) -> JSON:
    """Each field defaulted individually, as the original's `AutomationHandoffConfig`."""
    if value is None:
        return dict(HANDOFF_DEFAULTS)
    if not isinstance(value, Mapping):
        report("handoff_config", "must be an object")
        return dict(HANDOFF_DEFAULTS)
    _reject_unknown_keys(value, HANDOFF_DEFAULTS.keys(), "handoff_config", report)
    given = {key: v for key, v in value.items() if key in HANDOFF_DEFAULTS and v is not None}
    config = {**HANDOFF_DEFAULTS, **given}
    if not isinstance(config["auto_approve"], bool):
        report("handoff_config.auto_approve", "must be true or false")
    return config


def _workspace_root(value: Any, report: Report) -> Path | None:
    """The real (symlink-free) workspace root, or None after reporting why it is unusable."""
    if not isinstance(value, str) or not value:
        report("workspace_root", "is required (an absolute path) when handoffs are configured")
        return None
    if "\x00" in value or not os.path.isabs(value):
        report("workspace_root", "must be an absolute path")
        return None
    return Path(os.path.realpath(value))


def _resolve_handoff_dirs(workspace_root: Any, config: JSON, report: Report) -> dict[str, Path]:
    root = _workspace_root(workspace_root, report)
    dirs: dict[str, Path] = {}
    for name, key in HANDOFF_DIR_KEYS.items():
        resolved = _resolve_dir(root, config[key], f"handoff_config.{key}", report)
        if resolved is None:
            continue
        clash = next((other for other, path in dirs.items() if path == resolved), None)
        if clash:
            report(f"handoff_config.{key}", f"is the same directory as {HANDOFF_DIR_KEYS[clash]}")
        dirs[name] = resolved
    return dirs


def _resolve_dir(root: Path | None, value: Any, path: str, report: Report) -> Path | None:
    """`root/value` with symlinks resolved, refused unless strictly below the real root.

    The syntax checks run even without a usable root so every problem is reported at once.
    """
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        report(path, "must be a non-empty relative path")
        return None
    if os.path.isabs(value) or value.startswith(("\\", "~")):
        report(path, "must be relative to workspace_root, not absolute")
        return None
    if ".." in re.split(r"[\\/]+", value):
        report(path, "must not contain a '..' component")
        return None
    if root is None:
        return None
    resolved = Path(os.path.realpath(root / value))
    if resolved == root or not resolved.is_relative_to(root):
        report(path, "must resolve to a directory inside workspace_root (symlinks are followed)")
        return None
    return resolved
