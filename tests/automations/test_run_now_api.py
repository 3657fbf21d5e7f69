"""Starting runs: permission, snapshot, pending nodes, audit, 409 for paused/draft automations."""

from __future__ import annotations

import pytest

from automations.models import Run, RunStatus
from governance.models import AuditEvent
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import create_automation as create


@pytest.mark.django_db
class TestRunNow:
    def test_operator_starts_a_queued_run(self, operator, django_capture_on_commit_callbacks):
        create(operator, automation_id="weekly")
        with django_capture_on_commit_callbacks() as callbacks:
            response = operator.client().post(f"{URL}/weekly/run_now")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["ok"] is True
        run = body["run"]
        assert run["status"] == "queued"
        assert run["automation_id"] == "weekly"
        assert run["requested_by"] == operator.user.username
        assert run["checkpoint"]["pending_nodes"] == ["draft", "approval"]
        assert run["checkpoint"]["completed_nodes"] == []
        stored = Run.objects.get(run_id=run["run_id"])
        assert stored.automation_snapshot["version"] == 1
        assert stored.nodes.count() == 2
        event = AuditEvent.objects.get(event_type="automation.run_started")
        assert event.payload["runID"] == run["run_id"]
        assert len(callbacks) == 1  # execution is scheduled after commit

    def test_snapshot_does_not_follow_later_edits(self, operator):
        create(operator, automation_id="weekly")
        client = operator.client()
        run_id = client.post(f"{URL}/weekly/run_now").json()["run"]["run_id"]
        client.patch(f"{URL}/weekly", {"name": "Renamed"}, format="json")
        assert Run.objects.get(run_id=run_id).automation_snapshot["name"] == "Weekly report"

    @pytest.mark.parametrize("status", ["paused", "draft"])
    def test_inactive_automation_does_not_start(self, operator, status):
        create(operator, automation_id="weekly", status=status)
        response = operator.client().post(f"{URL}/weekly/run_now")
        assert response.status_code == 409
        assert response.json()["code"] == "AUTOMATION_V2_NOT_ACTIVE"
        assert response.json()["automationStatus"] == status
        assert not Run.objects.exists()

    def test_viewer_and_reviewer_are_forbidden(self, operator, viewer, reviewer):
        create(operator, automation_id="weekly")
        for member in (viewer, reviewer):
            response = member.client().post(f"{URL}/weekly/run_now")
            assert response.status_code == 403
        assert not Run.objects.exists()

    def test_agent_without_grant_is_forbidden(self, operator, agent):
        create(operator, automation_id="weekly")
        response = agent.client().post(f"{URL}/weekly/run_now")
        assert response.status_code == 403
        assert response.json()["code"] == "AUTOMATION_V2_MODIFY_FORBIDDEN"

    def test_other_workspace_is_404(self, operator, outsider):
        create(operator, automation_id="weekly")
        response = outsider.client().post(f"{URL}/weekly/run_now")
        assert response.status_code == 404

    def test_run_detail_and_tenancy(self, operator, viewer, outsider):
        create(operator, automation_id="weekly")
        run_id = operator.client().post(f"{URL}/weekly/run_now").json()["run"]["run_id"]
        assert viewer.client().get(f"{URL}/runs/{run_id}").json()["run"]["run_id"] == run_id
        theirs = outsider.client().get(f"{URL}/runs/{run_id}")
        missing = outsider.client().get(f"{URL}/runs/run-nope")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["code"] == "AUTOMATION_V2_RUN_NOT_FOUND"
        assert Run.objects.get().status == RunStatus.QUEUED
