"""The agent node kind: prompt rendering, model policies, the echo provider and an
OpenAI-compatible stand-in server reached over real HTTP."""

from __future__ import annotations

import copy
import hashlib
import time
from typing import Any

import pytest
from django.test import override_settings

from automations.nodes.agent import ModelChoice, execute, model_choice, render_prompt
from automations.nodes.base import NodeContext, NodeFailure

AGENT = {
    "agent_id": "writer",
    "template_id": "template-a",
    "model_policy": {"provider": "echo", "model": "echo-1"},
}
NODE = {
    "node_id": "draft",
    "kind": "agent",
    "agent_id": "writer",
    "objective": "Write the draft",
    "metadata": {"builder": {"prompt": "Write draft v1"}},
}
UPSTREAM = {"research": {"status": "completed", "content": {"text": "facts"}}}


def context(
    node: dict[str, Any] | None = None,
    agent: dict[str, Any] | None = None,
    upstream: dict[str, Any] | None = None,
) -> NodeContext:
    return NodeContext(
        run_id="run-1",
        automation_id="auto-1",
        workspace="acme/ops",
        node=copy.deepcopy(NODE) if node is None else node,
        agent=copy.deepcopy(AGENT) if agent is None else agent,
        upstream_outputs=UPSTREAM if upstream is None else upstream,
    )


def failure(ctx: NodeContext) -> NodeFailure:
    with pytest.raises(NodeFailure) as caught:
        execute(ctx)
    return caught.value


# --- echo ----------------------------------------------------------------------------------------


def test_echo_output_states_prompt_template_model_and_upstream():
    output = execute(context())

    rendered = render_prompt("Write draft v1", "template-a", UPSTREAM)
    assert output == {
        "status": "completed",
        "summary": "prompt: Write draft v1",
        "content": {"text": output["content"]["text"]},
        "model": "echo-1",
        "provider": "echo",
        "template_id": "template-a",
        "prompt": "Write draft v1",
        "prompt_digest": hashlib.sha256(rendered.text.encode()).hexdigest(),
    }
    lines = output["content"]["text"].splitlines()
    assert lines[:3] == ["prompt: Write draft v1", "template: template-a", "model: echo-1"]
    assert lines[3].startswith("upstream: research=")
    assert execute(context()) == output  # deterministic


def repair_prompt(ctx: NodeContext) -> None:
    ctx.node["metadata"]["builder"]["prompt"] = "Write draft v2"


def repair_template(ctx: NodeContext) -> None:
    ctx.agent["template_id"] = "template-b"


def repair_model(ctx: NodeContext) -> None:
    ctx.agent["model_policy"] = {"provider": "echo", "model": "echo-2"}


@pytest.mark.parametrize(
    ("repair", "visible"),
    [
        (repair_prompt, "prompt: Write draft v2"),
        (repair_template, "template: template-b"),
        (repair_model, "model: echo-2"),
    ],
)
def test_a_repair_is_visible_in_the_next_echo_output(repair, visible):
    before = execute(context())
    ctx = context()
    repair(ctx)

    after = execute(ctx)

    assert visible in after["content"]["text"].splitlines()
    assert visible not in before["content"]["text"].splitlines()
    if repair is not repair_model:  # the model is not part of the rendered prompt
        assert after["prompt_digest"] != before["prompt_digest"]


def test_upstream_outputs_change_the_echo_digest_and_the_prompt_digest():
    before = execute(context())
    after = execute(context(upstream={"research": {"status": "completed", "content": {}}}))
    alone = execute(context(upstream={}))

    assert after["content"]["text"] != before["content"]["text"]
    assert after["prompt_digest"] != before["prompt_digest"]
    assert alone["content"]["text"].endswith("upstream: none")


def test_prompt_falls_back_to_the_objective():
    node = copy.deepcopy(NODE)
    del node["metadata"]

    output = execute(context(node=node))

    assert output["prompt"] == "Write the draft"


def test_a_node_without_prompt_or_objective_fails():
    node = {"node_id": "draft", "kind": "agent", "agent_id": "writer", "objective": "  "}

    error = failure(context(node=node))

    assert error.failure_kind == "prompt_missing"


def test_an_agent_node_without_agent_profile_fails():
    ctx = NodeContext(run_id="r", automation_id="a", workspace="acme/ops", node=NODE, agent=None)

    assert failure(ctx).failure_kind == "agent_missing"


# --- model policies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "choice"),
    [
        (None, ModelChoice("echo", None)),
        ({}, ModelChoice("echo", None)),
        ({"model": "echo-9"}, ModelChoice("echo", "echo-9")),
        ({"provider": " OpenAI ", "model": "gpt-4o-mini"}, ModelChoice("openai", "gpt-4o-mini")),
        (
            {"default_model": {"provider_id": "openai", "model_id": "gpt-4o"}},
            ModelChoice("openai", "gpt-4o"),
        ),
        ({"role_models": {}}, ModelChoice("echo", None)),
    ],
)
def test_model_policy_forms(policy, choice):
    assert model_choice(policy) == choice


def test_default_provider_is_echo():
    agent = {"agent_id": "writer"}

    output = execute(context(agent=agent))

    assert (output["provider"], output["model"], output["template_id"]) == ("echo", "echo-1", None)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"provider": "anthropic", "model": "claude"}, "unknown model provider 'anthropic'"),
        ("echo", "model_policy must be an object"),
        ({"provider": ""}, "the provider must be a non-empty string"),
        ({"provider": "echo", "model": 3}, "the model must be a non-empty string"),
    ],
)
def test_bad_model_policies_fail_the_node(policy, message):
    error = failure(context(agent={**AGENT, "model_policy": policy}))

    assert error.failure_kind == "invalid_model_policy"
    assert message in error.reason


# --- openai (real HTTP to a local stand-in) ------------------------------------------------------

OPENAI_AGENT = {**AGENT, "model_policy": {"provider": "openai", "model": "gpt-4o-mini"}}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Draft ready."}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


@pytest.fixture
def openai_server(stand_in):
    stand_in.reply = COMPLETION
    with override_settings(
        FLOWGATE_OPENAI_BASE_URL=f"{stand_in.url}/v1/", FLOWGATE_OPENAI_API_KEY="sk-test"
    ):
        yield stand_in


def test_openai_provider_posts_a_chat_completion(openai_server):
    output = execute(context(agent=OPENAI_AGENT))

    [request] = openai_server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    rendered = render_prompt("Write draft v1", "template-a", UPSTREAM)
    assert request.json() == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": rendered.system},
            {"role": "user", "content": rendered.user},
        ],
    }
    assert "template 'template-a'" in rendered.system
    assert rendered.user.startswith("Write draft v1\n\nUpstream outputs (JSON):\n{")
    assert '"text": "facts"' in rendered.user
    assert output == {
        "status": "completed",
        "summary": "Draft ready.",
        "content": {"text": "Draft ready."},
        "model": "gpt-4o-mini-2024-07-18",
        "provider": "openai",
        "template_id": "template-a",
        "prompt": "Write draft v1",
        "prompt_digest": rendered.digest,
    }


def test_openai_http_error_is_a_provider_error(openai_server):
    openai_server.status = 500
    openai_server.reply = {"error": {"message": "overloaded"}}

    error = failure(context(agent=OPENAI_AGENT))

    assert error.failure_kind == "provider_error"
    assert error.details == {"status_code": 500}
    assert "HTTP 500" in error.reason
    assert "overloaded" in error.reason


@pytest.mark.parametrize("reply", [b"not json", b'{"choices": []}', b"[1, 2]"])
def test_openai_unexpected_body_is_a_provider_error(openai_server, reply):
    openai_server.reply = reply

    assert failure(context(agent=OPENAI_AGENT)).failure_kind == "provider_error"


def test_openai_timeout_uses_the_node_timeout(openai_server):
    openai_server.delay_s = 5
    node = {**copy.deepcopy(NODE), "timeout_s": 0.3}
    started = time.monotonic()

    error = failure(context(node=node, agent=OPENAI_AGENT))

    assert error.failure_kind == "provider_timeout"
    assert "0.3 s" in error.reason
    assert time.monotonic() - started < 3


def test_openai_unreachable_is_a_provider_error(stand_in):
    url = f"{stand_in.url}/v1"
    stand_in.stop()  # nothing listens on the port any more
    with override_settings(FLOWGATE_OPENAI_BASE_URL=url, FLOWGATE_OPENAI_API_KEY="sk-test"):
        assert failure(context(agent=OPENAI_AGENT)).failure_kind == "provider_error"


@pytest.mark.parametrize(
    ("base_url", "key"), [("", "sk-test"), ("http://127.0.0.1:9/v1", ""), ("", "")]
)
def test_openai_without_settings_is_not_configured(base_url, key):
    with override_settings(FLOWGATE_OPENAI_BASE_URL=base_url, FLOWGATE_OPENAI_API_KEY=key):
        error = failure(context(agent=OPENAI_AGENT))

    assert error.reason.startswith("openai provider is not configured")
    assert error.failure_kind == "provider_not_configured"


def test_openai_without_a_model_fails(openai_server):
    agent = {**AGENT, "model_policy": {"provider": "openai"}}

    assert failure(context(agent=agent)).failure_kind == "invalid_model_policy"
    assert openai_server.requests == []
