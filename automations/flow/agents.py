"""Agent profiles of an automation and the references agent nodes make to them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automations.flow.problems import Problems, Report
from automations.flow.values import JSON, id_problem, optional_string, reject_unknown_keys
from automations.nodes.agent import ModelPolicyError, parse_model_policy

_MODEL_POLICY_KEYS = frozenset({"provider", "model", "default_model"})
_DEFAULT_MODEL_KEYS = frozenset({"provider_id", "model_id"})


def normalise_agents(agents: Any, problems: Problems) -> tuple[list[JSON], set[str]]:
    """Agent profiles as given, checked; returns them and the ids agent nodes may reference.

    Profiles stay free-form apart from the checked keys; `model_policy` is checked whole (its
    keys, a registered provider, a model where the provider needs one), so a policy naming an
    unknown provider is refused at save rather than failing the run.
    """
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
        _check_model_policy(agent.get("model_policy"), f"{path}.model_policy", report)
        for key in ("template_id", "display_name"):
            optional_string(agent, key, f"{path}.", report)
        profiles.append(dict(agent))
    return profiles, seen


def _check_model_policy(policy: Any, path: str, report: Report) -> None:
    if policy is None:
        return
    if not isinstance(policy, Mapping):
        report(path, "must be an object")
        return
    reject_unknown_keys(policy, _MODEL_POLICY_KEYS, path, report)
    if isinstance(policy.get("default_model"), Mapping):
        reject_unknown_keys(
            policy["default_model"], _DEFAULT_MODEL_KEYS, f"{path}.default_model", report
        )
    try:
        parse_model_policy(policy)
    except ModelPolicyError as exc:
        report(path, str(exc))


def _check_agent_id(agent_id: Any, seen: set[str], path: str, report: Report) -> None:
    problem = id_problem(agent_id)
    if problem:
        report(path, problem)
    elif agent_id in seen:
        report(path, f"duplicate agent_id {agent_id!r}")
    else:
        seen.add(agent_id)


def check_agent_reference(agent_id: Any, agent_ids: set[str], report: Report) -> None:
    if agent_id is None or agent_id == "":
        report("agent_id", "agent nodes need an agent_id")
    elif not isinstance(agent_id, str):
        report("agent_id", "must be a string")
    elif agent_id not in agent_ids:
        report("agent_id", f"unknown agent {agent_id!r}; it must be one of agents[].agent_id")
