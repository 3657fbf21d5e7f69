"""The flow's nodes: the node list, node ids, and each node's kind, dependencies, retry and http.

An explicit `kind` of `agent`/`http` on a node that carries one of the original's approval
markers is refused: the original would silently treat it as a gate.

Accepted kinds are the registered ones (`automations.nodes.registry.known_kinds`): the built-ins
plus any a deployment adds through `FLOWGATE_NODE_KINDS`. A deployment kind gets the checks
every node gets (id, dependencies, retry, timeout, metadata) and takes the keys it declares
(`automations.nodes.registry.kind_keys`).

Every node refuses keys its kind does not take (`NODE_KEYS` plus the kind's own), with a "did
you mean" for near misses: a `depend_on` typo would otherwise drop the dependency and let the
node run before the gate it was meant to wait for. `metadata` stays the node's free-form
annotations (the original's `metadata.approval` and `metadata.builder` live there).

Size limits (`FLOWGATE_FLOW_MAX_NODES`, `FLOWGATE_FLOW_MAX_DEPENDENCIES`) are checked before the
entries they bound, and every check is linear in the size of the flow, so a hostile body is
refused quickly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from automations.flow.agents import check_agent_reference
from automations.flow.gates import normalise_gate_into
from automations.flow.original_gates import has_original_approval_marker
from automations.flow.problems import Problems, Report
from automations.flow.values import (
    JSON,
    clean,
    id_problem,
    in_range,
    node_label,
    optional_string,
    reject_unknown_keys,
)
from automations.nodes.registry import BUILTIN_KINDS, kind_keys, known_kinds

NODE_KINDS = tuple(BUILTIN_KINDS)  # the built-ins; known_kinds() adds the deployment's own
MAX_ATTEMPTS = 20
MAX_BACKOFF_S = 3600
MAX_HTTP_TIMEOUT_S = 300
MAX_NODE_TIMEOUT_S = 86_400  # a day; a longer step should be split or handed off

_RETRY_KEYS = frozenset({"max_attempts", "backoff_s"})
_HTTP_KEYS = frozenset({"url", "method", "timeout_s"})
# Keys every node takes; each built-in kind adds its own (`automations.nodes.registry`).
# `stage_kind` is the original's approval marker and `handoff` a handoff declaration.
NODE_KEYS = frozenset(
    {
        "node_id",
        "kind",
        "depends_on",
        "objective",
        "metadata",
        "retry",
        "timeout_s",
        "handoff",
        "stage_kind",
    }
)


def max_nodes() -> int:
    return settings.FLOWGATE_FLOW_MAX_NODES


def max_dependencies() -> int:
    return settings.FLOWGATE_FLOW_MAX_DEPENDENCIES


def flow_nodes(flow: Any, problems: Problems) -> list[tuple[int, Mapping[str, Any]]]:
    """The node objects of the flow with their positions (used to point at id-less nodes)."""
    if not isinstance(flow, Mapping):
        problems.add(None, "flow", "must be an object with a 'nodes' list")
        return []
    nodes = flow.get("nodes")
    if not isinstance(nodes, list):
        problems.add(None, "flow.nodes", "must be a list of node objects")
        return []
    if len(nodes) > max_nodes():
        problems.add(
            None,
            "flow.nodes",
            f"has {len(nodes)} nodes; a flow takes at most {max_nodes()} (FLOWGATE_FLOW_MAX_NODES)",
        )
        return []
    found = []
    for index, node in enumerate(nodes):
        if isinstance(node, Mapping):
            found.append((index, node))
        else:
            problems.add(None, f"flow.nodes[{index}]", "must be an object")
    return found


def check_node_ids(nodes: list[tuple[int, Mapping[str, Any]]], problems: Problems) -> set[str]:
    """Report bad and duplicate ids; return every id present, so references to a node with a
    bad id are not reported a second time as unknown."""
    seen: set[str] = set()
    duplicates: set[str] = set()
    for index, node in nodes:
        node_id = node.get("node_id")
        problem = id_problem(node_id)
        if problem:
            problems.add(node_label(node_id), "node_id", f"flow.nodes[{index}]: node_id {problem}")
        elif node_id in seen and node_id not in duplicates:
            duplicates.add(node_id)
            problems.add(node_id, "node_id", f"duplicate node_id {node_id!r}")
        if node_label(node_id):
            seen.add(node_id)
    return seen


def normalise_node(
    raw: Mapping[str, Any], node_ids: set[str], agent_ids: set[str], problems: Problems
) -> JSON:
    """Check one node and return a copy with `kind`, `depends_on` (and gate decisions) resolved."""
    report = problems.reporter(node_label(raw.get("node_id")))
    node = dict(raw)
    _check_metadata(raw, report)
    optional_string(raw, "objective", "", report)
    _check_retry(raw.get("retry"), report)
    timeout = raw.get("timeout_s")
    if timeout is not None and not in_range(timeout, low=0, high=MAX_NODE_TIMEOUT_S, open_low=True):
        report("timeout_s", f"must be a number of seconds above 0 and at most {MAX_NODE_TIMEOUT_S}")
    node["depends_on"] = _check_depends_on(raw, node_ids, report)
    node["kind"] = kind = _resolve_kind(raw, report)
    _check_node_keys(raw, kind, report)
    if kind == "agent":
        check_agent_reference(raw.get("agent_id"), agent_ids, report)
    elif kind == "http":
        node["http"] = _normalise_http(raw.get("http"), report)
    elif kind == "approval":
        normalise_gate_into(node, node_ids, report)
    return node


def _resolve_kind(raw: Mapping[str, Any], report: Report) -> str | None:
    """Explicit kind, else approval (original markers), else agent when an agent_id is given.

    Markers win over agent_id because the original's approval nodes carry an agent_id too.
    """
    marked = has_original_approval_marker(raw)
    if raw.get("kind") is None:
        if marked:
            return "approval"
        if raw.get("agent_id") is not None:
            return "agent"
        report("kind", "is required (agent, http or approval) when the node has no agent_id")
        return None
    kind = clean(raw["kind"])
    kinds = known_kinds()
    if not isinstance(kind, str) or kind not in kinds:
        listed = [*NODE_KINDS, *sorted(kinds - set(NODE_KINDS))]
        report("kind", f"must be one of {', '.join(listed)}, not {raw['kind']!r}")
        return None
    if marked and kind != "approval":
        report("kind", f"is {kind!r} but the node carries an approval marker")
        return None
    return kind


def _check_node_keys(raw: Mapping[str, Any], kind: str | None, report: Report) -> None:
    """Refuse keys the node's kind does not take; with an unresolved kind, keys no kind takes."""
    if kind is not None:
        allowed = NODE_KEYS | kind_keys(kind)
    else:
        allowed = NODE_KEYS.union(*(kind_keys(k) for k in known_kinds()))
    reject_unknown_keys(raw, allowed, "", report)


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
            optional_string(builder, key, "metadata.builder.", report)


def _check_depends_on(raw: Mapping[str, Any], node_ids: set[str], report: Report) -> list[str]:
    """Upstream ids, defaulted to [] and de-duplicated (in linear time); each must name another
    node. Over `FLOWGATE_FLOW_MAX_DEPENDENCIES` entries the list is refused unread."""
    value = raw.get("depends_on")
    if value is None:
        return []
    if not isinstance(value, list):
        report("depends_on", "must be a list of node ids")
        return []
    if len(value) > max_dependencies():
        report(
            "depends_on",
            f"has {len(value)} entries; a node takes at most {max_dependencies()} "
            "(FLOWGATE_FLOW_MAX_DEPENDENCIES)",
        )
        return []
    dependencies: dict[str, None] = {}  # ordered and O(1) to test, unlike a list
    for dependency in value:
        if not isinstance(dependency, str) or not dependency:
            report("depends_on", f"entries must be node ids, not {dependency!r}")
            continue
        if dependency == raw.get("node_id"):
            report("depends_on", "a node cannot depend on itself")
        elif dependency not in node_ids:
            report("depends_on", f"unknown node {dependency!r}")
        dependencies.setdefault(dependency)
    return list(dependencies)


def _check_retry(value: Any, report: Report) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        report("retry", "must be an object")
        return
    reject_unknown_keys(value, _RETRY_KEYS, "retry", report)
    attempts = value.get("max_attempts")
    if attempts is not None and not in_range(attempts, low=1, high=MAX_ATTEMPTS, integer=True):
        report("retry.max_attempts", f"must be an integer from 1 to {MAX_ATTEMPTS}")
    backoff = value.get("backoff_s")
    if backoff is not None and not in_range(backoff, low=0, high=MAX_BACKOFF_S):
        report("retry.backoff_s", f"must be a number of seconds from 0 to {MAX_BACKOFF_S}")


def _normalise_http(value: Any, report: Report) -> Any:
    """Shape checks only; which hosts may be called is decided at execution (allowlist)."""
    if not isinstance(value, Mapping):
        report("http", "http nodes need an 'http' object with a url")
        return value
    reject_unknown_keys(value, _HTTP_KEYS, "http", report)
    if not _is_web_url(value.get("url")):
        report("http.url", "must be an http:// or https:// URL with a host")
    method = value.get("method")
    if method is not None and (not isinstance(method, str) or method.strip().upper() != "POST"):
        report("http.method", "only POST is supported")
    timeout = value.get("timeout_s")
    if timeout is not None and not in_range(timeout, low=0, high=MAX_HTTP_TIMEOUT_S, open_low=True):
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
