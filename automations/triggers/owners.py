"""Whom a trigger acts for, and whether they still may.

A schedule or webhook trigger starts runs with no one at the keyboard: it acts for the editor who
created it (`created_by`, the runs' `requested_by`), who held the change permission then. That
authority must still hold when it fires: a member who left the workspace, was deactivated, or
lost the change permission on the automation must not keep starting runs through a trigger
they set up. Each fire checks it (one query for the membership, one for the grants); a trigger
whose owner no longer may stops — a schedule is disabled, a webhook trigger revoked — once,
audited, and an editor sets up a new one that acts for them.
"""

from __future__ import annotations

from automations.models import Automation
from governance.actors import Actor
from governance.models import Membership, User
from governance.policy import CHANGE, automation_permissions

OWNER_NOT_AUTHORISED = "TRIGGER_OWNER_NOT_AUTHORISED"


def owner_refusal(owner: User | None, automation: Automation) -> str | None:
    """Why `owner` may no longer start runs of `automation` through a trigger, or None."""
    if owner is None or not owner.is_active:
        return "The trigger's creator is no longer an active user"
    membership = (
        Membership.objects.select_related("user", "workspace__organization")
        .filter(workspace_id=automation.workspace_id, user=owner)
        .first()
    )
    if membership is None:
        return "The trigger's creator is no longer a member of this workspace"
    if CHANGE not in automation_permissions(Actor.for_member(membership), automation):
        return "The trigger's creator may no longer change this automation"
    return None
