"""The flow drawn as an SVG graph, one box per node with its kind and state.

Used by the approval pages and the admin console, so a reviewer and an operator see the same
picture. The layout is deterministic and needs no JavaScript: a node's column is its depth (the
longest dependency chain leading to it), rows within a column follow the average row of the
node's dependencies (fewer crossing edges), ties broken by the node's position in the flow.
`vertical=True` draws the same layout turned a quarter: depth runs down the page, for narrow
screens where a wide graph would be scrolled or shrunk.

Colours are SVG presentation attributes, so the graph reads correctly on a page with no
stylesheet (and under a content security policy that forbids inline styles); every element also
carries classes (`fg-node`, `fg-kind-<kind>`, `fg-state-<state>`, `fg-edge`) for a stylesheet to
override. Node ids, kinds and states come from user-authored specs and are escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from automations.flow import is_approval_node

BOX_WIDTH = 196
BOX_HEIGHT = 58
COLUMN_GAP = 44
ROW_GAP = 22
MARGIN = 16  # leaves room above the first row for edges that skip columns
LABEL_CHARS = 24  # longer node ids are cut with an ellipsis; the full id is the box's <title>

# state -> (fill, stroke). `awaiting_approval` is not a RunNode state: pages pass it for the
# gate node that is open, so the reviewer sees which box they are deciding.
STATE_COLOURS: dict[str, tuple[str, str]] = {
    "pending": ("#f4f4f5", "#a1a1aa"),
    "running": ("#dbeafe", "#2563eb"),
    "completed": ("#dcfce7", "#16a34a"),
    "blocked": ("#fef3c7", "#d97706"),
    "failed": ("#fee2e2", "#dc2626"),
    "skipped": ("#f4f4f5", "#71717a"),
    "awaiting_approval": ("#ede9fe", "#7c3aed"),
}
NO_STATE_COLOURS = ("#ffffff", "#71717a")


def flow_graph_svg(
    spec: Mapping[str, Any],
    node_states: Mapping[str, str] | None = None,
    *,
    highlight: str | None = None,
    vertical: bool = False,
) -> SafeString:
    """An inline `<svg>` of the automation spec's (or run snapshot's) flow.

    `node_states` maps node ids to a state shown under the node (nodes missing from it show
    none); `highlight` names a node drawn with a thicker outline (the gate under review).
    Dependencies on unknown nodes are ignored and nodes on a dependency cycle (only possible
    in an unvalidated spec) are put in a last column, so any spec can be drawn. `vertical`
    puts the columns one under the other (see the module docstring).
    """
    nodes = _nodes(spec)
    states = node_states or {}
    if not nodes:
        return format_html(
            '<svg class="fg-graph" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}"'
            ' role="img" aria-label="Empty flow"><text x="{}" y="{}">No nodes</text></svg>',
            BOX_WIDTH,
            BOX_HEIGHT,
            MARGIN,
            BOX_HEIGHT // 2,
        )
    positions = _layout(nodes)
    columns = max(column for column, _ in positions.values()) + 1
    rows = max(row for _, row in positions.values()) + 1
    width = 2 * MARGIN + columns * BOX_WIDTH + (columns - 1) * COLUMN_GAP
    height = 2 * MARGIN + rows * BOX_HEIGHT + (rows - 1) * ROW_GAP
    if vertical:
        width = 2 * MARGIN + rows * BOX_WIDTH + (rows - 1) * ROW_GAP
        height = 2 * MARGIN + columns * BOX_HEIGHT + (columns - 1) * COLUMN_GAP
    marker = "fg-arrow-v" if vertical else "fg-arrow"  # two graphs may share one page

    edges = format_html_join(
        "",
        "{}",
        (
            (_edge(positions[dep], positions[node["node_id"]], dep, node["node_id"], vertical),)
            for node in nodes
            for dep in _dependencies(node, positions)
        ),
    )
    boxes = format_html_join(
        "",
        "{}",
        (
            (
                _box(
                    node,
                    positions[node["node_id"]],
                    states.get(node["node_id"]),
                    highlight,
                    vertical,
                ),
            )
            for node in nodes
        ),
    )
    return format_html(
        '<svg class="fg-graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}"'
        ' width="{w}" height="{h}" font-family="system-ui, sans-serif" role="img"'
        ' aria-label="{label}">'
        "<title>{label}</title>"
        '<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7"'
        ' markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"'
        ' fill="#71717a"/></marker></defs>'
        "{edges}{boxes}</svg>",
        w=width,
        h=height,
        marker=marker,
        label=f"Flow graph of {len(nodes)} node{'s' if len(nodes) != 1 else ''}",
        edges=edges,
        boxes=boxes,
    )


def _nodes(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The flow's node objects with a string id, first occurrence of each id kept."""
    flow = spec.get("flow") if isinstance(spec, Mapping) else None
    raw = flow.get("nodes") if isinstance(flow, Mapping) else None
    seen: set[str] = set()
    nodes = []
    for node in raw if isinstance(raw, list) else []:
        node_id = node.get("node_id") if isinstance(node, Mapping) else None
        if isinstance(node_id, str) and node_id not in seen:
            seen.add(node_id)
            nodes.append(node)
    return nodes


def _dependencies(node: Mapping[str, Any], known: Mapping[str, Any]) -> list[str]:
    deps = node.get("depends_on")
    if not isinstance(deps, list):
        return []
    unique = dict.fromkeys(d for d in deps if isinstance(d, str) and d in known)
    unique.pop(node["node_id"], None)
    return list(unique)


def _layout(nodes: list[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """node id -> (column, row): column = longest path from a root (Kahn's order), rows ordered
    by the mean row of the node's dependencies, then by flow order."""
    order = {node["node_id"]: index for index, node in enumerate(nodes)}
    deps = {node["node_id"]: _dependencies(node, order) for node in nodes}
    dependents: dict[str, list[str]] = {node_id: [] for node_id in order}
    for node_id, node_deps in deps.items():
        for dep in node_deps:
            dependents[dep].append(node_id)

    depth: dict[str, int] = {}
    waiting = {node_id: len(node_deps) for node_id, node_deps in deps.items()}
    ready = [node_id for node_id in order if waiting[node_id] == 0]
    while ready:
        node_id = ready.pop()
        depth[node_id] = max((depth[dep] + 1 for dep in deps[node_id]), default=0)
        for child in dependents[node_id]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    last = max(depth.values(), default=-1) + 1
    for node_id in order:  # left on a cycle
        depth.setdefault(node_id, last)

    positions: dict[str, tuple[int, int]] = {}
    for column in range(max(depth.values()) + 1):
        members = [node_id for node_id in order if depth[node_id] == column]

        def sort_key(node_id: str) -> tuple[float, int]:
            placed = [positions[dep][1] for dep in deps[node_id] if dep in positions]
            return (sum(placed) / len(placed) if placed else -1.0, order[node_id])

        for row, node_id in enumerate(sorted(members, key=sort_key)):
            positions[node_id] = (column, row)
    return positions


def _origin(position: tuple[int, int], vertical: bool = False) -> tuple[int, int]:
    column, row = position
    if vertical:
        return (
            MARGIN + row * (BOX_WIDTH + ROW_GAP),
            MARGIN + column * (BOX_HEIGHT + COLUMN_GAP),
        )
    return (
        MARGIN + column * (BOX_WIDTH + COLUMN_GAP),
        MARGIN + row * (BOX_HEIGHT + ROW_GAP),
    )


def _edge(
    source: tuple[int, int], target: tuple[int, int], dep: str, node_id: str, vertical: bool
) -> SafeString:
    """An arrow from the dependency's right side to the dependant's left side (vertical: from
    its bottom to the dependant's top).

    Between adjacent columns a curve; an edge that skips columns (or, on a cycle, goes back)
    runs along the gap above the higher of the two rows (vertical: left of the leftmost), where
    no box can be, so it never passes behind an unrelated box and reads as a dependency it is
    not.
    """
    sx, sy = _origin(source, vertical)
    tx, ty = _origin(target, vertical)
    half = COLUMN_GAP // 2
    if vertical:
        x1, y1 = sx + BOX_WIDTH // 2, sy + BOX_HEIGHT
        x2, y2 = tx + BOX_WIDTH // 2, ty
        if target[0] == source[0] + 1:
            d = f"M {x1} {y1} C {x1} {y1 + half}, {x2} {y2 - half}, {x2} {y2}"
        else:
            lane = min(sx, tx) - ROW_GAP // 2
            d = (
                f"M {x1} {y1} L {x1} {y1 + half} L {lane} {y1 + half} L {lane} {y2 - half}"
                f" L {x2} {y2 - half} L {x2} {y2}"
            )
        return _path(d, dep, node_id, "fg-arrow-v")
    x1, y1 = sx + BOX_WIDTH, sy + BOX_HEIGHT // 2
    x2, y2 = tx, ty + BOX_HEIGHT // 2
    if target[0] == source[0] + 1:
        d = f"M {x1} {y1} C {x1 + half} {y1}, {x2 - half} {y2}, {x2} {y2}"
    else:
        lane = min(sy, ty) - ROW_GAP // 2
        d = (
            f"M {x1} {y1} L {x1 + half} {y1} L {x1 + half} {lane} L {x2 - half} {lane}"
            f" L {x2 - half} {y2} L {x2} {y2}"
        )
    return _path(d, dep, node_id, "fg-arrow")


def _path(d: str, dep: str, node_id: str, marker: str) -> SafeString:
    return format_html(
        '<path class="fg-edge" data-from="{}" data-to="{}" d="{}" fill="none" stroke="#a1a1aa"'
        ' stroke-width="1.5" stroke-linejoin="round" marker-end="url(#{})"/>',
        dep,
        node_id,
        d,
        marker,
    )


def _box(
    node: Mapping[str, Any],
    position: tuple[int, int],
    state: str | None,
    highlight: str | None,
    vertical: bool = False,
) -> SafeString:
    node_id = node["node_id"]
    kind = "approval" if is_approval_node(node) else str(node.get("kind") or "agent")
    fill, stroke = STATE_COLOURS.get(state or "", NO_STATE_COLOURS)
    x, y = _origin(position, vertical)
    classes = ["fg-node", f"fg-kind-{_class_token(kind)}"]
    classes.append(f"fg-state-{_class_token(state)}" if state else "fg-state-none")
    highlighted = node_id == highlight
    if highlighted:
        classes.append("fg-highlight")
    label = node_id if len(node_id) <= LABEL_CHARS else node_id[: LABEL_CHARS - 1] + "…"
    caption = f"{kind} · {state.replace('_', ' ')}" if state else kind
    return format_html(
        '<g class="{classes}" data-node-id="{node_id}" data-state="{state}">'
        "<title>{node_id} ({caption})</title>"
        '<rect x="{x}" y="{y}" width="{bw}" height="{bh}" rx="8" fill="{fill}" stroke="{stroke}"'
        ' stroke-width="{sw}"{dash}/>'
        '<text class="fg-node-id" x="{tx}" y="{ty1}" font-size="14" font-weight="600"'
        ' fill="#18181b">{label}</text>'
        '<text class="fg-node-caption" x="{tx}" y="{ty2}" font-size="12" fill="#3f3f46">'
        "{caption}</text></g>",
        classes=" ".join(classes),
        node_id=node_id,
        state=state or "",
        caption=caption,
        x=x,
        y=y,
        bw=BOX_WIDTH,
        bh=BOX_HEIGHT,
        fill=fill,
        stroke=stroke,
        sw=3 if highlighted else 1.5,
        dash=mark_safe(' stroke-dasharray="4 3"') if state == "skipped" else "",
        tx=x + 12,
        ty1=y + 24,
        ty2=y + 44,
        label=label,
    )


def _class_token(value: str | None) -> str:
    """A CSS class fragment: lower-case letters, digits, `-` and `_` only."""
    return re.sub(r"[^a-z0-9_-]+", "-", str(value).lower()).strip("-") or "unknown"
