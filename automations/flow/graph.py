"""The dependency graph: cycle detection at validation, and the descendants the engine resets.

Cycles are found with Tarjan's strongly connected components rather than
`graphlib.TopologicalSorter`: its `CycleError` names one cycle only, so nodes on another cycle of
the same tangle (a <-> b <-> c) would go unreported, and it cannot group cycles into tangles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from automations.flow.problems import Problems
from automations.flow.values import JSON, node_label


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


def check_cycles(nodes: list[JSON], problems: Problems) -> None:
    """Report every node on a dependency cycle, with one concrete cycle per tangle."""
    graph = _dependency_graph(nodes)
    for component in _strongly_connected(graph):
        if len(component) < 2:  # self-dependencies are reported by the node's depends_on check
            continue
        members = set(component)
        cycle = " -> ".join(_cycle_through(min(members), graph, members))
        for node_id in sorted(members):
            problems.add(
                node_id, "depends_on", f"dependency cycle: {cycle} (each depends on the next)"
            )


def _dependency_graph(nodes: list[JSON]) -> dict[str, list[str]]:
    """node id → ids it depends on, keeping only edges to other existing nodes.

    `nodes` are normalised, so `depends_on` is a list of ids.
    """
    graph: dict[str, list[str]] = {n["node_id"]: [] for n in nodes if node_label(n.get("node_id"))}
    for node in nodes:
        node_id = node.get("node_id")
        if isinstance(node_id, str) and node_id in graph:
            graph[node_id] += [d for d in node["depends_on"] if d in graph and d != node_id]
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
    """A shortest cycle from `start` back to itself inside `members`, a strongly connected
    component of two or more nodes (so the search always finds one)."""
    parents: dict[str, str] = {}
    queue = deque([start])
    while True:
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
