"""The workspace's approval-requests automation, which backs every approval request
(`approvals.requests`), and the humans accountable for a requesting principal.

Kept apart from the request services because standing approvals (`approvals.standing`) need
both too: a grant is authorised against the same automation's review permission, and its
grantor must not be accountable for the grantee.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from automations.ids import APPROVAL_REQUESTS_AUTOMATION_ID
from automations.models import (
    Automation,
    AutomationGroupObjectPermission,
    AutomationUserObjectPermission,
)
from governance.actors import Actor
from governance.models import PrincipalKind, User

# The principal that owns every workspace's approval-requests automation: a service that never
# signs in (inactive, no password, no membership), so nobody is accountable as its "creator".
SYSTEM_USERNAME = "flowgate.approval-requests"


def accountable_grantors(actor: Actor) -> list[str]:
    """The humans accountable for an agent or service in its workspace: whoever granted it a
    permission on any of the workspace's automations, directly or through one of its groups
    (user pks as strings, sorted, as `Run.requester_grantors`)."""
    to_user = AutomationUserObjectPermission.objects.filter(
        content_object__workspace=actor.workspace, user=actor.user
    ).values_list("granted_by_id", flat=True)
    to_group = AutomationGroupObjectPermission.objects.filter(
        content_object__workspace=actor.workspace, group__user=actor.user
    ).values_list("granted_by_id", flat=True)
    return sorted({str(pk) for pk in to_user.union(to_group) if pk is not None})


def _system_user() -> User:
    user, created = User.objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"kind": PrincipalKind.SERVICE, "is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def requests_automation(actor: Actor) -> Automation:
    """The workspace's approval-requests automation, locked (made on first use; a concurrent
    first use loses the unique constraint in a savepoint and locks the winner's row)."""
    live = Automation.objects.select_for_update(of=("self",)).filter(
        workspace=actor.workspace,
        automation_id=APPROVAL_REQUESTS_AUTOMATION_ID,
        deleted_at__isnull=True,
    )
    found = live.first()
    if found is not None:
        return found
    owner = _system_user()
    try:
        with transaction.atomic():
            Automation.objects.create(
                workspace=actor.workspace,
                automation_id=APPROVAL_REQUESTS_AUTOMATION_ID,
                name="Approval requests",
                description="Backs the approval requests principals make over the API.",
                flow={"nodes": []},
                metadata={"system": "approval_requests"},
                created_by=owner,
                updated_by=owner,
            )
    except IntegrityError:
        pass
    return live.get()
