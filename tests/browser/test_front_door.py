"""The front door in headless Chromium: `/` for signed-in people and strangers, and the API docs
served from the site under its CSP with no network beyond the server (issue 16, item 3)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from automations.models import Run, RunStatus
from governance.models import User
from tests.support.browser import csp_violations, offline_except, screenshot
from tests.support.demo import demo_run_at_gate, seed_demo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(settings, live_server, celery_test_queue):
    """The `./flowgate run` demo: its run waits at the reviewer's gate, and a second run of it
    has failed."""
    settings.FLOWGATE_PUBLIC_URL = live_server.url
    seed_demo()
    run = demo_run_at_gate()
    failed = Run.objects.get(pk=run.pk)
    failed.pk = None
    failed.run_id = f"{run.run_id[:-4]}fail"
    failed.status = RunStatus.FAILED
    failed.detail = "node draft failed: provider unavailable"
    failed.save()
    return run


@pytest.mark.parametrize(("width", "height", "name"), [(1280, 800, "desktop"), (390, 844, "phone")])
def test_the_landing_page_shows_a_reviewer_what_needs_them(
    demo, signed_in_page, live_server, width, height, name
):
    """Issue 16: `GET /` was a DEBUG 404."""
    page = signed_in_page(User.objects.get(username="reviewer"), width=width, height=height)
    violations = csp_violations(page)
    outside = offline_except(page, live_server.url)

    response = page.goto("/")
    assert response.status == 200
    expect(page.get_by_role("heading", name="Welcome, reviewer")).to_be_visible()
    pending = page.get_by_role("region", name="Waiting for your decision")
    expect(
        pending.get_by_role("link", name="Weekly report: Approve the weekly report")
    ).to_be_visible()
    attention = page.get_by_role("region", name="Runs needing attention")
    expect(attention.get_by_text("Failed", exact=True)).to_be_visible()
    expect(attention.get_by_text("Awaiting approval", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="API docs")).to_be_visible()
    # A reviewer is not staff: no admin link they could not use.
    expect(page.get_by_role("link", name="Admin console")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"landing-{name}.png")

    pending.get_by_role("link", name="Weekly report: Approve the weekly report").click()
    expect(page).to_have_url(f"{live_server.url}/approvals/{demo.gates.get().pk}/")
    assert violations == [] and outside == []


def test_the_landing_page_links_staff_to_the_admin_run_page(demo, signed_in_page):
    page = signed_in_page(User.objects.get(username="operator"))
    page.goto("/")
    expect(page.get_by_role("link", name="Admin console")).to_be_visible()
    attention = page.get_by_role("region", name="Runs needing attention")
    attention.get_by_role("link").filter(has_text=demo.run_id).click()
    expect(page).to_have_url(
        f"{page.url.split('/admin/')[0]}/admin/automations/run/{demo.run_id}/change/"
    )


def test_a_stranger_gets_a_sign_in_link(new_context, live_server):
    page = new_context(width=390, height=844).new_page()
    violations = csp_violations(page)
    response = page.goto("/")
    assert response.status == 200
    page.get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    assert violations == []


def test_the_api_docs_render_offline_under_the_csp(new_context, live_server):
    """Issue 16: /api/docs/ was blank without internet (Swagger UI from a CDN, exempted from
    the CSP)."""
    page = new_context().new_page()
    violations = csp_violations(page)
    outside = offline_except(page, live_server.url)

    response = page.goto("/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # An operation of the schema, rendered by the UI from /api/schema/.
    expect(page.get_by_text("/api/automations/v2/runs/{run_id}/gate").first).to_be_visible(
        timeout=20_000
    )
    assert outside == []
    assert violations == []
