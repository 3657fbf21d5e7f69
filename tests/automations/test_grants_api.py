"""Grants API: owners and admins grant and revoke per-automation permissions, audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from automations import services
from automations.models import (
    Automation,
    AutomationGroupObjectPermission,
    AutomationUserObjectPermission,
)
from governance.errors import AutomationNotFound
from governance.models import AuditChainHead, AuditEvent, WorkspaceGroup
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import actor_for
from tests.factories import create_automation as create


def workspace_group(workspace, name: str) -> Group:
    group = Group.objects.create(name=name)
    WorkspaceGroup.objects.create(workspace=workspace, group=group)
    return group


@pytest.mark.django_db
class TestGrants:
    def test_grant_lets_a_viewer_operate_then_revoke_removes_it(self, operator, viewer, admin):
        create(operator, automation_id="weekly")
        owner = operator.client()
        response = owner.post(
            f"{URL}/weekly/grants",
            {"user": viewer.user.username, "permission": "change"},
            format="json",
        )
        assert response.status_code == 201, response.json()
        grant = response.json()
        assert grant["permission"] == "change"
        assert grant["user"] == viewer.user.username
        assert grant["grant_id"].startswith("u")

        renamed = viewer.client().patch(f"{URL}/weekly", {"name": "Viewer edit"}, format="json")
        assert renamed.status_code == 200

        listed = admin.client().get(f"{URL}/weekly/grants").json()
        assert [g["grant_id"] for g in listed["grants"]] == [grant["grant_id"]]

        assert owner.delete(f"{URL}/weekly/grants/{grant['grant_id']}").status_code == 204
        denied = viewer.client().patch(f"{URL}/weekly", {"name": "Again"}, format="json")
        assert denied.status_code == 403
        types = set(AuditEvent.objects.values_list("event_type", flat=True))
        assert {"automation.grant.added", "automation.grant.revoked"} <= types

    def test_group_grant(self, operator):
        create(operator, automation_id="weekly")
        workspace_group(operator.workspace, "oncall")
        response = operator.client().post(
            f"{URL}/weekly/grants", {"group": "oncall", "permission": "operate"}, format="json"
        )
        assert response.status_code == 201
        assert response.json()["grant_id"].startswith("g")
        assert response.json()["group"] == "oncall"

    def test_groups_of_other_workspaces_are_like_unknown_groups(self, operator, outsider):
        """Group names are deployment-wide; grants see only the caller's workspace's groups."""
        create(operator, automation_id="weekly")
        workspace_group(outsider.workspace, "globex-oncall")
        Group.objects.create(name="unlinked")
        client = operator.client()
        answers = {
            name: client.post(
                f"{URL}/weekly/grants", {"group": name, "permission": "view"}, format="json"
            )
            for name in ("globex-oncall", "unlinked", "no-such-group")
        }
        for name, response in answers.items():
            assert response.status_code == 400, name
            assert response.json() == {
                "error": f"No group named {name!r} in this workspace",
                "code": "GRANT_PRINCIPAL_NOT_FOUND",
            }
        assert not AutomationGroupObjectPermission.objects.exists()

    def test_non_owner_cannot_grant(self, operator, make_member):
        create(operator, automation_id="weekly")
        other = make_member("acme/ops", "other-operator", role="operator")
        response = other.client().post(
            f"{URL}/weekly/grants",
            {"user": other.user.username, "permission": "change"},
            format="json",
        )
        assert response.status_code == 403
        assert response.json()["code"] == "AUTOMATION_V2_ACCESS_DENIED"

    @pytest.mark.parametrize(
        "payload",
        [
            {"user": "nobody", "permission": "view"},
            {"permission": "view"},
            {"user": "x", "group": "y", "permission": "view"},
            {"user": "x", "permission": "owner"},
        ],
    )
    def test_bad_grants_are_400(self, operator, payload):
        create(operator, automation_id="weekly")
        response = operator.client().post(f"{URL}/weekly/grants", payload, format="json")
        assert response.status_code == 400

    def test_cannot_grant_to_member_of_another_workspace(self, operator, outsider):
        create(operator, automation_id="weekly")
        response = operator.client().post(
            f"{URL}/weekly/grants",
            {"user": outsider.user.username, "permission": "view"},
            format="json",
        )
        assert response.status_code == 400
        assert response.json()["code"] == "GRANT_PRINCIPAL_NOT_FOUND"

    @pytest.mark.parametrize("grant_id", ["u999", "x1", "u", "uabc", "g0", "U1"])
    def test_unknown_grant_is_404(self, operator, grant_id):
        create(operator, automation_id="weekly")
        response = operator.client().delete(f"{URL}/weekly/grants/{grant_id}")
        assert response.status_code == 404
        assert response.json()["code"] == "GRANT_NOT_FOUND"


@pytest.mark.django_db
def test_grant_list_query_count_is_constant(
    operator, admin, make_member, django_assert_num_queries
):
    create(operator, automation_id="weekly")
    client = operator.client()

    def grant_to(n):  # review grants are for workspace admins to give
        member = make_member("acme/ops", f"grantee{n}", role="viewer")
        response = admin.client().post(
            f"{URL}/weekly/grants",
            {"user": member.user.username, "permission": "review"},
            format="json",
        )
        assert response.status_code == 201

    grant_to(0)
    # token, membership, the automation (owner: no grant lookup), user grants, group grants
    with django_assert_num_queries(5):
        assert client.get(f"{URL}/weekly/grants").json()["count"] == 1
    for n in range(1, 8):
        grant_to(n)
    with django_assert_num_queries(5):
        assert client.get(f"{URL}/weekly/grants").json()["count"] == 8


@pytest.mark.django_db
def test_a_denied_grant_list_writes_nothing(operator, viewer):
    """GETs never write (SPEC §10.11): a refused read is not audited."""
    create(operator, automation_id="weekly")
    head = AuditChainHead.objects.get(workspace=operator.workspace)
    events = AuditEvent.objects.count()
    response = viewer.client().get(f"{URL}/weekly/grants")
    assert response.status_code == 403
    assert response.json()["code"] == "AUTOMATION_V2_ACCESS_DENIED"
    assert AuditEvent.objects.count() == events
    after = AuditChainHead.objects.get(workspace=operator.workspace)
    assert (after.seq, after.hash) == (head.seq, head.hash)


@pytest.mark.django_db
class TestGrantsOnADeletedAutomation:
    """The service re-checks under the automation's row lock: a delete that committed after
    the caller read the automation wins, and nothing is granted or revoked."""

    def test_grant_add(self, operator, viewer):
        create(operator, automation_id="weekly")
        stale = Automation.objects.select_related("created_by").get()
        services.automation_delete(actor=actor_for(operator), automation=stale)
        with pytest.raises(AutomationNotFound):
            services.grant_add(
                actor=actor_for(operator),
                automation=stale,
                permission="view",
                username=viewer.user.username,
            )
        assert not AutomationUserObjectPermission.objects.exists()
        assert not AuditEvent.objects.filter(event_type="automation.grant.added").exists()

    def test_grant_revoke(self, operator, viewer):
        create(operator, automation_id="weekly")
        grant = (
            operator.client()
            .post(
                f"{URL}/weekly/grants",
                {"user": viewer.user.username, "permission": "view"},
                format="json",
            )
            .json()
        )
        stale = Automation.objects.select_related("created_by").get()
        services.automation_delete(actor=actor_for(operator), automation=stale)
        with pytest.raises(AutomationNotFound):
            services.grant_revoke(
                actor=actor_for(operator), automation=stale, grant_id=grant["grant_id"]
            )
        assert AutomationUserObjectPermission.objects.count() == 1
        assert not AuditEvent.objects.filter(event_type="automation.grant.revoked").exists()
