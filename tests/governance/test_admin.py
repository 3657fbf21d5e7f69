"""Every model registered in the admin opens: changelists, add forms and change forms."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from governance.models import User
from tests.factories import create_automation as create
from tests.support.admin import console
from tests.support.audit import tampering


@pytest.fixture
def superuser_client(client, db):
    User.objects.create_superuser("root", "root@example.com", "pw-for-tests")
    client.login(username="root", password="pw-for-tests")
    return client


@pytest.mark.django_db
def test_every_registered_model_opens(superuser_client, operator):
    from django.contrib.auth.models import Group

    from governance.models import WorkspaceGroup

    create(operator, automation_id="weekly")
    WorkspaceGroup.objects.create(
        workspace=operator.workspace, group=Group.objects.create(name="oncall")
    )
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert superuser_client.get(changelist).status_code == 200, changelist
        if model_admin.has_add_permission(_request(superuser_client)):
            add = reverse(f"admin:{meta.app_label}_{meta.model_name}_add")
            assert superuser_client.get(add).status_code == 200, add
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert superuser_client.get(change).status_code == 200, change


def _request(client):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(username="root")
    return request


@pytest.mark.django_db
def test_audit_events_are_read_only_in_the_admin(superuser_client, operator):
    from governance.models import AuditEvent

    create(operator, automation_id="weekly")
    event = AuditEvent.objects.first()
    url = reverse("admin:governance_auditevent_change", args=[event.pk])
    response = superuser_client.post(url, {"event_type": "forged"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.event_type != "forged"


@pytest.mark.django_db
def test_admin_verify_chain_action_reports_ok(superuser_client, operator):
    from governance.models import AuditEvent

    create(operator, automation_id="weekly")
    ids = list(AuditEvent.objects.values_list("pk", flat=True))
    response = superuser_client.post(
        reverse("admin:governance_auditevent_changelist"),
        {"action": "verify_chains", "index": "0", "_selected_action": ids},
    )
    assert response.status_code == 302
    messages = [m.message for m in response.wsgi_request._messages]
    assert messages == [f"Audit chain of acme/ops: ok ({len(ids)} events)"]


# --- The admin does not bypass the services ----------------------------------------------------


def _automation(operator):
    from automations.models import Automation

    create(operator, automation_id="weekly")
    return Automation.objects.get()


@pytest.mark.django_db
def test_automations_change_only_through_the_services_in_the_admin(superuser_client, operator):
    """Django's own change form and delete stay read-only: automations are created and edited
    by the spec form, which calls the services (tests/automations/test_admin_automation_edit.py)."""
    automation = _automation(operator)
    add = reverse("admin:automations_automation_add")
    change = reverse("admin:automations_automation_change", args=[automation.pk])
    delete = reverse("admin:automations_automation_delete", args=[automation.pk])

    assert (
        superuser_client.get(add).templates[0].name == "admin/automations/automation/spec_form.html"
    )
    page = superuser_client.get(change)
    assert page.status_code == 200
    assert b'name="name"' not in page.content  # shown, not editable
    assert superuser_client.post(change, {"name": "Forged"}).status_code == 403
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    # guardian's object-permission screen would grant without the audit trail: not routed
    # (the admin's catch-all sends ".../permissions/" to a change page of no object)
    assert superuser_client.get(f"{change}permissions/", follow=True).status_code == 404
    automation.refresh_from_db()
    assert (automation.name, automation.version, automation.deleted_at) == (
        "Weekly report",
        1,
        None,
    )


@pytest.mark.django_db
def test_run_now_action_still_starts_a_run(superuser_client, operator):
    from automations.models import Run

    automation = _automation(operator)
    response = superuser_client.post(
        reverse("admin:automations_automation_changelist"),
        {"action": "run_now", "index": "0", "_selected_action": [automation.pk]},
    )
    assert response.status_code == 302
    run = Run.objects.get()
    messages = [m.message for m in response.wsgi_request._messages]
    assert messages == [f"Automation weekly: started {run.run_id}"]


@pytest.mark.django_db
def test_runs_and_their_history_cannot_be_changed_or_deleted(superuser_client, operator):
    from automations.models import LifecycleEvent, Run

    automation = _automation(operator)
    superuser_client.post(
        reverse("admin:automations_automation_changelist"),
        {"action": "run_now", "index": "0", "_selected_action": [automation.pk]},
    )
    run = Run.objects.get()
    event = LifecycleEvent.objects.first()
    for url in (
        reverse("admin:automations_run_delete", args=[run.pk]),
        reverse("admin:automations_lifecycleevent_delete", args=[event.pk]),
    ):
        assert superuser_client.post(url, {"post": "yes"}).status_code == 403, url
    change = reverse("admin:automations_run_change", args=[run.pk])
    assert superuser_client.post(change, {"status": "completed"}).status_code == 403
    changelist = superuser_client.get(reverse("admin:automations_run_changelist"))
    assert b"delete_selected" not in changelist.content
    assert Run.objects.filter(pk=run.pk, status=run.status).exists()
    assert run.nodes.count() == len(automation.flow["nodes"])


@pytest.mark.django_db
def test_user_kind_is_set_on_add_and_fixed_after(superuser_client):
    add = superuser_client.post(
        reverse("admin:governance_user_add"),
        {
            "username": "bot",
            "password1": "a-long-pass-phrase-1",
            "password2": "a-long-pass-phrase-1",
            "usable_password": "true",
            "kind": "agent",
        },
    )
    assert add.status_code == 302, add.content
    bot = User.objects.get(username="bot")
    assert bot.kind == "agent"
    change = reverse("admin:governance_user_change", args=[bot.pk])
    page = superuser_client.get(change)
    assert b'name="kind"' not in page.content
    response = superuser_client.post(
        change,
        {
            "username": "bot",
            "email": "bot@example.com",
            "kind": "human",
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302  # saved, but without the read-only kind
    bot.refresh_from_db()
    assert (bot.email, bot.kind) == ("bot@example.com", "agent")


def _member_events(workspace):
    from governance.models import AuditEvent

    return list(
        AuditEvent.objects.filter(workspace=workspace, event_type__startswith="governance.member")
        .order_by("seq")
        .values_list("event_type", "actor_id", "payload")
    )


@pytest.mark.django_db
def test_membership_admin_goes_through_the_services(superuser_client, workspace):
    from governance.models import Membership, WorkspaceUserObjectPermission

    bob = User.objects.create_user("bob", password="pw-for-tests")
    before = len(_member_events(workspace))
    response = superuser_client.post(
        reverse("admin:governance_membership_add"),
        {"user": bob.pk, "workspace": workspace.pk, "role": "operator"},
    )
    assert response.status_code == 302, response.content
    membership = Membership.objects.get(user=bob)
    assert membership.role == "operator"

    change = reverse("admin:governance_membership_change", args=[membership.pk])
    assert superuser_client.post(change, {"role": "reviewer"}).status_code == 302
    membership.refresh_from_db()
    assert membership.role == "reviewer"

    from guardian.shortcuts import assign_perm

    assign_perm("governance.review_internal", bob, workspace)
    delete = reverse("admin:governance_membership_delete", args=[membership.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Membership.objects.filter(user=bob).exists()
    assert not WorkspaceUserObjectPermission.objects.filter(user=bob).exists()

    events = _member_events(workspace)[before:]
    assert [(t, a, p.get("role")) for t, a, p in events] == [
        ("governance.member.updated", "root", "operator"),
        ("governance.member.updated", "root", "reviewer"),
        ("governance.member.removed", "root", "reviewer"),
    ]


@pytest.mark.django_db
def test_membership_inline_on_the_workspace_goes_through_the_services(superuser_client, workspace):
    from governance.models import Membership

    bob = User.objects.create_user("bob", password="pw-for-tests")
    carol = User.objects.create_user("carol", password="pw-for-tests")
    url = reverse("admin:governance_workspace_change", args=[workspace.pk])

    def post(rows, *, groups=()):
        data = {
            "organization": workspace.organization_id,
            "slug": workspace.slug,
            "name": workspace.name,
            "memberships-TOTAL_FORMS": str(len(rows)),
            "memberships-INITIAL_FORMS": str(sum(1 for r in rows if r.get("id"))),
            "groups-TOTAL_FORMS": "0",
            "groups-INITIAL_FORMS": "0",
        }
        for n, row in enumerate(rows):
            for key, value in row.items():
                data[f"memberships-{n}-{key}"] = value
            data[f"memberships-{n}-workspace"] = workspace.pk
        return superuser_client.post(url, data)

    before = len(_member_events(workspace))
    assert post([{"user": bob.pk, "role": "viewer"}]).status_code == 302
    membership = Membership.objects.get(user=bob)
    changed_user = post([{"id": membership.pk, "user": carol.pk, "role": "viewer"}])
    assert changed_user.status_code == 200  # the form error is shown
    assert b"cannot change" in changed_user.content
    assert post([{"id": membership.pk, "user": bob.pk, "role": "admin"}]).status_code == 302
    assert (
        post([{"id": membership.pk, "user": bob.pk, "role": "admin", "DELETE": "on"}]).status_code
        == 302
    )
    assert not Membership.objects.filter(workspace=workspace).exists()
    events = _member_events(workspace)[before:]
    assert [(t, p["user"], p.get("role")) for t, _, p in events] == [
        ("governance.member.updated", "bob", "viewer"),
        ("governance.member.updated", "bob", "admin"),
        ("governance.member.removed", "bob", "admin"),
    ]


@pytest.mark.django_db
def test_membership_admin_sets_clearances_through_the_audited_service(superuser_client, reviewer):
    from guardian.shortcuts import get_perms

    from governance.models import AuditEvent, Membership

    membership = Membership.objects.get(user=reviewer.user)
    url = reverse("admin:governance_membership_change", args=[membership.pk])
    response = superuser_client.post(
        url, {"role": "reviewer", "clearances": ["financial_record", "internal"]}
    )
    assert response.status_code == 302, response.content[:500]
    assert set(get_perms(reviewer.user, membership.workspace)) == {
        "review_financial_record",
        "review_internal",
    }
    superuser_client.post(url, {"role": "reviewer", "clearances": ["internal"]})
    assert get_perms(reviewer.user, membership.workspace) == ["review_internal"]
    events = AuditEvent.objects.filter(event_type="governance.clearances.updated").order_by("seq")
    assert [(e.payload["added"], e.payload["removed"]) for e in events] == [
        (["financial_record", "internal"], []),
        ([], ["financial_record"]),
    ]
    assert events[0].actor_id == "root"


# --- Staff who are not superusers: their workspaces only ----------------------------------------


def _staff(member):
    return console(member)


def _follow_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


AUDIT = "admin:governance_auditevent_changelist"
VERIFY = "admin:governance_auditevent_verify"


@pytest.mark.django_db
def test_audit_events_are_for_workspace_admins_of_their_own_workspace(admin, operator, outsider):
    from governance.models import AuditEvent

    create(operator, automation_id="weekly")
    create(outsider, automation_id="theirs")
    assert _staff(operator).get(reverse(AUDIT)).status_code == 403  # READ_AUDIT: admins only
    client = _staff(admin)
    page = client.get(reverse(AUDIT))
    assert page.status_code == 200
    assert b"acme/ops" in page.content
    assert b"globex/ops" not in page.content
    theirs = AuditEvent.objects.filter(workspace=outsider.workspace).first()
    url = reverse("admin:governance_auditevent_change", args=[theirs.pk])
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_verify_chains_button_reports_each_visible_chain(admin, operator, outsider):
    from governance.models import AuditEvent

    create(operator, automation_id="weekly")
    create(outsider, automation_id="theirs")
    client = _staff(admin)
    events = AuditEvent.objects.filter(workspace=admin.workspace).count()
    response = client.post(reverse(VERIFY), follow=True)
    assert response.status_code == 200
    # globex's chain is not this admin's to verify, nor to learn about
    assert _follow_messages(response) == [f"Audit chain of acme/ops: ok ({events} events)"]
    with tampering():
        AuditEvent.objects.filter(workspace=admin.workspace, seq=2).update(actor_id="forged")
    response = client.post(reverse(VERIFY), follow=True)
    assert _follow_messages(response) == [
        "Audit chain of acme/ops: BROKEN at seq 2: "
        "hash does not match the event's contents (edited)"
    ]
    assert client.get(reverse(VERIFY)).status_code == 405
    assert _staff(operator).post(reverse(VERIFY)).status_code == 403  # admins only


@pytest.mark.django_db
def test_verify_button_honours_the_workspace_filter(superuser_client, operator, outsider):
    create(operator, automation_id="weekly")
    create(outsider, automation_id="theirs")
    everything = superuser_client.post(reverse(VERIFY), follow=True)
    assert [m.split(":")[0] for m in _follow_messages(everything)] == [
        "Audit chain of acme/ops",
        "Audit chain of globex/ops",
    ]
    one = superuser_client.post(
        reverse(VERIFY), {"workspace": str(outsider.workspace.pk)}, follow=True
    )
    assert [m.split(":")[0] for m in _follow_messages(one)] == ["Audit chain of globex/ops"]
    page = superuser_client.get(reverse(AUDIT), {"workspace__id__exact": outsider.workspace.pk})
    assert f'name="workspace" value="{outsider.workspace.pk}"'.encode() in page.content
    for junk in ("²", "9" * 40):  # not an id: every visible chain, never a 500
        odd = superuser_client.post(reverse(VERIFY), {"workspace": junk}, follow=True)
        assert odd.status_code == 200 and len(_follow_messages(odd)) == 2


@pytest.mark.django_db
def test_audit_list_costs_the_same_queries_and_never_counts_the_table(
    admin, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    create(admin, automation_id="first")
    client = _staff(admin)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse(AUDIT)).status_code == 200
    first = len(few)  # read now: the API requests below reset the connection's query log
    for n in range(20):
        create(admin, automation_id=f"more-{n}")
    with django_assert_max_num_queries(first), CaptureQueriesContext(connection) as many:
        assert client.get(reverse(AUDIT)).status_code == 200
    counts = [q["sql"] for q in many.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)


@pytest.mark.django_db
def test_workspace_admins_manage_their_members_through_the_services(admin, operator, outsider):
    from governance.models import AuditEvent, Membership

    membership = Membership.objects.get(user=operator.user)
    url = reverse("admin:governance_membership_change", args=[membership.pk])
    # An operator may look but not change; another workspace's admin does not find it.
    assert _staff(operator).get(url).status_code == 200
    assert _staff(operator).post(url, {"role": "admin"}).status_code == 403
    assert _staff(outsider).get(url).status_code == 404
    assert _staff(outsider).post(url, {"role": "admin"}).status_code == 404
    membership.refresh_from_db()
    assert membership.role == "operator"
    # Adding people to a workspace stays with superusers (users span organisations).
    assert _staff(admin).get(reverse("admin:governance_membership_add")).status_code == 403
    response = _staff(admin).post(url, {"role": "reviewer", "clearances": ["internal"]})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == "reviewer"
    event = AuditEvent.objects.filter(event_type="governance.member.updated").latest("seq")
    assert (event.actor_id, event.payload["role"]) == ("ada-admin", "reviewer")
    listing = _staff(admin).get(reverse("admin:governance_membership_changelist"))
    assert b"otto-operator" in listing.content and b"oscar-outsider" not in listing.content


@pytest.mark.django_db
def test_tokens_users_and_organisations_stay_out_of_reach(admin, operator, outsider):
    from governance.models import ApiToken

    tokens = reverse("admin:governance_apitoken_changelist")
    assert _staff(operator).get(tokens).status_code == 403  # not an admin of the workspace
    client = _staff(admin)
    page = client.get(tokens)
    assert b"otto-operator" in page.content and b"oscar-outsider" not in page.content
    theirs = ApiToken.objects.get(user=outsider.user)
    response = client.post(
        tokens, {"action": "revoke", "index": "0", "_selected_action": [theirs.pk]}
    )
    theirs.refresh_from_db()
    assert theirs.revoked_at is None  # not in the admin's selection, so untouched
    assert response.status_code == 302
    for name in ("governance_user", "governance_organization"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 403
    assert client.get(reverse("admin:governance_workspace_changelist")).status_code == 200
    other = reverse("admin:governance_workspace_change", args=[outsider.workspace.pk])
    assert client.get(other).status_code == 404


def test_signed_out_visitors_get_the_login_page_not_an_error(client, db):
    """The login page lists no apps, but building it must not query scopes for AnonymousUser."""
    assert client.get("/admin/login/").status_code == 200
    response = client.get("/admin/automations/run/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
