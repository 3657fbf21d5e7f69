"""Agent profiles of an automation and the references agent nodes make to them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automations.flow.problems import Problems, Report
from automations.flow.values import JSON, id_problem, optional_string


def normalise_agents(agents: Any, problems: Problems) -> tuple[list[JSON], set[str]]:
    """Agent profiles as given, checked; returns them and the ids agent nodes may reference.

    Profiles stay free-form apart from the checked keys.
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
        if agent.get("model_policy") is not None and not isinstance(agent["model_policy"], Mapping):
            report(f"{path}.model_policy", "must be an object")
        for key in ("template_id", "display_name"):
            optional_string(agent, key, f"{path}.", report)
        profiles.append(dict(agent))
    return profiles, seen


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
