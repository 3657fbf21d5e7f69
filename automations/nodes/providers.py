"""Model providers for agent nodes: provider name → `complete(request) -> Completion`.

- `echo` (the default): deterministic and offline. Its text states the prompt, template and
  model it was given, plus a short digest of the upstream outputs, so a repair of any of them is
  visible in the next output and tests can assert on it.
- `openai`: any OpenAI-compatible chat-completions endpoint at `FLOWGATE_OPENAI_BASE_URL` with
  `FLOWGATE_OPENAI_API_KEY`. The base URL is operator configuration, not flow input, so it is not
  subject to the http node's host allowlist.

Providers raise `NodeFailure` for expected failures (`provider_not_configured`,
`provider_error`, `provider_timeout`) and never touch the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.conf import settings

from automations.nodes.base import NodeFailure

ECHO_DEFAULT_MODEL = "echo-1"

# How much of an error response is quoted in a failure reason.
_ERROR_EXCERPT_CHARS = 300


@dataclass(frozen=True)
class CompletionRequest:
    """What an agent node asks a provider for; `system` and `user` are the rendered messages."""

    provider: str
    model: str | None
    template_id: str | None
    prompt: str  # the node prompt as authored, before rendering
    system: str
    user: str
    upstream_outputs: Mapping[str, Any]
    timeout_s: float
    feedback: tuple[str, ...] = ()  # reviewers' rework reasons, oldest first (also in `user`)
    inputs: Mapping[str, Any] = field(default_factory=dict)  # the run's inputs


@dataclass(frozen=True)
class Completion:
    text: str
    model: str  # the model that answered (the provider's own name for it when it reports one)
    usage: Mapping[str, Any] | None = field(default=None)


Provider = Callable[[CompletionRequest], Completion]


def echo(request: CompletionRequest) -> Completion:
    """Answer with what it was given: prompt, template, model, an upstream digest and the
    run's inputs (a line only when the run has inputs)."""
    model = request.model or ECHO_DEFAULT_MODEL
    lines = [
        f"prompt: {request.prompt}",
        f"template: {request.template_id or '-'}",
        f"model: {model}",
        f"upstream: {upstream_digest(request.upstream_outputs)}",
    ]
    if request.inputs:
        lines.append(f"inputs: {canonical_json(dict(request.inputs))}")
    lines += [f"feedback: {reason}" for reason in request.feedback]
    text = "\n".join(lines)
    return Completion(text=text, model=model)


def upstream_digest(outputs: Mapping[str, Any]) -> str:
    """`node=<12 hex of sha256>` per upstream node, sorted by node id; `none` when empty."""
    if not outputs:
        return "none"
    return ", ".join(
        f"{node_id}={hashlib.sha256(canonical_json(outputs[node_id]).encode()).hexdigest()[:12]}"
        for node_id in sorted(outputs)
    )


def canonical_json(value: Any) -> str:
    """Stable JSON text (sorted keys) so equal outputs always render and digest the same."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def openai(request: CompletionRequest) -> Completion:
    """POST `{base}/chat/completions`; the first choice's message content is the text."""
    base_url = (getattr(settings, "FLOWGATE_OPENAI_BASE_URL", "") or "").strip().rstrip("/")
    api_key = (getattr(settings, "FLOWGATE_OPENAI_API_KEY", "") or "").strip()
    if not base_url or not api_key:
        raise NodeFailure(
            "openai provider is not configured (set FLOWGATE_OPENAI_BASE_URL and "
            "FLOWGATE_OPENAI_API_KEY)",
            failure_kind="provider_not_configured",
        )
    if not request.model:
        raise NodeFailure(
            "the openai provider needs a model in the agent's model_policy",
            failure_kind="invalid_model_policy",
        )
    url = f"{base_url}/chat/completions"
    body = {
        "model": request.model,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.user},
        ],
    }
    try:
        with httpx.Client(timeout=request.timeout_s, follow_redirects=False) as client:
            response = client.post(url, json=body, headers={"Authorization": f"Bearer {api_key}"})
    except httpx.TimeoutException as exc:
        raise NodeFailure(
            f"openai provider timed out after {request.timeout_s:g} s",
            failure_kind="provider_timeout",
        ) from exc
    except httpx.HTTPError as exc:
        raise NodeFailure(
            f"openai provider request failed: {type(exc).__name__}: {exc}",
            failure_kind="provider_error",
        ) from exc
    if not response.is_success:
        excerpt = response.text[:_ERROR_EXCERPT_CHARS]
        raise NodeFailure(
            f"openai provider answered HTTP {response.status_code}: {excerpt}",
            failure_kind="provider_error",
            status_code=response.status_code,
        )
    return _parse_completion(response, request.model)


def _parse_completion(response: httpx.Response, requested_model: str) -> Completion:
    try:
        data = response.json()
        text = data["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError) as exc:
        raise NodeFailure(
            "openai provider returned an unexpected body (no choices[0].message.content)",
            failure_kind="provider_error",
        ) from exc
    if not isinstance(text, str):
        raise NodeFailure(
            "openai provider returned non-text message content", failure_kind="provider_error"
        )
    model = data.get("model")
    usage = data.get("usage")
    return Completion(
        text=text,
        model=model if isinstance(model, str) and model else requested_model,
        usage=usage if isinstance(usage, Mapping) else None,
    )


PROVIDERS: Mapping[str, Provider] = {"echo": echo, "openai": openai}
# Providers that cannot answer without a model named in the agent's model_policy.
MODEL_REQUIRED = frozenset({"openai"})


def provider(name: str) -> Provider:
    """The provider registered as `name`; unknown names are an agent configuration problem."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise NodeFailure(
            f"unknown model provider {name!r}; known providers: {', '.join(sorted(PROVIDERS))}",
            failure_kind="invalid_model_policy",
        ) from None
