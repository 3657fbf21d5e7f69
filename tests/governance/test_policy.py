"""The action → permission table: roles, ownership, guardian grants and the agent rule."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from governance.actors import Actor
from governance.errors import AutomationNotFound, Forbidden
from governance.models import AuditEvent, Membership, PrincipalKind, Role
from governance.policy import (
    Action,
    WorkspaceAction,
    authorize,
    authorize_workspace,
    workspace_allows,
)
from tests.factories import AutomationFactory, actor_for

ALL = set(Action)


def allowed(actor: Actor, automation) -> set[Action]:
    result = set()
    for action in Action:
        try:
            authorize(actor, action, automation)
        except Forbidden:
            continue
        result.add(action)
    return result


@pytest.fixture
def automation(workspace, make_member):
    owner = make_member("acme/ops", "olga-owner", role=Role.OPERATOR)
    return AutomationFactory(workspace=workspace, created_by=owner.user)


@pytest.mark.django_db
class TestTable:
    @pytest.mark.parametrize(
        "role,expected",
        [
            (Role.VIEWER, {Action.VIEW}),
            (Role.OPERATOR, {Action.VIEW, Action.OPERATE}),
            (Role.REVIEWER, {Action.VIEW, Action.REVIEW}),
            (Role.ADMIN, ALL),
        ],
    )
    def test_roles(self, make_member, automation, role, expected):
        member = make_member("acme/ops", f"someone-{role}", role=role)
        assert allowed(actor_for(member), automation) == expected

    def test_owner_has_everything(self, automation):
        owner = Membership.objects.select_related("user", "workspace__organization").get(
            user=automation.created_by
        )
        assert allowed(Actor.for_member(owner), automation) == ALL

    def test_user_grant_adds_permission(self, make_member, automation):
        member = make_member("acme/ops", "vic", role=Role.VIEWER)
        assign_perm("automations.change_automation", member.user, automation)
        assign_perm("automations.review_elevated_automation", member.user, automation)
        assert allowed(actor_for(member), automation) == {
            Action.VIEW,
            Action.CHANGE,
            Action.REVIEW_ELEVATED,
        }

    def test_group_grant_adds_permission(self, make_member, automation):
        member = make_member("acme/ops", "gus", role=Role.VIEWER)
        group = Group.objects.create(name="oncall")
        member.user.groups.add(group)
        assign_perm("automations.operate_automation", group, automation)
        assert Action.OPERATE in allowed(actor_for(member), automation)

    def test_grants_on_one_automation_do_not_leak_to_another(self, make_member, automation):
        member = make_member("acme/ops", "vic", role=Role.VIEWER)
        assign_perm("automations.operate_automation", member.user, automation)
        other = AutomationFactory(workspace=automation.workspace, created_by=automation.created_by)
        assert allowed(actor_for(member), other) == {Action.VIEW}


@pytest.mark.django_db
class TestAgents:
    def test_operator_agent_only_views_others_automations(self, make_member, automation):
        bot = make_member("acme/ops", "bot", role=Role.OPERATOR, kind=PrincipalKind.AGENT)
        assert allowed(actor_for(bot), automation) == {Action.VIEW}
        with pytest.raises(Forbidden) as exc:
            authorize(actor_for(bot), Action.OPERATE, automation)
        assert exc.value.code == "AUTOMATION_V2_MODIFY_FORBIDDEN"

    def test_admin_role_does_not_make_an_agent_an_operator(self, make_member, automation):
        bot = make_member("acme/ops", "bot", role=Role.ADMIN, kind=PrincipalKind.AGENT)
        assert allowed(actor_for(bot), automation) == {Action.VIEW}

    def test_agent_with_grant_operates(self, make_member, automation):
        bot = make_member("acme/ops", "bot", role=Role.OPERATOR, kind=PrincipalKind.AGENT)
        assign_perm("automations.operate_automation", bot.user, automation)
        assert allowed(actor_for(bot), automation) == {Action.VIEW, Action.OPERATE}

    def test_agent_owns_what_it_created(self, make_member, workspace):
        bot = make_member("acme/ops", "bot", role=Role.OPERATOR, kind=PrincipalKind.AGENT)
        mine = AutomationFactory(workspace=workspace, created_by=bot.user)
        assert allowed(actor_for(bot), mine) == ALL


@pytest.mark.django_db
class TestVisibilityAndAudit:
    def test_other_workspace_is_not_found(self, outsider, automation):
        with pytest.raises(AutomationNotFound):
            authorize(actor_for(outsider), Action.VIEW, automation)

    def test_deleted_is_not_found(self, make_member, automation):
        member = make_member("acme/ops", "ad", role=Role.ADMIN)
        automation.deleted_at = automation.created_at
        automation.save(update_fields=["deleted_at"])
        with pytest.raises(AutomationNotFound):
            authorize(actor_for(member), Action.VIEW, automation)

    def test_denial_is_audited_with_code(self, viewer, automation):
        with pytest.raises(Forbidden):
            authorize(actor_for(viewer), Action.OPERATE, automation)
        event = AuditEvent.objects.get(event_type="automation.governance.denied")
        assert event.payload["code"] == "AUTOMATION_V2_ACCESS_DENIED"
        assert event.payload["action"] == "operate"
        assert event.payload["automationID"] == automation.automation_id
        assert event.actor_id == viewer.user.username

    def test_a_read_denial_is_not_audited(self, viewer, automation):
        """`audit=False` (GETs): still 403, but nothing is written (SPEC §10.11)."""
        with pytest.raises(Forbidden) as exc:
            authorize(actor_for(viewer), Action.MANAGE_GRANTS, automation, audit=False)
        assert exc.value.code == "AUTOMATION_V2_ACCESS_DENIED"
        assert not AuditEvent.objects.filter(event_type="automation.governance.denied").exists()


# What operators do in a workspace, agents included: create automations, ask for approvals.
ASKING = (WorkspaceAction.CREATE_AUTOMATION, WorkspaceAction.REQUEST_APPROVAL)


@pytest.mark.django_db
class TestWorkspaceActions:
    @pytest.mark.parametrize(
        "role,kind,expected",
        [
            (Role.VIEWER, PrincipalKind.HUMAN, set()),
            (Role.REVIEWER, PrincipalKind.HUMAN, set()),
            (Role.OPERATOR, PrincipalKind.HUMAN, {*ASKING}),
            (Role.ADMIN, PrincipalKind.HUMAN, set(WorkspaceAction)),
            (Role.OPERATOR, PrincipalKind.AGENT, {*ASKING}),
            # An agent holding the admin role is no workspace admin: no audit trail.
            (Role.ADMIN, PrincipalKind.AGENT, {*ASKING}),
        ],
    )
    def test_table(self, make_member, role, kind, expected):
        member = make_member("acme/ops", f"m-{role}-{kind}", role=role, kind=kind)
        actor = actor_for(member)
        assert {a for a in WorkspaceAction if workspace_allows(actor, a)} == expected
        assert actor.is_workspace_admin == (role == Role.ADMIN and kind == PrincipalKind.HUMAN)

    def test_denials_are_audited_only_when_asked(self, viewer):
        with pytest.raises(Forbidden) as exc:
            authorize_workspace(actor_for(viewer), WorkspaceAction.READ_AUDIT, audit=False)
        assert exc.value.code == "AUDIT_ACCESS_DENIED"
        assert not AuditEvent.objects.filter(event_type="automation.governance.denied").exists()
        with pytest.raises(Forbidden):
            authorize_workspace(actor_for(viewer), WorkspaceAction.CREATE_AUTOMATION)
        event = AuditEvent.objects.get(event_type="automation.governance.denied")
        assert event.payload["action"] == "create"
