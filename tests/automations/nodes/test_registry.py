"""The node kind registry: built-ins, kinds added by settings, unknown and misconfigured kinds."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from automations.nodes import agent, http
from automations.nodes.base import NodeContext, NodeFailure
from automations.nodes.registry import UnknownNodeKind, known_kinds, node_kind

SHOUT = {"shout": "tests.automations.nodes.test_registry.shout"}


def shout(ctx: NodeContext) -> dict[str, Any]:
    """A deployment's own node kind (referenced by dotted path from the tests)."""
    text = str(ctx.node.get("objective", "")).upper()
    return {"status": "completed", "summary": text, "content": {"text": text}}


def context(node: dict[str, Any]) -> NodeContext:
    return NodeContext(
        run_id="run-1", automation_id="auto-1", workspace="acme/ops", node=node, agent=None
    )


def test_built_in_kinds():
    assert known_kinds() == {"agent", "http", "approval"}
    assert node_kind("agent") is agent.execute
    assert node_kind("http") is http.execute


def test_approval_is_known_but_not_executable():
    execute = node_kind("approval")

    with pytest.raises(NodeFailure, match="approval gate") as caught:
        execute(context({"node_id": "gate", "kind": "approval"}))

    assert caught.value.failure_kind == "not_executable"


def test_unknown_kind_is_a_clear_node_failure():
    with pytest.raises(UnknownNodeKind) as caught:
        node_kind("shout")

    error = caught.value
    assert isinstance(error, NodeFailure)
    assert isinstance(error, LookupError)
    assert error.failure_kind == "unknown_node_kind"
    assert error.reason == "unknown node kind 'shout'; registered kinds: agent, approval, http"


def test_kind_added_by_settings_is_registered_and_dropped_with_the_setting():
    with override_settings(FLOWGATE_NODE_KINDS=SHOUT):
        assert known_kinds() == {"agent", "http", "approval", "shout"}
        execute = node_kind("shout")
        assert execute is shout
        assert execute(context({"node_id": "n", "objective": "hi"}))["summary"] == "HI"

    assert "shout" not in known_kinds()
    with pytest.raises(UnknownNodeKind):
        node_kind("shout")


@override_settings(FLOWGATE_NODE_KINDS={"broken": "tests.automations.nodes.test_registry.nope"})
def test_a_path_that_does_not_import_is_improperly_configured():
    assert "broken" in known_kinds()  # validation never imports deployment code

    with pytest.raises(ImproperlyConfigured, match="node kind 'broken': cannot import"):
        node_kind("broken")


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        ({"http": "tests.automations.nodes.test_registry.shout"}, "cannot replace the built-in"),
        ({"Shout": "tests.automations.nodes.test_registry.shout"}, "must be lowercase"),
        ({"shout": ""}, "needs a dotted path"),
        (["shout"], "must be a dict"),
    ],
)
def test_bad_settings_are_refused(kinds, message):
    with (
        override_settings(FLOWGATE_NODE_KINDS=kinds),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        known_kinds()
