"""Flow validation and the graph helpers: plain functions over JSON specs, no database."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from django.test import override_settings

from automations.flow import (
    descendants,
    gate_config,
    handoff_dirs,
    is_approval_node,
    validate_automation,
)
from governance.errors import InvalidFlow


def example_spec(workspace_root: str = "/srv/flowgate/acme") -> dict[str, Any]:
    """The automation body of SPEC §14 (flow, agents, execution and handoff parts)."""
    return {
        "agents": [
            {
                "agent_id": "writer",
                "template_id": "template-a",
                "display_name": "Writer",
                "model_policy": {"provider": "echo", "model": "echo-1"},
            }
        ],
        "flow": {
            "nodes": [
                {
                    "node_id": "draft",
                    "kind": "agent",
                    "agent_id": "writer",
                    "objective": "Write the draft",
                    "depends_on": [],
                    "metadata": {"builder": {"prompt": "Write draft v1"}},
                    "retry": {"max_attempts": 2, "backoff_s": 1},
                },
                {
                    "node_id": "notify",
                    "kind": "http",
                    "depends_on": ["draft"],
                    "http": {
                        "url": "https://hooks.example.com/x",
                        "method": "POST",
                        "timeout_s": 10,
                    },
                },
                {
                    "node_id": "approval",
                    "kind": "approval",
                    "depends_on": ["draft"],
                    "gate": {
                        "decisions": ["approve", "rework", "cancel"],
                        "rework_targets": ["draft"],
                        "instructions": "Check the draft",
                        "policy": {
                            "reviewer_eligibility": "elevated_reviewer",
                            "risk_tier": "external_send",
                            "data_classes": ["financial_record"],
                        },
                        "expiry": {"expires_after_s": 604800, "on_expiry": "cancel"},
                    },
                },
            ]
        },
        "execution": {"max_parallel": 2},
        "workspace_root": workspace_root,
        "handoff_config": {"inbox_dir": "handoffs/inbox"},
    }


def node(spec: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in spec["flow"]["nodes"] if n["node_id"] == node_id)


def invalid(spec: dict[str, Any]) -> InvalidFlow:
    with pytest.raises(InvalidFlow) as caught:
        validate_automation(**spec)
    error = caught.value
    assert error.status == 400
    assert error.code == "AUTOMATION_V2_INVALID_FLOW"
    return error


def problems(error: InvalidFlow) -> set[tuple[str | None, str]]:
    return {(e["node_id"], e["field"]) for e in error.extra["errors"]}


def messages(error: InvalidFlow) -> str:
    return " | ".join(e["message"] for e in error.extra["errors"])


# --- valid specs --------------------------------------------------------------------------------


def test_spec_example_is_valid_and_normalised(tmp_path):
    result = validate_automation(**example_spec(str(tmp_path)))

    assert set(result) == {"flow", "agents", "execution", "handoff_config"}
    assert [n["kind"] for n in result["flow"]["nodes"]] == ["agent", "http", "approval"]
    assert result["execution"] == {"max_parallel": 2}
    assert result["agents"][0]["agent_id"] == "writer"
    assert result["handoff_config"] == {
        "inbox_dir": "handoffs/inbox",
        "approved_dir": "shared/handoffs/approved",
        "archived_dir": "shared/handoffs/archived",
        "auto_approve": True,
    }


def test_defaults_are_filled_in():
    spec = example_spec()
    spec["execution"] = None
    spec["handoff_config"] = None
    draft = node(spec, "draft")
    del draft["kind"], draft["depends_on"]
    del node(spec, "approval")["gate"]["decisions"]

    result = validate_automation(**spec)

    assert node(result, "draft")["kind"] == "agent"
    assert node(result, "draft")["depends_on"] == []
    assert node(result, "approval")["gate"]["decisions"] == ["approve", "rework", "cancel"]
    assert node(result, "notify")["http"]["method"] == "POST"
    assert result["execution"] == {"max_parallel": 1}
    assert result["handoff_config"] is None


def test_decisions_are_trimmed_lowercased_and_deduplicated():
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "approval")["gate"]["decisions"] = [" Approve ", "REWORK", "approve", "Cancel"]

    result = validate_automation(**spec)

    assert node(result, "approval")["gate"]["decisions"] == ["approve", "rework", "cancel"]


def test_inputs_are_not_mutated_and_validation_is_idempotent(tmp_path):
    spec = example_spec(str(tmp_path))
    del node(spec, "draft")["kind"]
    before = copy.deepcopy(spec)

    result = validate_automation(**spec)
    again = validate_automation(**{**result, "workspace_root": str(tmp_path)})

    assert spec == before
    assert again == result


def test_an_empty_flow_is_valid():
    result = validate_automation(
        flow={"nodes": []}, agents=[], execution={}, workspace_root="", handoff_config=None
    )
    assert result["flow"] == {"nodes": []}


# --- the error shape ----------------------------------------------------------------------------


def test_every_problem_is_reported_in_one_error():
    spec = example_spec()
    spec["handoff_config"] = None
    spec["execution"] = {"max_parallel": 0}
    node(spec, "draft")["agent_id"] = "ghost-writer"
    node(spec, "notify")["depends_on"] = ["nowhere"]
    node(spec, "approval")["gate"]["decisions"] = ["approve", "maybe"]

    error = invalid(spec)

    assert problems(error) == {
        ("draft", "agent_id"),
        ("notify", "depends_on"),
        ("approval", "gate.decisions"),
        (None, "execution.max_parallel"),
    }
    assert error.extra["nodes"] == ["approval", "draft", "notify"]
    body = error.body()
    assert body["code"] == "AUTOMATION_V2_INVALID_FLOW"
    assert body["error"].startswith("Invalid automation flow: ")
    assert "(and 1 more)" in body["error"]
    assert {"node_id", "field", "message"} == set(body["errors"][0])


@pytest.mark.parametrize(
    ("flow", "field"),
    [
        (None, "flow"),
        ([], "flow"),
        ({"nodes": {"a": {}}}, "flow.nodes"),
        ({}, "flow.nodes"),
        ({"nodes": ["draft"]}, "flow.nodes[0]"),
    ],
)
def test_flow_must_be_an_object_with_a_node_list(flow, field):
    spec = {**example_spec(), "flow": flow, "handoff_config": None}
    assert problems(invalid(spec)) == {(None, field)}


# --- node ids and the graph ---------------------------------------------------------------------


def test_duplicate_node_ids():
    spec = example_spec()
    spec["handoff_config"] = None
    spec["flow"]["nodes"].append({"node_id": "draft", "agent_id": "writer"})

    error = invalid(spec)

    assert problems(error) == {("draft", "node_id")}
    assert error.extra["nodes"] == ["draft"]
    assert "duplicate" in messages(error)


@pytest.mark.parametrize("node_id", ["", None, 7, "has space", "tab\there", "x" * 129])
def test_bad_node_ids(node_id):
    spec = example_spec()
    spec["handoff_config"] = None
    spec["flow"]["nodes"].append({"node_id": node_id, "agent_id": "writer"})

    error = invalid(spec)

    assert [e["field"] for e in error.extra["errors"]] == ["node_id"]
    assert "flow.nodes[3]" in messages(error)


def test_unknown_dependency():
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "notify")["depends_on"] = ["draft", "ghost"]

    error = invalid(spec)

    assert problems(error) == {("notify", "depends_on")}
    assert error.extra["nodes"] == ["notify"]
    assert "'ghost'" in messages(error)


def test_self_dependency():
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "notify")["depends_on"] = ["notify"]

    error = invalid(spec)

    assert problems(error) == {("notify", "depends_on")}
    assert "itself" in messages(error)


def test_two_node_cycle():
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "draft")["depends_on"] = ["notify"]

    error = invalid(spec)

    assert problems(error) == {("draft", "depends_on"), ("notify", "depends_on")}
    assert error.extra["nodes"] == ["draft", "notify"]
    assert "draft -> notify -> draft" in messages(error)


def test_three_node_cycle_names_only_the_nodes_on_it():
    nodes = [
        {"node_id": "a", "agent_id": "writer", "depends_on": ["c"]},
        {"node_id": "b", "agent_id": "writer", "depends_on": ["a"]},
        {"node_id": "c", "agent_id": "writer", "depends_on": ["b"]},
        {"node_id": "downstream", "agent_id": "writer", "depends_on": ["c"]},
    ]
    spec = {**example_spec(), "flow": {"nodes": nodes}, "handoff_config": None}

    error = invalid(spec)

    assert error.extra["nodes"] == ["a", "b", "c"]
    assert problems(error) == {("a", "depends_on"), ("b", "depends_on"), ("c", "depends_on")}
    assert "a -> c -> b -> a" in messages(error)


# --- agents -------------------------------------------------------------------------------------


def test_unknown_agent():
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "draft")["agent_id"] = "ghost"

    error = invalid(spec)

    assert problems(error) == {("draft", "agent_id")}
    assert "'ghost'" in messages(error)


def test_agent_node_without_agent_id():
    spec = example_spec()
    spec["handoff_config"] = None
    del node(spec, "draft")["agent_id"]

    assert problems(invalid(spec)) == {("draft", "agent_id")}


def test_node_without_kind_or_agent_id():
    spec = example_spec()
    spec["handoff_config"] = None
    spec["flow"]["nodes"].append({"node_id": "mystery"})

    assert problems(invalid(spec)) == {("mystery", "kind")}


def test_unknown_kind():
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "notify")["kind"] = "shell"

    assert problems(invalid(spec)) == {("notify", "kind")}


SHELL_KIND = {"shell": "tests.automations.nodes.test_registry.shout:agent_id:http"}


@override_settings(FLOWGATE_NODE_KINDS=SHELL_KIND)
def test_a_kind_added_by_settings_takes_the_keys_it_declares_without_agent_or_http_checks():
    spec = example_spec()
    spec["handoff_config"] = None
    custom = {"node_id": "shell", "kind": " Shell ", "depends_on": ["draft"], "agent_id": "ghost"}
    custom["http"] = "free-form for this kind"
    spec["flow"]["nodes"].append(custom)

    result = validate_automation(**spec)

    assert node(result, "shell")["kind"] == "shell"
    assert node(result, "shell")["http"] == "free-form for this kind"


def test_a_kind_added_by_settings_is_refused_once_the_setting_is_gone():
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "notify")["kind"] = "shell"
    with override_settings(FLOWGATE_NODE_KINDS=SHELL_KIND):
        validate_automation(**spec)

    error = invalid(spec)

    assert problems(error) == {("notify", "kind")}
    assert "must be one of agent, http, approval, not 'shell'" in messages(error)


def test_an_unhashable_kind_is_a_problem_not_a_crash():
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "notify")["kind"] = ["http"]

    assert problems(invalid(spec)) == {("notify", "kind")}


@pytest.mark.parametrize(
    ("agents", "field"),
    [
        ([{"agent_id": "writer"}, {"agent_id": "writer"}], "agents[1].agent_id"),
        ([{"agent_id": "writer"}, {"agent_id": ""}], "agents[1].agent_id"),
        ([{"agent_id": "writer", "model_policy": "echo"}], "agents[0].model_policy"),
        ([{"agent_id": "writer"}, "reviewer"], "agents[1]"),
    ],
)
def test_bad_agents(agents, field):
    spec = {**example_spec(), "agents": agents, "handoff_config": None}
    assert problems(invalid(spec)) == {(None, field)}


# --- http nodes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("http", "field"),
    [
        ({"url": "ftp://files.example.com/x"}, "http.url"),
        ({"url": "https://"}, "http.url"),
        ({"url": "https://[::1"}, "http.url"),
        ({}, "http.url"),
        ({"url": "https://h.example.com", "method": "GET"}, "http.method"),
        ({"url": "https://h.example.com", "timeout_s": 0}, "http.timeout_s"),
        ({"url": "https://h.example.com", "timeout_s": 301}, "http.timeout_s"),
        ({"url": "https://h.example.com", "headers": {}}, "http.headers"),
        (None, "http"),
    ],
)
def test_bad_http_nodes(http, field):
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "notify")["http"] = http

    assert problems(invalid(spec)) == {("notify", field)}


# --- approval gates -----------------------------------------------------------------------------


def with_gate(**gate: Any) -> dict[str, Any]:
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "approval")["gate"].update(gate)
    return spec


@pytest.mark.parametrize("decisions", [["approve", "maybe"], [], "approve", [None]])
def test_invalid_decisions(decisions):
    error = invalid(with_gate(decisions=decisions))
    assert problems(error) == {("approval", "gate.decisions")}


def test_unknown_rework_target():
    error = invalid(with_gate(rework_targets=["draft", "ghost"]))
    assert problems(error) == {("approval", "gate.rework_targets")}
    assert "'ghost'" in messages(error)


def test_rework_target_is_the_gate_itself():
    error = invalid(with_gate(rework_targets=["approval"]))
    assert problems(error) == {("approval", "gate.rework_targets")}
    assert "own rework target" in messages(error)


def test_rework_targets_require_the_rework_decision():
    error = invalid(with_gate(decisions=["approve", "cancel"]))
    assert problems(error) == {("approval", "gate.decisions")}


@pytest.mark.parametrize(
    ("expiry", "field"),
    [
        ({"expires_after_s": -1}, "gate.expiry.expires_after_s"),
        ({"expires_after_s": 1.5}, "gate.expiry.expires_after_s"),
        ({"expires_after_s": True}, "gate.expiry.expires_after_s"),
        ({"on_expiry": "resume"}, "gate.expiry.on_expiry"),
        ({"on_expiry": "remind"}, "gate.expiry.remind_every_s"),
        ({"on_expiry": "remind", "remind_every_s": 0}, "gate.expiry.remind_every_s"),
        ({"on_expiry": "remind", "remind_every_s": 0.5}, "gate.expiry.remind_every_s"),
        (
            {"expires_after_s": 3600, "on_expiry": "remind", "remind_every_s": 3601},
            "gate.expiry.remind_every_s",
        ),
        (
            {"on_expiry": "remind", "remind_every_s": 31_536_001},
            "gate.expiry.remind_every_s",
        ),
        ({"expires_after_s": 31_536_001}, "gate.expiry.expires_after_s"),
        ({"expires_after_s": 10**30}, "gate.expiry.expires_after_s"),
        ({"on_expiry": "escalate"}, "gate.expiry.escalate_to"),
        ({"on_expiry": "escalate", "escalate_to": []}, "gate.expiry.escalate_to"),
        ({"on_expiry": "escalate", "escalate_to": "boss"}, "gate.expiry.escalate_to"),
        ({"on_expiry": "escalate", "escalate_to": ["not a user"]}, "gate.expiry.escalate_to"),
        ({"expires_after": 60}, "gate.expiry.expires_after"),
        ("7d", "gate.expiry"),
    ],
)
def test_bad_expiry(expiry, field):
    assert problems(invalid(with_gate(expiry=expiry))) == {("approval", field)}


@pytest.mark.parametrize(
    "expiry",
    [
        {"expires_after_s": 31_536_000},
        {"expires_after_s": 0},
        {"expires_after_s": 3600, "on_expiry": "remind", "remind_every_s": 3600},
        {"expires_after_s": 3600, "on_expiry": "remind", "remind_every_s": 1},
        {"on_expiry": "remind", "remind_every_s": 31_536_000},  # default expiry: up to a year
        {"expires_after_s": 0, "on_expiry": "remind", "remind_every_s": 1.5},
    ],
)
def test_expiry_bounds_accept(expiry):
    validate_automation(**with_gate(expiry=expiry))


def test_original_expiry_bounds_apply_after_conversion():
    too_long = original_gate_node(
        {"decisions": ["approve"], "expiry_policy": {"expires_after_ms": 31_536_000_001}}
    )
    with pytest.raises(InvalidFlow) as caught:
        gate_config(too_long)
    assert problems(caught.value) == {
        ("review", "metadata.approval.expiry_policy.expires_after_ms")
    }
    assert "milliseconds" in messages(caught.value)
    remind_after_expiry = original_gate_node(
        {
            "decisions": ["approve"],
            "expiry_policy": {
                "expires_after_ms": 60_000,
                "on_expiry": "remind",
                "remind_every_ms": 61_000,
            },
        }
    )
    with pytest.raises(InvalidFlow) as caught:
        gate_config(remind_after_expiry)
    assert problems(caught.value) == {("review", "metadata.approval.expiry_policy.remind_every_ms")}
    # 1 ms rounds up to the 1-second minimum.
    tiny = original_gate_node(
        {
            "decisions": ["approve"],
            "expiry_policy": {"on_expiry": "remind", "remind_every_ms": 1},
        }
    )
    assert gate_config(tiny)["expiry"]["remind_every_s"] == 1


def test_expiry_is_normalised():
    spec = with_gate(
        expiry={"expires_after_s": 3600, "on_expiry": " Escalate ", "escalate_to": ["boss"]}
    )
    result = validate_automation(**spec)
    assert gate_config(node(result, "approval"))["expiry"] == {
        "expires_after_s": 3600,
        "on_expiry": "escalate",
        "remind_every_s": None,
        "escalate_to": ["boss"],
    }


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"reviewer_eligibility": "boss"}, "gate.policy.reviewer_eligibility"),
        ({"risk_tier": 5}, "gate.policy.risk_tier"),
        ({"data_classes": ["secret"]}, "gate.policy.data_classes"),
        ({"data_classes": "financial_record"}, "gate.policy.data_classes"),
        ({"data_class": "financial_record"}, "gate.policy.data_class"),
        ("elevated", "gate.policy"),
    ],
)
def test_bad_policy(policy, field):
    assert problems(invalid(with_gate(policy=policy))) == {("approval", field)}


def test_unknown_gate_key_is_refused():
    error = invalid(with_gate(decision=["approve"]))
    assert problems(error) == {("approval", "gate.decision")}


# --- retry and timeout --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "field"),
    [
        ({"max_attempts": 0}, "retry.max_attempts"),
        ({"max_attempts": 21}, "retry.max_attempts"),
        ({"max_attempts": "3"}, "retry.max_attempts"),
        ({"max_attempts": True}, "retry.max_attempts"),
        ({"backoff_s": -1}, "retry.backoff_s"),
        ({"backoff_s": 3601}, "retry.backoff_s"),
        ({"backof_s": 1}, "retry.backof_s"),
        (3, "retry"),
    ],
)
def test_bad_retry(retry, field):
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "draft")["retry"] = retry

    assert problems(invalid(spec)) == {("draft", field)}


@pytest.mark.parametrize(
    "timeout_s", [0, -5, "10", float("nan"), float("inf"), 86_400.5, 86_401, 10**20]
)
def test_bad_node_timeout(timeout_s):
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "draft")["timeout_s"] = timeout_s

    assert problems(invalid(spec)) == {("draft", "timeout_s")}


@pytest.mark.parametrize("timeout_s", [0.5, 1, 86_400])
def test_node_timeout_bounds_accept(timeout_s):
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "draft")["timeout_s"] = timeout_s

    validate_automation(**spec)


@pytest.mark.parametrize("timeout_s", [0.1, 300])
def test_http_timeout_bounds_accept(timeout_s):
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "notify")["http"]["timeout_s"] = timeout_s

    validate_automation(**spec)


# --- execution ----------------------------------------------------------------------------------


@pytest.mark.parametrize("max_parallel", [0, 17, -1, 2.5, True, "2"])
def test_bad_max_parallel(max_parallel):
    spec = {**example_spec(), "execution": {"max_parallel": max_parallel}, "handoff_config": None}

    error = invalid(spec)

    assert problems(error) == {(None, "execution.max_parallel")}
    assert error.extra["nodes"] == []


@pytest.mark.parametrize("max_parallel", [1, 16])
def test_max_parallel_bounds_are_allowed(max_parallel):
    spec = {**example_spec(), "execution": {"max_parallel": max_parallel}, "handoff_config": None}
    assert validate_automation(**spec)["execution"]["max_parallel"] == max_parallel


# --- handoff dirs -------------------------------------------------------------------------------


def with_handoff(root: str, **config: Any) -> dict[str, Any]:
    return {**example_spec(root), "handoff_config": config}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"inbox_dir": "/etc/handoffs"}, "handoff_config.inbox_dir"),
        ({"approved_dir": "../elsewhere"}, "handoff_config.approved_dir"),
        ({"archived_dir": "shared/../../escape"}, "handoff_config.archived_dir"),
        ({"inbox_dir": "shared\\..\\..\\escape"}, "handoff_config.inbox_dir"),
        ({"inbox_dir": ""}, "handoff_config.inbox_dir"),
        ({"inbox_dir": "."}, "handoff_config.inbox_dir"),
        ({"archived_dir": "shared/handoffs/inbox"}, "handoff_config.archived_dir"),
        ({"auto_approve": "yes"}, "handoff_config.auto_approve"),
        ({"outbox_dir": "out"}, "handoff_config.outbox_dir"),
    ],
)
def test_bad_handoff_config(tmp_path, config, field):
    error = invalid(with_handoff(str(tmp_path), **config))
    assert problems(error) == {(None, field)}
    assert error.extra["nodes"] == []


def test_handoff_dir_through_a_symlink_outside_the_root(tmp_path):
    root = tmp_path / "workspace"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "shared")

    error = invalid(with_handoff(str(root)))

    assert problems(error) == {
        (None, "handoff_config.inbox_dir"),
        (None, "handoff_config.approved_dir"),
        (None, "handoff_config.archived_dir"),
    }


def test_handoff_dir_through_a_symlink_inside_the_root_is_fine(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "shared")

    dirs = handoff_dirs(str(tmp_path), {"auto_approve": False})

    assert dirs["inbox"] == tmp_path.resolve() / "real" / "handoffs" / "inbox"


@pytest.mark.parametrize("root", ["relative/root", "", None])
def test_workspace_root_must_be_absolute_with_handoffs(root):
    error = invalid(with_handoff(root, inbox_dir="handoffs/inbox"))
    assert problems(error) == {(None, "workspace_root")}


def test_relative_workspace_root_is_refused_without_handoffs():
    spec = {**example_spec("relative/root"), "handoff_config": None}
    assert problems(invalid(spec)) == {(None, "workspace_root")}


def test_handoff_dirs_defaults(tmp_path):
    root = tmp_path.resolve()
    assert handoff_dirs(str(tmp_path)) == {
        "inbox": root / "shared/handoffs/inbox",
        "approved": root / "shared/handoffs/approved",
        "archived": root / "shared/handoffs/archived",
    }


def test_handoff_dirs_rechecks_at_use(tmp_path):
    os.symlink("/", tmp_path / "shared")
    with pytest.raises(InvalidFlow) as caught:
        handoff_dirs(str(tmp_path), None)
    assert {e["field"] for e in caught.value.extra["errors"]} == {
        "handoff_config.inbox_dir",
        "handoff_config.approved_dir",
        "handoff_config.archived_dir",
    }


# --- original-style approval nodes --------------------------------------------------------------


@pytest.mark.parametrize(
    "marker",
    [
        {"stage_kind": "approval"},
        {"stage_kind": "Approval"},
        {"metadata": {"stage_kind": "APPROVAL"}},
        {"metadata": {"builder": {"task_class": "human_decision_gate"}}},
        {"metadata": {"approval": {"allowed_decisions": ["approve", "cancel"]}}},
        {"metadata": {"approval": {"decisions": ["approve"]}}},
        {"metadata": {"approval": {"require_explicit_decision": True}}},
    ],
)
def test_original_approval_markers(marker):
    original = {"node_id": "review", "agent_id": "writer", "depends_on": ["draft"], **marker}
    spec = example_spec()
    spec["handoff_config"] = None
    spec["flow"]["nodes"].append(original)

    assert is_approval_node(original)
    assert node(validate_automation(**spec), "review")["kind"] == "approval"


@pytest.mark.parametrize(
    "node_fields",
    [
        {"metadata": {"approval": {"require_explicit_decision": False}}},
        {"metadata": {"approval": {"instructions": "look"}}},
        {"metadata": {"builder": {"task_class": "writing"}}},
        {"stage_kind": "review"},
        {"metadata": "approval"},
    ],
)
def test_non_markers(node_fields):
    assert not is_approval_node({"node_id": "x", **node_fields})


def test_explicit_kind_conflicting_with_an_approval_marker_is_refused():
    spec = example_spec()
    spec["handoff_config"] = None
    node(spec, "draft")["stage_kind"] = "approval"

    assert problems(invalid(spec)) == {("draft", "kind")}


def original_gate_node(approval: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "node_id": "review",
        "agent_id": "writer",
        "objective": "Review the draft",
        "depends_on": ["draft"],
        "metadata": {"approval": approval},
        **fields,
    }


def test_original_gate_config_is_mapped():
    review = original_gate_node(
        {
            "allowed_decisions": ["Approve", "Reject"],
            "rework_targets": ["draft"],
            "metadata": {"gate": {"reviewer_eligibility": "elevated_reviewer"}},
        }
    )
    spec = example_spec()
    spec["handoff_config"] = None
    spec["flow"]["nodes"].append(review)

    stored = node(validate_automation(**spec), "review")
    gate = gate_config(stored)

    assert stored["metadata"] == review["metadata"]  # left as authored
    assert "gate" not in stored
    assert gate["decisions"] == ["approve", "cancel", "rework"]
    assert gate["rework_targets"] == ["draft"]
    assert gate["instructions"] == "Review the draft"
    assert gate["title"] == "Review the draft"
    assert gate["policy"]["reviewer_eligibility"] == "elevated_reviewer"
    assert gate["expiry"] is None


def test_original_gate_defaults_to_approve_and_reject():
    gate = gate_config(original_gate_node({"require_explicit_decision": True}))
    assert gate["decisions"] == ["approve", "cancel"]


def test_original_rework_target_is_checked_against_the_flow():
    spec = example_spec()
    spec["handoff_config"] = None
    spec["flow"]["nodes"].append(original_gate_node({"decisions": [], "rework_targets": ["x"]}))

    assert problems(invalid(spec)) == {
        ("review", "metadata.approval.decisions"),
        ("review", "metadata.approval.rework_targets"),
    }


def test_original_policy_locations_first_hit_wins():
    gate_metadata = {
        "gate": {"risk_tier": "external_send"},
        "policy": {"risk_tier": "ignored", "data_classes": ["financial_record"]},
        "data_classes": ["public"],
        "data_class": "Restricted",
        "reviewer_eligibility": "any_human_reviewer",
    }
    policy = gate_config(original_gate_node({"decisions": ["approve"], "metadata": gate_metadata}))[
        "policy"
    ]
    assert policy == {
        "reviewer_eligibility": "any_human_reviewer",
        "risk_tier": "external_send",
        "data_classes": ["financial_record", "restricted"],
    }


def test_gate_policy_wins_over_original_locations():
    review = {
        "node_id": "review",
        "kind": "approval",
        "gate": {"policy": {"reviewer_eligibility": "none"}},
        "metadata": {"approval": {"metadata": {"gate": {"reviewer_eligibility": "boss"}}}},
    }
    assert gate_config(review)["policy"]["reviewer_eligibility"] == "none"


def test_bad_policy_in_original_location_names_that_field():
    review = original_gate_node(
        {"decisions": ["approve"], "metadata": {"policy": {"data_classes": ["x"]}}}
    )
    with pytest.raises(InvalidFlow) as caught:
        gate_config(review)
    assert problems(caught.value) == {("review", "metadata.approval.metadata.policy.data_classes")}


def test_original_expiry_in_milliseconds_is_converted():
    review = original_gate_node(
        {
            "decisions": ["approve"],
            "expiry_policy": {
                "expires_after_ms": 3_600_500,
                "on_expiry": "remind",
                "remind_every_ms": 60_000,
            },
        }
    )
    assert gate_config(review)["expiry"] == {
        "expires_after_s": 3601,
        "on_expiry": "remind",
        "remind_every_s": 60,
        "escalate_to": [],
    }


def test_original_resume_on_expiry_is_refused():
    review = original_gate_node(
        {"decisions": ["approve"], "policy": {"gate_expiry": {"on_expiry": "resume"}}}
    )
    with pytest.raises(InvalidFlow) as caught:
        gate_config(review)
    assert problems(caught.value) == {("review", "metadata.approval.policy.gate_expiry.on_expiry")}


# --- gate_config of new-style nodes -------------------------------------------------------------


def test_gate_config_of_the_spec_example():
    result = validate_automation(**{**example_spec(), "handoff_config": None})
    assert gate_config(node(result, "approval")) == {
        "decisions": ["approve", "rework", "cancel"],
        "rework_targets": ["draft"],
        "instructions": "Check the draft",
        "title": "approval",
        "expiry": {
            "expires_after_s": 604800,
            "on_expiry": "cancel",
            "remind_every_s": None,
            "escalate_to": [],
        },
        "policy": {
            "reviewer_eligibility": "elevated_reviewer",
            "risk_tier": "external_send",
            "data_classes": ["financial_record"],
        },
    }


def test_gate_title_falls_back_from_builder_title_to_objective_to_node_id():
    gate = {"node_id": "g", "kind": "approval"}
    assert gate_config(gate)["title"] == "g"
    assert gate_config({**gate, "objective": "Sign off"})["title"] == "Sign off"
    titled = {**gate, "objective": "Sign off", "metadata": {"builder": {"title": "Final check"}}}
    assert gate_config(titled)["title"] == "Final check"


def test_gate_without_config_offers_every_decision():
    gate = gate_config({"node_id": "g", "kind": "approval"})
    assert gate["decisions"] == ["approve", "rework", "cancel"]
    assert gate["policy"] == {"reviewer_eligibility": "none", "risk_tier": None, "data_classes": []}


# --- descendants --------------------------------------------------------------------------------


DIAMOND = [
    {"node_id": "a", "depends_on": []},
    {"node_id": "b", "depends_on": ["a"]},
    {"node_id": "c", "depends_on": ["a"]},
    {"node_id": "d", "depends_on": ["b", "c"]},
]


@pytest.mark.parametrize(
    ("roots", "expected"),
    [
        ({"a"}, {"a", "b", "c", "d"}),
        ({"b"}, {"b", "d"}),
        ({"b", "c"}, {"b", "c", "d"}),
        ({"d"}, {"d"}),
        ({"ghost"}, {"ghost"}),
        (set(), set()),
    ],
)
def test_descendants_on_a_diamond(roots, expected):
    assert descendants(DIAMOND, roots) == expected


# --- strict node keys and limits (issue 13) ----------------------------------------------------


def test_a_depend_on_typo_is_refused_with_a_hint():
    """Issue 13: `depend_on` was accepted, so `publish` ran while its approval was still open."""
    spec = example_spec()
    node(spec, "notify")["depend_on"] = node(spec, "notify").pop("depends_on")

    error = invalid(spec)

    assert problems(error) == {("notify", "depend_on")}
    assert "unknown key (did you mean 'depends_on'?)" in messages(error)


@pytest.mark.parametrize(
    ("kind", "key", "hint"),
    [
        ("agent", "agent", "agent_id"),
        ("http", "gate", None),  # a gate on an http node would be silently ignored
        ("approval", "gates", "gate"),
        ("approval", "provider", None),
    ],
)
def test_keys_a_kind_does_not_take_are_refused(kind, key, hint):
    spec = example_spec()
    target = next(n for n in spec["flow"]["nodes"] if n["kind"] == kind)
    target[key] = {}

    error = invalid(spec)

    assert problems(error) == {(target["node_id"], key)}
    assert (f"did you mean {hint!r}" in messages(error)) is (hint is not None)


def test_unknown_keys_deeper_in_a_node_carry_a_hint():
    spec = example_spec()
    node(spec, "approval")["gate"]["policy"]["data_class"] = ["financial_record"]
    node(spec, "draft")["retry"]["max_attempt"] = 3

    error = invalid(spec)

    assert problems(error) == {
        ("approval", "gate.policy.data_class"),
        ("draft", "retry.max_attempt"),
    }
    assert "did you mean 'data_classes'?" in messages(error)
    assert "did you mean 'max_attempts'?" in messages(error)


@pytest.mark.parametrize(
    ("policy", "field", "message"),
    [
        ({"provider": "anthropic", "model": "claude"}, "", "unknown model provider 'anthropic'"),
        ({"provider": "openai"}, "", "the openai provider needs a model"),
        ({"provider": "echo", "modle": "x"}, ".modle", "did you mean 'model'?"),
        ({"default_model": {"provider_id": "nope"}}, "", "unknown model provider 'nope'"),
    ],
)
def test_model_policies_are_checked_at_save(policy, field, message):
    """Issue 13: `provider: "anthropic"` was accepted and failed only at run time."""
    spec = example_spec()
    spec["agents"][0]["model_policy"] = policy

    error = invalid(spec)

    assert problems(error) == {(None, f"agents[0].model_policy{field}")}
    assert message in messages(error)


@override_settings(FLOWGATE_FLOW_MAX_NODES=3)
def test_a_flow_over_the_node_limit_is_refused_unread():
    spec = example_spec()
    spec["flow"]["nodes"].append({"node_id": "extra", "kind": "approval"})

    error = invalid(spec)

    assert problems(error) == {(None, "flow.nodes")}
    assert "at most 3 (FLOWGATE_FLOW_MAX_NODES)" in messages(error)


@override_settings(FLOWGATE_FLOW_MAX_DEPENDENCIES=2)
def test_a_node_over_the_dependency_limit_is_refused_unread():
    spec = example_spec()
    node(spec, "approval")["depends_on"] = ["draft", "notify", "ghost"]

    error = invalid(spec)

    assert problems(error) == {("approval", "depends_on")}
    assert "has 3 entries; a node takes at most 2" in messages(error)


def test_a_registered_kind_refuses_keys_it_did_not_declare():
    spec = example_spec()
    spec["handoff_config"] = None
    spec["flow"]["nodes"].append({"node_id": "shell", "kind": "shell", "http": {}, "cmd": "ls"})

    with override_settings(FLOWGATE_NODE_KINDS={"shell": "tests.support.nodekinds.sleep:cmd"}):
        error = invalid(spec)

    assert problems(error) == {("shell", "http")}
