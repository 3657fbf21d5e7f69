"""The `agent` node kind: render the node's prompt and ask the agent's model provider.

The prompt is `metadata.builder.prompt`, else `objective` (repair edits the former). It is
rendered into two messages: a system message naming the agent's template, and a user message
with the prompt, the run's inputs and the upstream outputs as JSON. `prompt_digest` is the
sha256 of exactly that text (system, a blank line, user), so two outputs with the same digest
saw the same input.

The agent's `model_policy` picks the provider: `{"provider": "echo"|"openai", "model": ...}`, or
the original's `{"default_model": {"provider_id", "model_id"}}`; with neither, `echo`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from automations.nodes.base import NodeContext, NodeFailure
from automations.nodes.providers import (
    MODEL_REQUIRED,
    PROVIDERS,
    CompletionRequest,
    canonical_json,
    provider,
)

DEFAULT_PROVIDER = "echo"
DEFAULT_TIMEOUT_S = 60.0
SUMMARY_CHARS = 200


@dataclass(frozen=True)
class ModelChoice:
    provider: str
    model: str | None


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    user: str

    @property
    def text(self) -> str:
        return f"{self.system}\n\n{self.user}"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def execute(ctx: NodeContext) -> dict[str, Any]:
    """Run one agent node; returns its output (SPEC §3) or raises `NodeFailure`."""
    agent = ctx.agent
    if not isinstance(agent, Mapping):
        raise NodeFailure(
            f"agent node {ctx.node_id!r} has no agent profile in the run snapshot",
            failure_kind="agent_missing",
        )
    prompt = node_prompt(ctx.node)
    if prompt is None:
        raise NodeFailure(
            f"agent node {ctx.node_id!r} has no prompt: set metadata.builder.prompt or objective",
            failure_kind="prompt_missing",
        )
    template_id = agent.get("template_id") if isinstance(agent.get("template_id"), str) else None
    choice = model_choice(agent.get("model_policy"))
    feedback = tuple(
        str(entry.get("reason")) for entry in ctx.feedback if isinstance(entry, Mapping)
    )
    rendered = render_prompt(prompt, template_id, ctx.upstream_outputs, ctx.inputs, feedback)
    completion = provider(choice.provider)(
        CompletionRequest(
            provider=choice.provider,
            model=choice.model,
            template_id=template_id,
            prompt=prompt,
            system=rendered.system,
            user=rendered.user,
            upstream_outputs=ctx.upstream_outputs,
            timeout_s=_timeout(ctx.node),
            feedback=feedback,
            inputs=ctx.inputs,
        )
    )
    return {
        "status": "completed",
        "summary": _summary(completion.text),
        "content": {"text": completion.text},
        "model": completion.model,
        "provider": choice.provider,
        "template_id": template_id,
        "prompt": prompt,
        "prompt_digest": rendered.digest,
    }


def node_prompt(node: Mapping[str, Any]) -> str | None:
    """`metadata.builder.prompt`, else `objective`; None when neither is a non-blank string."""
    metadata = node.get("metadata")
    builder = metadata.get("builder") if isinstance(metadata, Mapping) else None
    for candidate in (
        builder.get("prompt") if isinstance(builder, Mapping) else None,
        node.get("objective"),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate
    return None


def render_prompt(
    prompt: str,
    template_id: str | None,
    upstream_outputs: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    feedback: tuple[str, ...] = (),
) -> RenderedPrompt:
    """The system and user messages every provider receives: the run's inputs, when it has any,
    before the upstream outputs; reviewers' rework reasons, when a gate sent this node back,
    last so the model answers them."""
    template = f"template {template_id!r}" if template_id else "no template"
    system = f"You are a Flowgate agent running {template}."
    user = prompt
    if inputs:
        user += f"\n\nRun inputs (JSON):\n{canonical_json(dict(inputs))}"
    if upstream_outputs:
        user += f"\n\nUpstream outputs (JSON):\n{canonical_json(dict(upstream_outputs))}"
    if feedback:
        reasons = "\n".join(f"- {reason}" for reason in feedback)
        user += f"\n\nReviewer feedback on the previous attempt (address it):\n{reasons}"
    return RenderedPrompt(system=system, user=user)


class ModelPolicyError(ValueError):
    """A `model_policy` that names no usable provider/model; the message says why."""


def model_choice(policy: Any) -> ModelChoice:
    """Provider and model from a `model_policy`; a malformed policy is a node failure (flow
    validation refuses one at save with `parse_model_policy`, so this is for old snapshots)."""
    try:
        return parse_model_policy(policy)
    except ModelPolicyError as exc:
        raise NodeFailure(
            f"invalid agent model_policy: {exc}", failure_kind="invalid_model_policy"
        ) from None


def parse_model_policy(policy: Any) -> ModelChoice:
    """The provider and model a `model_policy` picks; raises `ModelPolicyError`.

    The provider must be registered (`providers.PROVIDERS`), and those that need a model
    (`openai`) must be given one.
    """
    if policy is None:
        return ModelChoice(DEFAULT_PROVIDER, None)
    if not isinstance(policy, Mapping):
        raise ModelPolicyError("model_policy must be an object")
    if policy.get("provider") is not None or policy.get("model") is not None:
        provider_name, model = policy.get("provider"), policy.get("model")
        where = "model_policy"
    elif isinstance(policy.get("default_model"), Mapping):
        original = policy["default_model"]
        provider_name, model = original.get("provider_id"), original.get("model_id")
        where = "model_policy.default_model"
    else:
        return ModelChoice(DEFAULT_PROVIDER, None)
    if provider_name is None:
        provider_name = DEFAULT_PROVIDER
    if not isinstance(provider_name, str) or not provider_name.strip():
        raise ModelPolicyError(f"{where}: the provider must be a non-empty string")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ModelPolicyError(f"{where}: the model must be a non-empty string")
    name = provider_name.strip().lower()
    if name not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise ModelPolicyError(
            f"{where}: unknown model provider {provider_name!r}; known providers: {known}"
        )
    if name in MODEL_REQUIRED and not model:
        raise ModelPolicyError(f"{where}: the {name} provider needs a model")
    return ModelChoice(name, model.strip() if model else None)


def _timeout(node: Mapping[str, Any]) -> float:
    timeout = node.get("timeout_s")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        return float(timeout)
    return DEFAULT_TIMEOUT_S


def _summary(text: str) -> str:
    """The first non-blank line of the answer, shortened for lists and chat cards."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 1] + "…"
