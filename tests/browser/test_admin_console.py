"""The admin console in headless Chromium: an operator pauses and recovers a run and the API sees
each change; staff see only their workspaces' runs; the audit chain is verified from a button.

The users are staff who are not superusers: what they may do comes from their membership, as in
production. The run JSON is read through the API with the same browser session. The admin run
page (a run with a gate history) is written to `$FLOWGATE_SCREENSHOTS_DIR/admin-run-page.png`
when that variable is set.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from approvals.decisions import gate_decide
from automations import engine
from automations.models import NodeState, Run, RunNode, RunStatus
from governance.models import AuditEvent, User
from tests.factories import actor_for, awaiting, make_run, output
from tests.support.browser import csp_violations, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def session_queue(celery_test_queue):
    """Runs put back in `queued` are sent to this session's own test queue (removed at the
    end of the session); no worker consumes it here, so the run stays where the admin put it."""


def staff(member) -> User:
    member.user.is_staff = True
    member.user.save(update_fields=["is_staff"])
    return member.user


def run_json(page: Page, run: Run) -> dict:
    response = page.request.get(f"/api/automations/v2/runs/{run.run_id}")
    assert response.status == 200, response.text()
    return response.json()["run"]


def test_operator_pauses_and_recovers_a_run_and_the_api_reflects_each_change(
    operator, signed_in_page
):
    run = make_run(actor_for(operator), status=RunStatus.RUNNING)
    page = signed_in_page(staff(operator))
    blocked = csp_violations(page)

    # Pause from the runs list: tick the run, choose the action, give a reason, Go.
    page.goto("/admin/automations/run/")
    page.locator(f'input[name="_selected_action"][value="{run.pk}"]').check()
    page.select_option('select[name="action"]', "pause")
    page.fill('input[name="reason"]', "deploy freeze")
    page.locator('button[name="index"]').click()  # the action bar's "Go"
    expect(page.locator("ul.messagelist")).to_contain_text(f"Run {run.run_id}: paused")
    paused = run_json(page, run)
    assert (paused["status"], paused["pause_reason"]) == ("paused", "deploy freeze")

    # Recover from the run page's buttons.
    page.get_by_role("link", name=run.run_id).click()
    expect(page.locator("#fg-nodes")).to_be_visible()
    page.fill("#fg-reason", "freeze over")
    page.locator('button[data-action="recover"]').click()
    page.get_by_test_id("confirm-yes").click()  # recover resets nodes: it asks first
    expect(page.locator("ul.messagelist")).to_contain_text(f"Run {run.run_id}: queued")
    recovered = run_json(page, run)
    assert recovered["status"] == "queued"
    assert recovered["version"] == paused["version"] + 1
    events = [e["event"] for e in recovered["checkpoint"]["lifecycle_history"]]
    assert events[-1] == "run_recovered_from_pause"
    expect(page.locator('tr.fg-event[data-event="run_recovered_from_pause"]')).to_be_visible()

    # Queued again: the page offers only what a queued run allows.
    expect(page.locator('button[data-action="resume"]')).to_have_count(0)
    expect(page.locator('button[data-action="pause"]')).to_be_visible()
    assert run_json(page, run)["version"] == recovered["version"]
    audits = AuditEvent.objects.filter(payload__runID=run.run_id, actor_id="otto-operator")
    assert {"automation.run.paused", "automation.run.recovered"} <= set(
        audits.values_list("event_type", flat=True)
    )
    assert blocked == []


def test_staff_cannot_see_another_workspaces_runs(operator, outsider, signed_in_page):
    ours = make_run(actor_for(operator), status=RunStatus.RUNNING)
    theirs = make_run(actor_for(outsider), status=RunStatus.RUNNING, automation_id="theirs")
    page = signed_in_page(staff(outsider))

    page.goto("/admin/automations/run/")
    expect(page.locator("#result_list")).to_contain_text(theirs.run_id)
    expect(page.locator("#result_list")).not_to_contain_text(ours.run_id)
    expect(page.locator("#changelist-filter")).not_to_contain_text("acme/ops")

    response = page.goto(f"/admin/automations/run/{ours.pk}/change/")
    assert response.status == 404
    expect(page.locator("body")).not_to_contain_text(ours.run_id)
    page.goto(f"/admin/automations/run/?q={ours.run_id}")
    expect(page.locator("#changelist-form")).not_to_contain_text(ours.run_id)


def test_audit_verify_chain_shows_its_result(admin, operator, signed_in_page):
    make_run(actor_for(operator), status=RunStatus.RUNNING)
    events = AuditEvent.objects.filter(workspace=admin.workspace).count()
    page = signed_in_page(staff(admin))
    page.goto("/admin/governance/auditevent/")
    page.locator("#fg-verify-chains").click()
    expect(page.locator("ul.messagelist .success")).to_have_text(
        f"Audit chain of acme/ops: ok ({events} events)"
    )


def test_admin_run_page_with_a_gate_history(operator, reviewer, signed_in_page):
    """The run page of a run whose gate was sent back for rework and opened again; the
    screenshot in the README is this page."""
    run = awaiting(actor_for(operator))
    gate_decide(actor=actor_for(reviewer), run=run, decision="rework", reason="Cite the sources")
    outputs = {
        "draft": output(summary="Q3 report, second draft"),
        "review": output(summary="Revenue up 4%", note="<script>alert('x')</script>"),
    }
    for node_id, out in outputs.items():
        RunNode.objects.filter(run=run, node_id=node_id).update(
            state=NodeState.COMPLETED, attempts=2, output=out
        )
    engine.run_advance(run.run_id)
    run.refresh_from_db()
    assert run.status == RunStatus.AWAITING_APPROVAL

    page = signed_in_page(staff(operator), width=1280, height=900)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/admin/automations/run/{run.pk}/change/")
    graph = page.locator("#fg-flow-graph .fg-graph-wide svg.fg-graph")
    expect(graph).to_be_visible()
    expect(graph.locator('g[data-node-id="approval"]')).to_have_attribute(
        "data-state", "awaiting_approval"
    )
    history = page.locator("#fg-gate-history")
    expect(history.locator('[data-decision="rework"]')).to_contain_text("Cite the sources")
    expect(history.locator("tbody tr")).to_have_count(2)
    expect(page.locator("#fg-timeline")).to_contain_text("approval_gate_opened")
    expect(page.locator('tr[data-node-id="review"] pre.fg-output')).to_contain_text(
        "<script>alert('x')</script>"  # shown as text, never run
    )
    screenshot(page, "admin-run-page.png")
    assert dialogs == []


def test_a_reviewer_approves_a_gate_from_the_admin_and_the_api_shows_it(
    operator, reviewer, signed_in_page
):
    """From the run page's gate history to the gate's page, approve with a reason: the run JSON
    shows the gate decided by the reviewer from the admin."""
    run = awaiting(actor_for(operator))
    page = signed_in_page(staff(reviewer))
    blocked = csp_violations(page)
    page.goto(f"/admin/automations/run/{run.pk}/change/")
    gate_id = run_json(page, run)["checkpoint"]["awaiting_gate"]["approval_request_id"]
    page.locator(f'#fg-gate-history tr[data-gate-id="{gate_id}"] a').click()

    panel = page.locator("#fg-gate-decision")
    expect(panel).to_contain_text("You may decide this gate.")
    panel.locator('textarea[name="reason"]').fill("Numbers check out")
    panel.locator('button[data-decision="approve"]').click()
    expect(page.locator("ul.messagelist .success")).to_contain_text(": approved")
    expect(panel.locator(".fg-outcome")).to_contain_text("Approved by rita-reviewer via Admin")
    expect(panel.locator("form")).to_have_count(0)

    decided = run_json(page, run)
    assert decided["status"] == "queued"
    assert decided["checkpoint"]["awaiting_gate"] is None
    [entry] = decided["checkpoint"]["gate_history"]
    assert entry["approval_request_id"] == gate_id
    assert (entry["decision"], entry["reason"]) == ("approve", "Numbers check out")
    assert entry["decided_by"] == {"kind": "human", "actor_id": "rita-reviewer", "source": "admin"}
    assert blocked == []
