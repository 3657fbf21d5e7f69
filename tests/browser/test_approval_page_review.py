"""The gate page as issue 16 asks for it, in headless Chromium at desktop and phone sizes:
what to judge and the decision first, a confirmation before cancelling, decided gates that say
what happened and what was reviewed, a graph that fits a phone, and live updates while the page
is open (another reviewer's decision, a new round, an expiry), all under the site's CSP.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from approvals.decisions import gate_decide
from approvals.models import Gate, GateDecision, GateStatus
from automations import engine
from automations.api.run_json import approval_url
from automations.models import NodeState, Run, RunNode, RunStatus
from governance.models import Role
from tests.factories import actor_for, review_gate
from tests.support.browser import csp_violations, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
# A draft of realistic length: the page must put the decision within reach all the same.
LONG_DRAFT = "\n".join(
    f"Paragraph {n}: what changed this week and why it matters." for n in range(20)
)


@pytest.fixture(autouse=True)
def card_links(settings, live_server, celery_test_queue):
    settings.FLOWGATE_PUBLIC_URL = live_server.url


@pytest.fixture
def requester(operator):
    return actor_for(operator)


def top_of(page, test_id: str) -> float:
    return page.evaluate(
        "id => document.querySelector(`[data-testid='${id}']`).getBoundingClientRect().top"
        " + window.scrollY",
        test_id,
    )


@SIZES
@pytest.mark.parametrize("draft", ["Draft text for review", LONG_DRAFT], ids=["short", "long"])
def test_what_to_judge_then_the_decision_then_the_run(
    signed_in_page, reviewer, requester, size, draft
):
    gate = review_gate(
        requester,
        instructions="Check the tone",
        text=draft,
        policy={"risk_tier": "external_send"},
    )
    page = signed_in_page(reviewer.user, **size)
    violations = csp_violations(page)
    page.goto(approval_url(gate.pk))

    tops = [top_of(page, t) for t in ("under-review", "downstream-plan", "decision", "flow-graph")]
    assert tops == sorted(tops)
    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"gate page {size['width']}x{size['height']}: height {height}, decision at {tops[2]}")
    if draft is not LONG_DRAFT:  # the decision starts within the first two screens
        assert tops[2] < 2 * size["height"], tops
    if size is PHONE:  # and, however long the draft, one tap away from the first screen
        bar = page.get_by_test_id("decide-bar")
        expect(bar).to_be_in_viewport()  # sticky at the bottom of the first screen
        bar.click()
        expect(page.get_by_role("button", name="Approve")).to_be_in_viewport()
    else:
        expect(page.get_by_test_id("decide-bar")).to_be_hidden()
    expect(page.get_by_test_id("policy")).to_contain_text("External send")
    assert violations == []


@SIZES
def test_the_flow_graph_fits_the_screen(signed_in_page, reviewer, requester, size):
    gate = review_gate(requester)
    page = signed_in_page(reviewer.user, **size)
    page.goto(approval_url(gate.pk))
    graph = page.get_by_test_id("flow-graph")
    drawn = graph.locator("svg:visible")
    expect(drawn).to_have_count(1)
    box, svg = graph.bounding_box(), drawn.bounding_box()
    # A chain of four nodes: across on a desktop, down the page at full size on a phone.
    assert (svg["height"] > svg["width"]) is (size is PHONE)
    boxes = [drawn.locator(f'g[data-node-id="{n}"]').bounding_box() for n in ("draft", "review")]
    if size is PHONE:
        assert svg["width"] == pytest.approx(float(drawn.get_attribute("width")), abs=1)
        assert boxes[1]["y"] > boxes[0]["y"] + boxes[0]["height"]
    assert svg["x"] >= box["x"] and svg["x"] + svg["width"] <= box["x"] + box["width"] + 0.5
    assert graph.evaluate("el => el.scrollWidth <= el.clientWidth")  # nothing hidden to scroll to
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]


@SIZES
def test_cancel_asks_for_a_confirmation_first(signed_in_page, reviewer, requester, size):
    gate = review_gate(requester, decisions=["approve", "rework", "cancel"])
    page = signed_in_page(reviewer.user, **size)
    violations = csp_violations(page)
    page.goto(approval_url(gate.pk))
    page.get_by_label("Reason").fill("Duplicate of last week's run")
    page.get_by_role("button", name="Cancel the run").click()

    expect(page.get_by_test_id("cancel-confirm-error")).to_contain_text("cannot be undone")
    if size is PHONE:
        screenshot(page, "approval-cancel-confirm-phone.png")
    assert not GateDecision.objects.filter(gate=gate).exists()
    assert Run.objects.get(pk=gate.run.pk).status == RunStatus.AWAITING_APPROVAL

    page.get_by_label("I understand that cancelling ends the run").check()
    page.get_by_role("button", name="Cancel the run").click()
    expect(page.get_by_role("status")).to_have_text("You cancelled the run at this gate.")
    expect(page.get_by_test_id("outcome")).to_contain_text("Cancelled by rita-reviewer")
    assert Run.objects.get(pk=gate.run.pk).status == RunStatus.CANCELLED
    assert violations == []


@SIZES
def test_a_decided_gate_says_what_happened_and_offers_the_next_gate(
    signed_in_page, reviewer, requester, size
):
    gate = review_gate(requester)
    waiting = review_gate(requester, automation_id="digest")
    page = signed_in_page(reviewer.user, **size)
    page.goto(approval_url(gate.pk))
    page.get_by_label("Reason").fill("Shorter intro please")
    page.get_by_role("button", name="Send back for rework").click()

    expect(page.get_by_role("status")).to_have_text("You sent this gate back for rework.")
    expect(page.get_by_test_id("under-review")).to_contain_text("What was reviewed in round 1")
    expect(page.get_by_test_id("under-review")).to_contain_text("Draft text for review")
    expect(page.get_by_text("Waiting since")).to_have_count(0)
    expect(page.get_by_test_id("expiry")).not_to_contain_text("in 6 days")

    # The run comes back to the gate: round 1 links to round 2 and back.
    RunNode.objects.filter(run=gate.run, node_id="draft").update(
        state=NodeState.COMPLETED, attempts=1, output={"status": "completed", "summary": "Short"}
    )
    engine.run_advance(gate.run.run_id)
    page.reload()
    page.get_by_test_id("rounds").get_by_role("link", name="round 2 (open)").click()
    expect(page.get_by_test_id("gate-status")).to_have_text("Open")
    expect(page.get_by_test_id("rounds")).to_contain_text("round 1 (decided)")

    page.goto(approval_url(gate.pk))
    page.get_by_test_id("next-pending").get_by_role("link").first.click()
    expect(page.get_by_test_id("gate-status")).to_have_text("Open")
    assert page.url.rstrip("/").split("/")[-1] in {
        waiting.pk,
        Gate.objects.get(run=gate.run, status=GateStatus.OPEN).pk,
    }


@SIZES
def test_another_reviewers_decision_appears_while_the_page_is_open(
    signed_in_page, make_member, reviewer, requester, size
):
    gate = review_gate(requester)
    page = signed_in_page(reviewer.user, **size)
    violations = csp_violations(page)
    page.goto(approval_url(gate.pk))
    page.get_by_label("Reason").fill("Half-typed thoughts")
    expect(page.get_by_test_id("live-update")).to_be_hidden()

    ron = make_member("acme/ops", "ron-reviewer", role=Role.REVIEWER)
    gate_decide(actor=actor_for(ron), run=gate.run, decision="approve", reason="ok", source="api")

    notice = page.get_by_test_id("live-update")
    expect(notice).to_be_visible(timeout=15_000)  # no reload: the page's poller saw it
    expect(notice).to_contain_text("Approved by ron-reviewer.")
    expect(page.get_by_role("button", name="Approve")).to_be_disabled()
    expect(page.get_by_label("Reason")).to_have_value("Half-typed thoughts")  # kept
    if size is PHONE:
        screenshot(page, "approval-live-update-phone.png")
    assert violations == []


def test_an_expiry_appears_while_the_page_is_open(signed_in_page, reviewer, requester):
    gate = review_gate(requester)
    page = signed_in_page(reviewer.user, **PHONE)
    page.goto(approval_url(gate.pk))
    Gate.objects.filter(pk=gate.pk).update(expires_at=gate.requested_at)
    expect(page.get_by_test_id("live-update")).to_contain_text(
        "This gate expired before a decision was made.", timeout=15_000
    )
