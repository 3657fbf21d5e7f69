"""The pending list of the `/approvals/` page: one person's decidable gates in all their
workspaces.

`approvals.selectors.gates_pending` judges one actor in one workspace; a person is one actor
per membership. The per-workspace querysets are OR-ed into one query (each keeps its own
workspace, permission and clearance conditions), so the page costs one query for the
memberships, one clearance query per workspace and one for the gates, however many gates
there are.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.db.models import QuerySet

from approvals.models import Gate
from approvals.selectors import gates_pending
from governance.actors import Actor
from governance.models import Membership, User

PAGE_SIZE = 100


def pending_for_user(user: User) -> QuerySet[Gate]:
    """Open gates `user` may decide in any of their workspaces, newest first, with the run,
    automation, workspace and requester joined."""
    memberships = Membership.objects.select_related("user", "workspace__organization").filter(
        user=user
    )
    querysets = [gates_pending(Actor.for_member(m, source="page")) for m in memberships]
    if not querysets:
        return Gate.objects.none()
    return (
        reduce(or_, querysets)
        .select_related("run__automation", "requested_by", "workspace__organization")
        .order_by("-requested_at", "-pk")
    )
