"""The flow graph SVG: layout by depth, states and kinds shown, labels escaped, any spec drawn."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from automations.flow_diagram import BOX_WIDTH, COLUMN_GAP, MARGIN, ROW_GAP, flow_graph_svg

SVG = "{http://www.w3.org/2000/svg}"


def spec(*nodes: dict) -> dict:
    return {"flow": {"nodes": list(nodes)}}


def node(node_id: str, kind: str = "agent", *deps: str) -> dict:
    return {"node_id": node_id, "kind": kind, "depends_on": list(deps)}


DIAMOND = spec(
    node("fetch", "http"),
    node("draft", "agent", "fetch"),
    node("check", "agent", "fetch"),
    node("review", "approval", "draft", "check"),
    node("send", "http", "review"),
)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg))  # well-formed XML, or this raises


def boxes(svg: str) -> dict[str, ET.Element]:
    return {g.get("data-node-id"): g for g in parse(svg).iter(f"{SVG}g")}


def edges(svg: str) -> list[ET.Element]:
    return [p for p in parse(svg).iter(f"{SVG}path") if p.get("class") == "fg-edge"]


def rect_xy(group: ET.Element) -> tuple[int, int]:
    rect = group.find(f"{SVG}rect")
    return int(rect.get("x")), int(rect.get("y"))


def column_x(column: int) -> int:
    return MARGIN + column * (BOX_WIDTH + COLUMN_GAP)


def test_each_node_sits_in_the_column_of_its_longest_dependency_chain():
    found = boxes(flow_graph_svg(DIAMOND))
    assert {node_id: rect_xy(g)[0] for node_id, g in found.items()} == {
        "fetch": column_x(0),
        "draft": column_x(1),
        "check": column_x(1),
        "review": column_x(2),
        "send": column_x(3),
    }
    # Nodes of one column get distinct rows, in flow order.
    assert rect_xy(found["draft"])[1] < rect_xy(found["check"])[1]


def test_a_node_depending_on_a_deep_and_a_shallow_node_goes_after_the_deep_one():
    svg = flow_graph_svg(spec(node("a"), node("b", "agent", "a"), node("c", "agent", "a", "b")))
    assert rect_xy(boxes(svg)["c"])[0] == column_x(2)


def test_states_and_kinds_are_text_and_classes():
    svg = flow_graph_svg(
        DIAMOND,
        {"fetch": "completed", "check": "failed", "review": "awaiting_approval"},
        highlight="review",
    )
    found = boxes(svg)
    assert found["fetch"].get("class").split() == ["fg-node", "fg-kind-http", "fg-state-completed"]
    assert "fg-state-failed" in found["check"].get("class")
    assert "fg-highlight" in found["review"].get("class")
    assert "fg-state-none" in found["send"].get("class")  # no state given
    captions = {k: g.find(f"{SVG}text[@class='fg-node-caption']").text for k, g in found.items()}
    assert captions["fetch"] == "http · completed"
    assert captions["review"] == "approval · awaiting approval"
    assert captions["send"] == "http"
    fills = {k: g.find(f"{SVG}rect").get("fill") for k, g in found.items()}
    assert fills["fetch"] != fills["check"] != fills["send"]
    assert found["review"].find(f"{SVG}rect").get("stroke-width") == "3"


def test_original_style_approval_markers_are_drawn_as_approval():
    svg = flow_graph_svg(spec({"node_id": "legacy", "stage_kind": "approval"}))
    assert "fg-kind-approval" in boxes(svg)["legacy"].get("class")


def test_one_edge_per_known_dependency():
    svg = flow_graph_svg(spec(node("a"), node("b", "agent", "a", "a", "ghost", "b")))
    # Duplicate, unknown and self dependencies are dropped.
    assert [(p.get("data-from"), p.get("data-to")) for p in edges(svg)] == [("a", "b")]


def test_an_edge_that_skips_a_column_runs_in_the_gap_above_the_rows():
    svg = flow_graph_svg(spec(node("a"), node("b", "agent", "a"), node("c", "agent", "a", "b")))
    paths = {(p.get("data-from"), p.get("data-to")): p.get("d") for p in edges(svg)}
    ys = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", paths[("a", "c")])[1::2]]
    assert min(ys) < MARGIN  # above the top of the first row of boxes
    assert " C " in paths[("a", "b")]  # adjacent columns: a plain curve


def test_labels_are_escaped():
    hostile = '<script>alert("x")</script>'
    svg = flow_graph_svg(spec(node(hostile, 'kind"><script>')), {hostile: "<b>bad</b>"})
    assert "<script>" not in svg
    assert "<b>" not in svg
    group = next(iter(boxes(svg).values()))
    assert group.get("data-node-id") == hostile
    assert group.get("data-state") == "<b>bad</b>"
    # Class tokens from kinds and states are reduced to safe characters.
    assert all(re.fullmatch(r"[a-z0-9_-]+", c) for c in group.get("class").split())


def test_long_ids_are_cut_in_the_box_and_kept_whole_in_the_tooltip():
    long_id = "summarise_the_quarterly_numbers_for_the_board"
    group = boxes(flow_graph_svg(spec(node(long_id))))[long_id]
    label = group.find(f"{SVG}text[@class='fg-node-id']").text
    assert label.endswith("…") and len(label) < len(long_id)
    assert group.find(f"{SVG}title").text.startswith(long_id)


def test_a_cycle_or_a_malformed_spec_still_draws():
    cyclic = spec(node("a", "agent", "b"), node("b", "agent", "a"), node("c"))
    found = boxes(flow_graph_svg(cyclic))
    assert set(found) == {"a", "b", "c"}
    assert rect_xy(found["c"])[0] == column_x(0)
    assert rect_xy(found["a"])[0] == rect_xy(found["b"])[0] == column_x(1)

    for malformed in ({}, {"flow": None}, {"flow": {"nodes": "x"}}, spec("not a node", {"x": 1})):
        assert "No nodes" in flow_graph_svg(malformed)


def test_the_same_spec_always_draws_the_same_svg():
    states = {"fetch": "completed"}
    assert flow_graph_svg(DIAMOND, states) == flow_graph_svg(DIAMOND, dict(states))
    reordered_states = dict(reversed(list({"draft": "running", "fetch": "completed"}.items())))
    assert flow_graph_svg(DIAMOND, reordered_states) == flow_graph_svg(
        DIAMOND, {"draft": "running", "fetch": "completed"}
    )


def test_the_vertical_drawing_puts_each_depth_below_the_last_and_fits_a_phone():
    svg = flow_graph_svg(DIAMOND, vertical=True)
    found = {node_id: rect_xy(g) for node_id, g in boxes(svg).items()}
    depth_y = [found["fetch"][1], found["draft"][1], found["review"][1], found["send"][1]]
    assert depth_y == sorted(set(depth_y))  # one level per depth, top-down
    assert found["draft"][1] == found["check"][1] and found["draft"][0] != found["check"][0]
    root = parse(svg)
    assert int(root.get("width")) == 2 * MARGIN + 2 * BOX_WIDTH + ROW_GAP  # two boxes wide
    # Its own arrow marker, so a page can hold both drawings and hide either one.
    assert root.find(f"{SVG}defs/{SVG}marker").get("id") == "fg-arrow-v"
    assert all(edge.get("marker-end") == "url(#fg-arrow-v)" for edge in edges(svg))
    assert len(edges(svg)) == len(edges(flow_graph_svg(DIAMOND)))


def test_a_vertical_edge_that_skips_a_level_runs_left_of_the_boxes():
    skipping = spec(node("a"), node("b", "agent", "a"), node("c", "agent", "a", "b"))
    svg = flow_graph_svg(skipping, vertical=True)
    long_edge = next(e for e in edges(svg) if (e.get("data-from"), e.get("data-to")) == ("a", "c"))
    xs = [float(v) for v in re.findall(r"L (\S+) ", long_edge.get("d"))]
    assert min(xs) < MARGIN  # the lane left of every box
