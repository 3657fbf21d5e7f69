"""`page_response`: the list body every keyset-paginated view answers, in its documented key
order, page after page."""

from __future__ import annotations

import pytest

from automations.models import Automation
from governance.api.pagination import page_response
from tests.factories import AutomationFactory, WorkspaceFactory


@pytest.mark.django_db
def test_page_response_renders_each_row_under_its_key_and_pages_by_cursor():
    workspace = WorkspaceFactory()
    made = [AutomationFactory(workspace=workspace).automation_id for _ in range(3)]
    AutomationFactory()  # another workspace's: not in the queryset
    rows = Automation.objects.filter(workspace=workspace)

    def page(**query):
        return page_response(
            rows, {"limit": 2, **query}, key="automations", render=lambda a: a.automation_id
        ).data

    first = page()
    assert list(first) == ["automations", "count", "next_cursor"]
    assert first["automations"] == made[:0:-1] and first["count"] == 2
    last = page(cursor=first["next_cursor"])
    assert last == {"automations": made[:1], "count": 1, "next_cursor": None}
