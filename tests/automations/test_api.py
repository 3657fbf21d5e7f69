"""The automation API: CRUD, validation, versioning, audit, tenancy and query counts."""

from __future__ import annotations

import time

import pytest

from automations.models import Automation
from governance.models import AuditEvent
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import automation_body as body
from tests.factories import create_automation as create
from tests.factories import simple_flow


def audit_types(workspace):
    return list(AuditEvent.objects.filter(workspace=workspace).values_list("event_type", flat=True))


@pytest.mark.django_db
class TestCreate:
    def test_operator_creates_and_owns(self, operator):
        data = create(operator, automation_id="weekly", execution={"max_parallel": 2})
        assert data["automation_id"] == "weekly"
        assert data["created_by"] == operator.user.username
        assert data["version"] == 1
        assert data["status"] == "active"
        assert data["execution"]["max_parallel"] == 2
        assert data["workspace"] == "acme/ops"
        assert data["created_at_ms"] > 0
        assert "automation.created" in audit_types(operator.workspace)

    def test_generated_id(self, operator):
        data = create(operator)
        assert data["automation_id"].startswith("automation-")

    def test_duplicate_id_is_409(self, operator):
        create(operator, automation_id="weekly")
        response = operator.client().post(URL, body(automation_id="weekly"), format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "AUTOMATION_V2_ALREADY_EXISTS"

    def test_same_id_in_other_workspace_is_independent(self, operator, outsider):
        create(operator, automation_id="weekly")
        create(outsider, automation_id="weekly")
        assert Automation.objects.filter(automation_id="weekly").count() == 2

    @pytest.mark.parametrize("bad_id", ["runs", "has space", "", "x" * 129, "a/b"])
    def test_bad_ids_rejected(self, operator, bad_id):
        response = operator.client().post(URL, body(automation_id=bad_id), format="json")
        assert response.status_code == 400
        assert Automation.objects.count() == 0

    def test_invalid_flow_is_400_without_write(self, operator):
        flow = simple_flow()
        flow["nodes"][1]["depends_on"] = ["nope"]
        response = operator.client().post(URL, body(flow=flow), format="json")
        assert response.status_code == 400
        payload = response.json()
        assert payload["code"] == "AUTOMATION_V2_INVALID_FLOW"
        assert "approval" in payload["nodes"]
        assert Automation.objects.count() == 0
        assert "automation.created" not in audit_types(operator.workspace)

    @pytest.mark.parametrize(
        "field,value",
        [("name", 5), ("flow", []), ("agents", {}), ("execution", "fast"), ("status", "running")],
    )
    def test_wrong_types_name_the_field(self, operator, field, value):
        response = operator.client().post(URL, body(**{field: value}), format="json")
        assert response.status_code == 400
        payload = response.json()
        assert payload["code"] == "INVALID_REQUEST"
        assert field in payload["fields"]

    def test_missing_name(self, operator):
        data = body()
        del data["name"]
        response = operator.client().post(URL, data, format="json")
        assert response.status_code == 400
        assert "name" in response.json()["fields"]

    def test_unknown_field_rejected(self, operator):
        response = operator.client().post(URL, body(colour="red"), format="json")
        assert response.status_code == 400
        assert "colour" in response.json()["fields"]

    @pytest.mark.parametrize("role_fixture", ["viewer", "reviewer"])
    def test_roles_without_create_are_denied_and_audited(self, request, role_fixture):
        member = request.getfixturevalue(role_fixture)
        response = member.client().post(URL, body(), format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "AUTOMATION_V2_ACCESS_DENIED"
        event = AuditEvent.objects.get(event_type="automation.governance.denied")
        assert event.actor_id == member.user.username
        assert event.payload["action"] == "create"


@pytest.mark.django_db
class TestReadUpdateDelete:
    def test_get(self, operator, viewer):
        create(operator, automation_id="weekly")
        response = viewer.client().get(f"{URL}/weekly")
        assert response.status_code == 200
        assert response.json()["name"] == "Weekly report"

    def test_patch_bumps_version_and_audits(self, operator):
        create(operator, automation_id="weekly")
        response = operator.client().patch(f"{URL}/weekly", {"name": "Renamed"}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["name"] == "Renamed"
        assert response.json()["version"] == 2
        event = AuditEvent.objects.filter(event_type="automation.updated").get()
        assert event.payload["changed"] == ["name"]
        assert event.payload["version"] == 2

    def test_patch_validates_merged_flow(self, operator):
        create(operator, automation_id="weekly")
        response = operator.client().patch(f"{URL}/weekly", {"agents": []}, format="json")
        assert response.status_code == 400
        assert response.json()["code"] == "AUTOMATION_V2_INVALID_FLOW"
        assert Automation.objects.get().version == 1

    def test_patch_version_precondition(self, operator):
        create(operator, automation_id="weekly")
        client = operator.client()
        assert (
            client.patch(f"{URL}/weekly", {"name": "A", "version": 1}, format="json").status_code
            == 200
        )
        stale = client.patch(f"{URL}/weekly", {"name": "B", "version": 1}, format="json")
        assert stale.status_code == 409
        assert stale.json()["code"] == "AUTOMATION_V2_VERSION_CONFLICT"
        assert stale.json()["currentVersion"] == 2

    def test_patch_cannot_rename_id(self, operator):
        create(operator, automation_id="weekly")
        response = operator.client().patch(f"{URL}/weekly", {"automation_id": "x"}, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "error": "automation_id cannot be changed",
            "code": "INVALID_REQUEST",
            "fields": {"automation_id": ["Read-only."]},
        }

    @pytest.mark.parametrize("data", [{}, {"version": 1}, {"automation_id": "weekly"}])
    def test_patch_naming_no_field_changes_nothing(self, operator, data):
        created = create(operator, automation_id="weekly")
        before = audit_types(operator.workspace)
        response = operator.client().patch(f"{URL}/weekly", data, format="json")
        assert response.status_code == 200, response.json()
        assert response.json() == created
        assert Automation.objects.get().version == 1
        assert audit_types(operator.workspace) == before

    def test_empty_patch_still_checks_the_version(self, operator):
        create(operator, automation_id="weekly")
        response = operator.client().patch(f"{URL}/weekly", {"version": 7}, format="json")
        assert response.status_code == 409
        assert response.json()["currentVersion"] == 1

    def test_delete_bumps_the_version_and_audits_it(self, operator):
        create(operator, automation_id="weekly")
        client = operator.client()
        assert client.patch(f"{URL}/weekly", {"name": "Renamed"}, format="json").status_code == 200
        assert client.delete(f"{URL}/weekly").status_code == 204
        deleted = Automation.objects.get()
        assert deleted.version == 3
        event = AuditEvent.objects.get(event_type="automation.deleted")
        assert event.payload == {"automationID": "weekly", "version": 3, "cancelledRuns": 0}

    def test_delete_is_soft_and_frees_the_id(self, operator):
        create(operator, automation_id="weekly")
        client = operator.client()
        assert client.delete(f"{URL}/weekly").status_code == 204
        assert client.get(f"{URL}/weekly").status_code == 404
        assert Automation.objects.filter(deleted_at__isnull=False).count() == 1
        create(operator, automation_id="weekly")
        assert "automation.deleted" in audit_types(operator.workspace)

    def test_viewer_cannot_patch_or_delete(self, operator, viewer):
        create(operator, automation_id="weekly")
        client = viewer.client()
        patch = client.patch(f"{URL}/weekly", {"name": "x"}, format="json")
        assert patch.status_code == 403
        assert patch.json()["code"] == "AUTOMATION_V2_ACCESS_DENIED"
        assert client.delete(f"{URL}/weekly").status_code == 403
        assert Automation.objects.get().name == "Weekly report"
        assert audit_types(operator.workspace).count("automation.governance.denied") == 2

    def test_agent_cannot_patch_or_delete_someone_elses_automation(self, operator, agent):
        """SPEC §6.2: an agent modifies only what it created or holds a grant on."""
        create(operator, automation_id="weekly")
        client = agent.client()
        assert client.get(f"{URL}/weekly").status_code == 200
        for response in (
            client.patch(f"{URL}/weekly", {"name": "Bot edit"}, format="json"),
            client.delete(f"{URL}/weekly"),
        ):
            assert response.status_code == 403
            assert response.json()["code"] == "AUTOMATION_V2_MODIFY_FORBIDDEN"
        automation = Automation.objects.get()
        assert (automation.name, automation.version, automation.deleted_at) == (
            "Weekly report",
            1,
            None,
        )
        denials = AuditEvent.objects.filter(event_type="automation.governance.denied")
        assert sorted(e.payload["action"] for e in denials) == ["change", "delete"]
        assert {e.payload["code"] for e in denials} == {"AUTOMATION_V2_MODIFY_FORBIDDEN"}
        assert {e.actor_kind for e in denials} == {"agent"}


@pytest.mark.django_db
class TestTenancy:
    """Another workspace's automation answers exactly like one that does not exist."""

    ROUTES = [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("get", "/grants"),
        ("post", "/grants"),
        ("delete", "/grants/u1"),
    ]

    @pytest.mark.parametrize("method,suffix", ROUTES)
    def test_other_workspace_is_404_like_missing(self, operator, outsider, method, suffix):
        create(operator, automation_id="weekly")
        client = outsider.client()
        data = {"permission": "view", "user": outsider.user.username}
        theirs = getattr(client, method)(f"{URL}/weekly{suffix}", data, format="json")
        missing = getattr(client, method)(f"{URL}/nope{suffix}", data, format="json")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["code"] == "AUTOMATION_V2_NOT_FOUND"
        assert theirs.json()["automationID"] == "weekly"
        assert missing.json()["automationID"] == "nope"
        assert Automation.objects.get(automation_id="weekly").version == 1

    def test_list_shows_only_own_workspace(self, operator, outsider):
        create(operator, automation_id="mine")
        create(outsider, automation_id="theirs")
        ids = [a["automation_id"] for a in operator.client().get(URL).json()["automations"]]
        assert ids == ["mine"]


@pytest.mark.django_db
class TestList:
    def test_pagination_and_filter(self, operator):
        for n in range(5):
            create(operator, automation_id=f"a{n}", status="paused" if n % 2 else "active")
        client = operator.client()
        first = client.get(URL, {"limit": 2}).json()
        assert [a["automation_id"] for a in first["automations"]] == ["a4", "a3"]
        assert first["count"] == 2
        second = client.get(URL, {"limit": 2, "cursor": first["next_cursor"]}).json()
        assert [a["automation_id"] for a in second["automations"]] == ["a2", "a1"]
        third = client.get(URL, {"limit": 2, "cursor": second["next_cursor"]}).json()
        assert [a["automation_id"] for a in third["automations"]] == ["a0"]
        assert third["next_cursor"] is None
        paused = client.get(URL, {"status": "paused"}).json()
        assert {a["automation_id"] for a in paused["automations"]} == {"a1", "a3"}

    @pytest.mark.parametrize(
        "params",
        [{"limit": 0}, {"limit": 201}, {"limit": "x"}, {"status": "gone"}, {"cursor": "!!"}],
    )
    def test_bad_query_is_400(self, operator, params):
        response = operator.client().get(URL, params)
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_REQUEST"

    def test_query_count_does_not_grow_with_rows(self, operator, django_assert_num_queries):
        client = operator.client()
        create(operator)
        # token lookup, membership, the page itself
        with django_assert_num_queries(3):
            assert client.get(URL).json()["count"] == 1
        for _ in range(15):
            create(operator)
        with django_assert_num_queries(3):
            assert client.get(URL).json()["count"] == 16


@pytest.mark.django_db
class TestStrictFlows:
    def test_a_depend_on_typo_is_refused_and_nothing_is_written(self, operator):
        """Issue 13: this body was accepted with 201 and `publish` ran before the approval."""
        flow = simple_flow()
        flow["nodes"][-1]["depend_on"] = flow["nodes"][-1].pop("depends_on")

        response = operator.client().post(URL, body(flow=flow), format="json")

        assert response.status_code == 400
        error = response.json()
        assert error["code"] == "AUTOMATION_V2_INVALID_FLOW"
        assert "did you mean 'depends_on'?" in error["errors"][0]["message"]
        assert not Automation.objects.exists()

    def test_a_hundred_thousand_unknown_dependencies_answer_400_quickly(self, operator):
        """Issue 13: 102,000 unknown `depends_on` entries took 72 s of CPU before the 400."""
        flow = simple_flow()
        flow["nodes"][-1]["depends_on"] = [f"n{i}" for i in range(100_000)]

        started = time.process_time()
        response = operator.client().post(URL, body(flow=flow), format="json")
        elapsed = time.process_time() - started

        assert response.status_code == 400
        assert "FLOWGATE_FLOW_MAX_DEPENDENCIES" in response.json()["errors"][0]["message"]
        assert elapsed < 2
