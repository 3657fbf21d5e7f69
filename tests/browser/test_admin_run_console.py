"""The operator's run console in headless Chromium at desktop (1280 x 800) and phone (390 x 844)
sizes: a decision made elsewhere shows on an open run page and run list without a reload, a
completed run offers no run action, cancel asks first, repair shows what it resets before the
operator confirms, and nothing pushes the page wider than the window. No CSP violation.

Screenshots go to `$FLOWGATE_SCREENSHOTS_DIR` when it is set (scripts/screenshots.py).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from approvals.decisions import gate_decide
from automations.models import NodeState, Run, RunNode, RunStatus
from tests.factories import HOSTILE, actor_for, awaiting, make_run, output
from tests.support.browser import csp_violations, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = [pytest.param((1280, 800), id="desktop"), pytest.param((390, 844), id="phone")]


@pytest.fixture(autouse=True)
def session_queue(celery_test_queue):
    """Runs put back in `queued` go to this session's own test queue; no worker consumes it,
    so a run stays where the console or the decision put it."""


def staff_page(signed_in_page, member, size) -> Page:
    member.user.is_staff = True
    member.user.save(update_fields=["is_staff"])
    width, height = size
    return signed_in_page(member.user, width=width, height=height)


def run_page(run: Run) -> str:
    return f"/admin/automations/run/{run.run_id}/change/"


def decide_elsewhere(reviewer, run: Run) -> None:
    """Another reviewer approves through the decision service, in another thread (its own
    database connection), while the page stays open."""

    def decide() -> None:
        try:
            gate_decide(actor=actor_for(reviewer), run=run, decision="approve", reason="Fine")
        finally:
            connection.close()

    thread = threading.Thread(target=decide)
    thread.start()
    thread.join()


def assert_fits(page: Page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide in a {width} px window"


@pytest.mark.parametrize("size", SIZES)
def test_a_decision_made_elsewhere_shows_on_the_open_run_page(
    operator, reviewer, signed_in_page, size
):
    run = awaiting(actor_for(operator))
    page = staff_page(signed_in_page, operator, size)
    blocked = csp_violations(page)
    page.goto(run_page(run))
    status = page.locator("#fg-run-summary .fg-status")
    expect(status).to_have_text("Awaiting approval")
    expect(page.locator("#fg-run-summary .fg-step")).to_have_text("gate approval")
    page.fill("#fg-reason", "typed before the update")

    decide_elsewhere(reviewer, run)

    expect(status).to_have_text("Queued", timeout=15_000)  # no reload: the poller saw it
    expect(page.locator('tr.fg-event[data-event="approval_gate_decided"]')).to_have_count(1)
    expect(page.locator('#fg-flow-graph svg:visible g[data-node-id="approval"]')).to_have_attribute(
        "data-state", "completed"
    )
    expect(page.locator('#fg-gate-history [data-decision="approve"]')).to_contain_text("Fine")
    expect(page.locator('button[data-action="pause"]')).to_be_visible()
    expect(page.locator("#fg-reason")).to_have_value("typed before the update")
    assert_fits(page, size[0])
    assert blocked == []


def test_a_decision_made_elsewhere_shows_on_the_open_run_list(operator, reviewer, signed_in_page):
    run = awaiting(actor_for(operator))
    other = make_run(actor_for(operator), status=RunStatus.PAUSED)
    page = staff_page(signed_in_page, operator, (1280, 800))
    blocked = csp_violations(page)
    page.goto("/admin/automations/run/")
    cell = page.locator(f"#fg-run-{run.pk}-status")
    expect(cell).to_have_text("Awaiting approval")
    expect(page.locator(f"#fg-run-{run.pk}-step")).to_have_text("gate approval")
    page.locator(f'input[name="_selected_action"][value="{other.pk}"]').check()

    decide_elsewhere(reviewer, run)

    expect(cell).to_have_text("Queued", timeout=15_000)
    expect(page.locator(f"#fg-run-{run.pk}-step")).to_have_text("—")
    # The operator's selection is untouched by the update.
    expect(page.locator(f'input[name="_selected_action"][value="{other.pk}"]')).to_be_checked()
    expect(page.locator("[data-live-stale]")).to_be_hidden()
    make_run(actor_for(operator), status=RunStatus.QUEUED)  # a new run: announced, not inserted
    expect(page.locator("[data-live-stale]")).to_be_visible(timeout=15_000)
    assert_fits(page, 1280)
    assert blocked == []


@pytest.mark.parametrize("size", SIZES)
def test_a_completed_run_offers_no_run_action(operator, signed_in_page, size):
    run = make_run(actor_for(operator), status=RunStatus.COMPLETED)
    page = staff_page(signed_in_page, operator, size)
    page.goto(run_page(run))
    expect(page.locator("#fg-run-summary .fg-status")).to_have_text("Completed")
    expect(page.locator("[data-action]")).to_have_count(0)
    expect(page.get_by_test_id("no-run-actions")).to_be_visible()
    expect(page.locator(".closelink")).to_have_count(0)  # no stray "Close" under the fields


@pytest.mark.parametrize("size", SIZES)
def test_cancel_asks_for_a_confirmation_first(operator, signed_in_page, size):
    run = make_run(actor_for(operator), status=RunStatus.RUNNING)
    page = staff_page(signed_in_page, operator, size)
    blocked = csp_violations(page)
    page.goto(run_page(run))
    page.fill("#fg-reason", "wrong input file")
    page.locator('button[data-action="cancel"]').click()

    confirm = page.get_by_test_id("confirm-action")
    expect(confirm).to_contain_text("cannot be resumed")
    expect(page.locator("#fg-confirm-reason")).to_have_value("wrong input file")
    assert_fits(page, size[0])
    screenshot(page, f"admin-cancel-confirm-{'phone' if size[0] < 600 else 'desktop'}.png")
    page.get_by_test_id("confirm-no").click()  # changed their mind: nothing happened
    expect(page.locator("#fg-run-summary .fg-status")).to_have_text("Running")
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING

    page.locator('button[data-action="cancel"]').click()
    page.get_by_test_id("confirm-yes").click()
    expect(page.locator("ul.messagelist")).to_contain_text(f"Run {run.run_id}: cancelled")
    expect(page.locator("#fg-run-summary .fg-status")).to_have_text("Cancelled")
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert blocked == []


@pytest.mark.parametrize("size", SIZES)
def test_repair_shows_the_reset_preview_before_confirming(operator, signed_in_page, size):
    run = make_run(actor_for(operator), status=RunStatus.FAILED)
    RunNode.objects.filter(run=run, node_id="draft").update(
        state=NodeState.COMPLETED, attempts=1, output=output(summary="draft one")
    )
    RunNode.objects.filter(run=run, node_id="review").update(
        state=NodeState.FAILED, attempts=3, output=output("failed", error="model refused")
    )
    page = staff_page(signed_in_page, operator, size)
    blocked = csp_violations(page)
    page.goto(run_page(run))
    page.locator('tr[data-node-id="review"] [data-node-action="repair"]').click()

    preview = page.get_by_test_id("reset-preview")
    expect(preview.locator("[data-reset-node]")).to_have_text(["approval", "review"])
    expect(preview.locator("[data-cleared-output]")).to_have_text(["review"])
    prompt = page.locator('textarea[name="prompt"]')
    expect(prompt).to_have_value("Write review v1")
    prompt.fill("Review it against the style guide")
    page.fill('input[name="reason"]', "the model refused the old prompt")
    screenshot(page, f"admin-repair-{'phone' if size[0] < 600 else 'desktop'}.png")
    assert_fits(page, size[0])
    page.get_by_test_id("confirm-yes").click()

    expect(page.locator("ul.messagelist")).to_contain_text("repaired review")
    expect(page.locator("#fg-run-summary .fg-status")).to_have_text("Queued")
    expect(page.locator('tr.fg-event[data-event="run_step_repaired"]')).to_contain_text(
        "the model refused the old prompt"
    )
    expect(page.locator('tr[data-node-id="draft"] pre.fg-output')).to_contain_text("draft one")
    assert blocked == []


@pytest.mark.parametrize("size", SIZES)
def test_the_run_page_fits_the_window_with_a_large_output(operator, signed_in_page, size):
    run = make_run(actor_for(operator), status=RunStatus.PAUSED)
    wide = {"text": "x" * 3000, "html": HOSTILE, "rows": [{"k" * 80: "v" * 400}] * 3}
    RunNode.objects.filter(run=run, node_id="draft").update(
        state=NodeState.COMPLETED, attempts=1, output=output(**wide)
    )
    Run.objects.filter(pk=run.pk).update(last_failure={"error": "y" * 2000})
    page = staff_page(signed_in_page, operator, size)
    page.goto(run_page(run))
    expect(page.locator('tr[data-node-id="draft"] pre.fg-output')).to_contain_text("xxxx")
    assert_fits(page, size[0])
    assert page.evaluate("window.__pwned") is None
    screenshot(page, f"admin-run-page-{'phone' if size[0] < 600 else 'desktop'}.png")
