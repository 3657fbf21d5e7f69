"""The admin console's automation editor, gate page and audit list in headless Chromium, at
desktop (1280x800) and phone (390x844) sizes: an invalid flow shows the service's problems per
node, a valid one previews its graph and saves; the gate page shows what is under review before
the decision; the audit list filters by typed event type, run and actor and links each event
to its objects. Every page is branded Flowgate, fits the screen and passes the CSP.

Screenshots (docs/screenshots/admin-index.png, admin-automation-invalid.png,
admin-automation-preview-phone.png, admin-gate-review.png, admin-audit-list.png) are written
when $FLOWGATE_SCREENSHOTS_DIR is set (scripts/screenshots.py).
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from approvals.decisions import gate_decide
from approvals.models import Gate
from automations.models import Automation
from governance.models import AuditEvent, User
from tests.factories import AGENTS, actor_for, agent_node, approval_node, awaiting, review_gate
from tests.support.browser import csp_violations, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
FLOW = {
    "nodes": [
        {**agent_node("draft"), "objective": "Write the draft"},
        agent_node("review", "draft"),
        approval_node("approval", "review"),
        agent_node("publish", "approval"),
    ]
}
BROKEN = {
    "nodes": [
        {**agent_node("draft"), "depend_on": ["x"]},
        approval_node("approval", "ghost"),
        {"node_id": "ping", "kind": "http", "http": {}},
    ]
}


@pytest.fixture(autouse=True)
def session_queue(celery_test_queue):
    """Runs started here go to this session's own queue; nobody consumes it."""


def staff(member) -> User:
    member.user.is_staff = True
    member.user.save(update_fields=["is_staff"])
    return member.user


def fits_the_screen(page: Page) -> None:
    """No sideways scrolling: the page is no wider than the window."""
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport, f"page is {width}px wide in a {viewport}px window"


def fill_spec(page: Page, flow: dict) -> None:
    page.fill("#id_name", "Weekly report")
    page.fill("#id_agents", json.dumps(AGENTS, indent=2))
    page.fill("#id_flow", json.dumps(flow, indent=2))


@pytest.mark.parametrize("size", SIZES)
def test_an_operator_creates_an_automation_invalid_first_then_previewed_and_saved(
    operator, signed_in_page, size
):
    width, height = SIZES[size]
    page = signed_in_page(staff(operator), width=width, height=height)
    blocked = csp_violations(page)
    page.goto("/admin/automations/automation/")
    expect(page.locator("#site-name")).to_contain_text("Flowgate")
    expect(page.locator("body")).not_to_contain_text("Django administration")
    page.get_by_role("link", name="Add automation").click()
    expect(page.locator("h1")).to_have_text("Add automation")

    fill_spec(page, BROKEN)
    page.fill("#id_automation_id", f"weekly-{size}")
    page.locator("#fg-preview").click()
    errors = page.locator("#fg-flow-errors")
    expect(errors).to_be_visible()
    for node_id in ("draft", "approval", "ping"):
        expect(errors.locator(f'li[data-node-id="{node_id}"]')).to_be_visible()
    expect(errors.locator('li[data-node-id="draft"]')).to_contain_text("depends_on")
    expect(errors.locator('li[data-node-id="approval"]')).to_contain_text("ghost")
    expect(page.locator("#fg-flow-preview svg:visible")).to_contain_text("invalid")
    fits_the_screen(page)
    if size == "desktop":
        screenshot(page, "admin-automation-invalid.png")
    # Saving the same flow is refused by the service too: nothing is written.
    page.locator("#fg-save").click()
    expect(page.locator("#fg-flow-errors")).to_be_visible()
    assert not Automation.objects.filter(automation_id=f"weekly-{size}").exists()

    fill_spec(page, FLOW)
    page.locator("#fg-preview").click()
    expect(page.locator("#fg-preview-ok")).to_be_visible()
    expect(page.locator("#fg-flow-errors")).to_have_count(0)
    graph = page.locator("#fg-flow-preview svg:visible")
    for node_id in ("draft", "review", "approval", "publish"):
        expect(graph).to_contain_text(node_id)
    box = graph.bounding_box()
    assert box is not None and box["width"] <= width
    fits_the_screen(page)
    if size == "phone":
        screenshot(page, "admin-automation-preview-phone.png")
    assert not Automation.objects.filter(automation_id=f"weekly-{size}").exists()

    page.locator("#fg-save").click()
    expect(page.locator("ul.messagelist")).to_contain_text(
        f"Automation weekly-{size}: created (version 1)"
    )
    automation = Automation.objects.get(automation_id=f"weekly-{size}")
    assert [n["node_id"] for n in automation.flow["nodes"]] == [
        "draft",
        "review",
        "approval",
        "publish",
    ]
    assert AuditEvent.objects.filter(
        event_type="automation.created", payload__automationID=f"weekly-{size}"
    ).exists()

    # Edit: the page shows the stored spec; a change is saved as version 2.
    page.locator("#fg-edit-automation").click()
    flow = json.loads(page.locator("#id_flow").input_value())
    flow["nodes"][0]["objective"] = "Write a shorter draft"
    page.fill("#id_flow", json.dumps(flow, indent=2))
    page.locator("#fg-save").click()
    expect(page.locator("ul.messagelist")).to_contain_text("saved (version 2)")
    automation.refresh_from_db()
    assert automation.flow["nodes"][0]["objective"] == "Write a shorter draft"
    assert blocked == []


@pytest.mark.parametrize("size", SIZES)
def test_the_admin_gate_page_shows_what_is_under_review_before_the_decision(
    operator, reviewer, signed_in_page, size
):
    width, height = SIZES[size]
    gate = review_gate(actor_for(operator), text="Revenue rose 4% over the quarter.")
    page = signed_in_page(staff(reviewer), width=width, height=height)
    blocked = csp_violations(page)
    page.goto(f"/admin/approvals/gate/{gate.pk}/change/")
    review = page.locator("#fg-under-review")
    expect(review.get_by_role("heading", name="Under review")).to_be_visible()
    expect(review.locator('[data-testid="upstream-output"][data-node-id="draft"]')).to_contain_text(
        "Revenue rose 4% over the quarter."
    )
    expect(review.locator('[data-testid="downstream-plan"]')).to_be_visible()
    review_top = review.bounding_box()["y"]
    decision_top = page.locator("#fg-gate-decision").bounding_box()["y"]
    assert review_top < decision_top
    fits_the_screen(page)
    if size == "desktop":
        screenshot(page, "admin-gate-review.png")

    page.fill("#id_reason", "Reads well")
    page.locator('button[data-decision="approve"]').click()
    expect(page.locator("ul.messagelist")).to_contain_text("approved")
    # Decided: the page says what was reviewed in that round.
    expect(page.locator("#fg-under-review")).to_contain_text("What was reviewed in round 1")
    assert blocked == []


def test_the_audit_list_filters_by_typed_values_and_links_each_event(
    admin, reviewer, signed_in_page
):
    runs = [awaiting(actor_for(admin), automation_id=name) for name in ("first", "second")]
    for run in runs:
        gate_decide(actor=actor_for(reviewer), run=run, decision="approve", reason="fine")
    page = signed_in_page(staff(admin), width=1280, height=800)
    blocked = csp_violations(page)
    page.goto("/admin/governance/auditevent/")
    expect(page.locator("#result_list tbody tr")).to_have_count(
        AuditEvent.objects.filter(workspace=admin.workspace).count()
    )

    # Event type (its start), then the run: each a box in the filter sidebar, Enter to apply.
    page.locator('form[data-filter="event_type"] input[type="search"]').fill(
        "automation.governance"
    )
    page.keyboard.press("Enter")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    page.locator('form[data-filter="run_id"] input[type="search"]').fill(runs[1].run_id)
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    assert "event_type=automation.governance" in page.url
    screenshot(page, "admin-audit-list.png")

    # The event links to its gate, run and automation.
    gate = Gate.objects.get(run=runs[1])
    rows.first.locator('a[data-object="gate"]').click()
    expect(page).to_have_url(f"/admin/approvals/gate/{gate.pk}/change/")
    page.go_back()
    rows.first.locator('a[data-object="run"]').click()
    expect(page.locator("body")).to_contain_text(runs[1].run_id)

    page.goto("/admin/governance/auditevent/?actor=rita-reviewer")
    expect(rows).to_have_count(2)
    page.goto("/admin/governance/auditevent/?date=2001-01-01")
    expect(rows).to_have_count(0)
    assert blocked == []


@pytest.mark.parametrize("size", SIZES)
def test_the_console_is_branded_and_uncluttered(admin, signed_in_page, size):
    width, height = SIZES[size]
    page = signed_in_page(staff(admin), width=width, height=height)
    blocked = csp_violations(page)
    page.goto("/admin/")
    expect(page).to_have_title("Operator console | Flowgate")
    expect(page.locator("#site-name")).to_have_text("Flowgate console")
    expect(page.locator("h1")).to_have_text("Operator console")
    # No empty bars: every module caption and header holds text.
    empty = page.evaluate(
        "[...document.querySelectorAll('#header, .module caption, .module h2')]"
        ".filter(e => e.offsetHeight > 0 && !e.textContent.trim()).length"
    )
    assert empty == 0
    fits_the_screen(page)
    if size == "desktop":
        screenshot(page, "admin-index.png")
    assert blocked == []
