"""The approval pages in headless Chromium: what a reviewer arriving from a chat card sees and does.

Gates are opened by the engine (`tests.factories.review_gate`) and every decision goes
through the real service, against the live server. Screenshots of the pages are written to
`$FLOWGATE_SCREENSHOTS_DIR` when it is set (`scripts/screenshots.py` sets it to
docs/screenshots); otherwise nothing is written.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from approvals.models import Gate, GateDecision, GateStatus
from approvals.policy import MESSAGES, SELF_APPROVAL_FORBIDDEN
from automations.api.run_json import approval_url
from automations.models import Run, RunStatus
from governance.models import Role
from tests.factories import HOSTILE, actor_for, review_gate
from tests.support.browser import csp_violations, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def card_links(settings, live_server, celery_test_queue):
    """Approval links as a chat card carries them (absolute, from FLOWGATE_PUBLIC_URL), here
    pointing at the live server. Decisions enqueue the run's next step on this session's test
    queue, which is removed at the end of the session."""
    settings.FLOWGATE_PUBLIC_URL = live_server.url


@pytest.fixture
def requester(operator):
    return actor_for(operator)


def test_reviewer_signs_in_from_a_card_link_reviews_and_approves(
    new_context, reviewer, requester, make_member
):
    gate = review_gate(
        requester,
        instructions="Check the tone before it goes out",
        policy={"risk_tier": "external_send"},
    )
    page = new_context().new_page()
    violations = csp_violations(page)

    page.goto(approval_url(gate.pk))  # signed out: the login form, then back to the card's page
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/approvals/"))
    page.get_by_label("Username").fill("rita-reviewer")
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(approval_url(gate.pk))

    graph = page.get_by_test_id("flow-graph").locator("svg:visible")
    expect(graph).to_be_visible()
    expect(graph.locator('g[data-node-id="review"]')).to_have_attribute(
        "data-state", "awaiting_approval"
    )
    expect(graph.locator('g[data-node-id="draft"]')).to_contain_text("agent · completed")
    output = page.get_by_test_id("upstream-output")
    expect(output).to_contain_text("Drafted the issue")
    expect(output).to_contain_text("Draft text for review")
    expect(page.get_by_text("Check the tone before it goes out")).to_be_visible()
    expect(page.get_by_test_id("policy")).to_contain_text("External send")
    expect(page.get_by_test_id("eligibility")).to_contain_text("You may decide this gate.")

    page.get_by_label("Reason").fill("Tone is right, sources check out")
    page.get_by_role("button", name="Approve").click()

    expect(page.get_by_role("status")).to_have_text("You approved this gate.")
    outcome = page.get_by_test_id("outcome")
    expect(outcome).to_contain_text("Approved by rita-reviewer via approval page at")
    expect(outcome).to_contain_text("Reason: Tone is right, sources check out")
    expect(page.get_by_test_id("gate-status")).to_have_text("Decided")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    record = GateDecision.objects.get(gate=gate, settles=True)
    assert (record.decision, record.source, record.decided_by_id) == (
        "approve",
        "page",
        reviewer.user.pk,
    )
    assert Run.objects.get(pk=gate.run.pk).status == RunStatus.QUEUED
    assert violations == []


def test_rework_without_a_reason_is_refused_in_the_page(signed_in_page, reviewer, requester):
    gate = review_gate(requester)
    page = signed_in_page(reviewer.user)
    page.goto(approval_url(gate.pk))
    page.get_by_role("button", name="Send back for rework").click()

    expect(page.get_by_test_id("reason-error")).to_have_text(
        "A reason is required to send work back for rework."
    )
    expect(page.get_by_test_id("gate-status")).to_have_text("Open")
    assert Gate.objects.get(pk=gate.pk).status == GateStatus.OPEN

    page.get_by_label("Reason").fill("Needs a shorter intro")
    page.get_by_role("button", name="Send back for rework").click()
    expect(page.get_by_test_id("outcome")).to_contain_text(
        "Sent back for rework by rita-reviewer via approval page"
    )


def test_the_requester_sees_why_they_may_not_approve(signed_in_page, make_member):
    owner = make_member("acme/ops", "sam-requester", role=Role.ADMIN)
    gate = review_gate(actor_for(owner), policy={"risk_tier": "external_send"})
    page = signed_in_page(owner.user)
    page.goto(approval_url(gate.pk))

    refusals = page.get_by_test_id("refusals")
    expect(refusals).to_contain_text(MESSAGES[SELF_APPROVAL_FORBIDDEN])
    expect(refusals).to_contain_text("you are the run's requester (who started it)")
    expect(refusals).to_contain_text("the gate is consequential")
    expect(refusals).to_contain_text("risk tier external_send")
    expect(page.get_by_role("button", name="Approve")).to_be_disabled()
    expect(page.get_by_role("button", name="Send back for rework")).to_be_enabled()


def test_a_second_tab_deciding_after_the_first_shows_the_winner(
    signed_in_page, make_member, reviewer, requester
):
    gate = review_gate(requester)
    ron = make_member("acme/ops", "ron-reviewer", role=Role.REVIEWER)
    first, second = signed_in_page(ron.user), signed_in_page(reviewer.user)
    for page in (first, second):
        page.goto(approval_url(gate.pk))
        expect(page.get_by_role("button", name="Approve")).to_be_enabled()

    first.get_by_label("Reason").fill("Ship it")
    first.get_by_role("button", name="Approve").click()
    expect(first.get_by_test_id("outcome")).to_contain_text("Approved by ron-reviewer")

    second.get_by_label("Reason").fill("Looks good to me too")
    second.get_by_role("button", name="Approve").click()  # the form was loaded before
    expect(second.get_by_test_id("decision-error")).to_contain_text(
        "Your decision was not applied."
    )
    expect(second.get_by_test_id("outcome")).to_contain_text(
        "Approved by ron-reviewer via approval page at"
    )
    expect(second.get_by_test_id("outcome")).to_contain_text("Reason: Ship it")
    assert GateDecision.objects.filter(gate=gate, settles=True).count() == 1


def test_output_containing_a_script_renders_inert(signed_in_page, reviewer, requester):
    gate = review_gate(requester, text=HOSTILE)
    page = signed_in_page(reviewer.user)
    violations = csp_violations(page)
    page.goto(approval_url(gate.pk))

    expect(page.locator(".output-text")).to_have_text(HOSTILE)  # shown as text, whole
    page.get_by_text("Full output").click()
    expect(page.locator(".output-raw")).to_contain_text("<script>window.__pwned = 1</script>")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator(".output script, .output img").count() == 0
    assert violations == []  # nothing even tried to run: it is text, not blocked markup


def test_pages_fit_a_phone_and_the_pending_list_links_to_the_gate(
    signed_in_page, make_member, reviewer, requester
):
    gate = review_gate(
        requester,
        instructions="Check the tone before it goes out",
        policy={"risk_tier": "external_send", "data_classes": ["internal"]},
    )
    review_gate(requester, automation_id="digest")
    make_member("acme/ops", "rita-reviewer", role=Role.REVIEWER, clearances=["internal"])
    reviewer.user.refresh_from_db()

    desktop = signed_in_page(reviewer.user)
    desktop.goto("/approvals/")
    expect(desktop.locator(".pending-item")).to_have_count(2)
    expect(desktop.locator(".pending-item").first).to_contain_text("expires in 6 days")
    screenshot(desktop, "pending-list.png")
    desktop.get_by_role("link", name=re.compile("Newsletter: Approve")).click()
    expect(desktop).to_have_url(approval_url(gate.pk))
    expect(desktop.get_by_test_id("flow-graph").locator("svg:visible")).to_be_visible()
    desktop.get_by_label("Reason").fill("Tone is right")
    screenshot(desktop, "approval-page-desktop.png")

    phone = signed_in_page(reviewer.user, width=390, height=844)
    phone.goto(approval_url(gate.pk))
    expect(phone.get_by_role("button", name="Approve")).to_be_visible()
    # Nothing is wider than the screen: the graph scrolls inside its own box.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    box = phone.get_by_role("button", name="Approve").bounding_box()
    assert box["width"] > 300 and box["height"] >= 44  # full-width, thumb-sized
    screenshot(phone, "approval-page-phone.png")


def test_the_admin_still_works_under_the_content_security_policy(signed_in_page, make_member):
    from governance.models import User

    root = User.objects.create_superuser("root", password="pw-for-tests")
    admin_member = make_member("acme/ops", "ada-admin", role=Role.ADMIN)
    review_gate(actor_for(admin_member), automation_id="one")
    review_gate(actor_for(admin_member), automation_id="two")
    page = signed_in_page(root)
    violations = csp_violations(page)

    page.goto("/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    page.goto("/admin/automations/automation/")
    rows = page.locator("#result_list tbody input.action-select")
    expect(rows).to_have_count(2)
    # The admin's actions.js is an external script: ticking "select all" ticks every row.
    page.locator("#action-toggle").check()
    for index in range(2):
        expect(rows.nth(index)).to_be_checked()
    expect(page.locator(".action-counter")).to_contain_text("2 of 2 selected")
    assert violations == []
