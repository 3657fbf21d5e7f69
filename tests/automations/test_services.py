"""Automation services called directly: id rules, what an update writes, deletes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automations import services
from automations.models import Automation
from governance.errors import AutomationNotFound, InvalidRequest
from tests.automations.test_api import body, create
from tests.governance.test_policy import actor_of


@pytest.mark.django_db
class TestIds:
    @pytest.mark.parametrize("bad_id", ["weekly\n", "weekly\r\n", "a\x00b", "runs", " weekly"])
    def test_ids_must_match_the_whole_pattern(self, operator, bad_id):
        with pytest.raises(InvalidRequest):
            services.automation_create(actor=actor_of(operator), data=body(automation_id=bad_id))
        assert not Automation.objects.exists()


@pytest.mark.django_db
class TestUpdate:
    def test_writes_only_the_changed_columns(self, operator):
        create(operator, automation_id="weekly")
        automation = Automation.objects.select_related("created_by", "workspace").get()
        with CaptureQueriesContext(connection) as queries:
            services.automation_update(
                actor=actor_of(operator), automation=automation, data={"name": "Renamed"}
            )
        (update,) = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "automations_')]
        assert '"name"' in update and '"version"' in update and '"updated_at"' in update
        assert '"flow"' not in update and '"status"' not in update

    def test_spec_changes_rewrite_the_normalised_spec(self, operator):
        create(operator, automation_id="weekly")
        automation = Automation.objects.select_related("created_by", "workspace").get()
        updated = services.automation_update(
            actor=actor_of(operator), automation=automation, data={"execution": {}}
        )
        assert updated.version == 2
        assert Automation.objects.get().execution == {"max_parallel": 1}

    def test_update_of_a_concurrently_deleted_automation_is_not_found(self, operator):
        create(operator, automation_id="weekly")
        stale = Automation.objects.select_related("created_by", "workspace").get()
        services.automation_delete(actor=actor_of(operator), automation=stale)
        with pytest.raises(AutomationNotFound):
            services.automation_update(
                actor=actor_of(operator), automation=stale, data={"name": "Late"}
            )
        with pytest.raises(AutomationNotFound):
            services.automation_delete(actor=actor_of(operator), automation=stale)
        assert Automation.objects.get().name == "Weekly report"
