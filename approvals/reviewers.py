"""Whether anybody can decide a gate: a member, not accountable for the work, holding what the
gate's policy asks for (and enough of them, in the right groups, for its quorum).

A gate nobody can decide sits until it expires. It is reported when the automation is saved
(`gate_warnings`, registered into `automations.warnings` by `ApprovalsConfig.ready`: the
accountable humans known then are the creator and the author of the saved version) and marked
on the gate when it opens (`Gate.lacks_independent_reviewer`: the run's accountable humans,
`approvals.policy.SEPARATION_RULES`), so the pending list and the admin can show it.

The conditions mirror the decision service's: the review permission (role, ownership, a grant to
the member or a group, superuser), `review_elevated` for elevated gates, a personal clearance
for every data class; the accountable humans are left out of consequential gates only. One
query per check.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from approvals.policy import GatePolicy, accountable_user_ids
from automations.flow import gate_config, is_approval_node
from automations.models import (
    Automation,
    AutomationGroupObjectPermission,
    AutomationUserObjectPermission,
)
from governance.models import (
    Membership,
    PrincipalKind,
    WorkspaceGroupObjectPermission,
    WorkspaceUserObjectPermission,
    clearance_codename,
)
from governance.policy import REVIEW, REVIEW_ELEVATED, ROLE_PERMISSIONS

NO_INDEPENDENT_REVIEWER = "GATE_NO_INDEPENDENT_REVIEWER"
QUORUM_UNSATISFIABLE = "GATE_QUORUM_UNSATISFIABLE"


def _holds(automation: Automation, codename: str) -> Q:
    roles = [role for role, held in ROLE_PERMISSIONS.items() if codename in held]
    to_user = AutomationUserObjectPermission.objects.filter(
        content_object=automation, permission__codename=codename, user=OuterRef("user")
    )
    to_group = AutomationGroupObjectPermission.objects.filter(
        content_object=automation, permission__codename=codename, group__user=OuterRef("user")
    )
    return (
        Q(role__in=roles)
        | Q(user=automation.created_by_id)
        | Q(user__is_superuser=True)
        | Q(Exists(to_user))
        | Q(Exists(to_group))
    )


def _cleared(workspace_id: int, data_class: str) -> Q:
    codename = clearance_codename(data_class)
    to_user = WorkspaceUserObjectPermission.objects.filter(
        content_object=workspace_id, permission__codename=codename, user=OuterRef("user")
    )
    to_group = WorkspaceGroupObjectPermission.objects.filter(
        content_object=workspace_id, permission__codename=codename, group__user=OuterRef("user")
    )
    return Q(Exists(to_user)) | Q(Exists(to_group))


def independent_reviewer_exists(
    *, automation: Automation, policy: GatePolicy, accountable: set[int]
) -> bool:
    """Whether a member other than `accountable` (when the gate is consequential) could
    approve a gate with `policy` on `automation`."""
    return independent_reviewers(
        automation=automation, policy=policy, accountable=accountable
    ).exists()


def independent_reviewers(
    *, automation: Automation, policy: GatePolicy, accountable: set[int]
) -> QuerySet[Membership]:
    """The members other than `accountable` (when the gate is consequential) who could approve
    a gate with `policy` on `automation`."""
    members = Membership.objects.filter(
        workspace_id=automation.workspace_id,
        user__kind=PrincipalKind.HUMAN,
        user__is_active=True,
    ).filter(_holds(automation, REVIEW))
    if policy.consequential:
        members = members.exclude(user_id__in=accountable)
    if policy.elevated:
        members = members.filter(_holds(automation, REVIEW_ELEVATED))
    for data_class in policy.data_classes:
        members = members.filter(_cleared(automation.workspace_id, data_class))
    return members


def gate_lacks_independent_reviewer(*, run, policy: dict[str, Any]) -> bool:
    """At a gate's opening: nobody but the run's accountable humans could approve it."""
    return not independent_reviewer_exists(
        automation=run.automation,
        policy=GatePolicy.of(policy),
        accountable=accountable_user_ids(run),
    )


def gate_warnings(automation: Automation) -> list[dict[str, Any]]:
    """One warning per gate of the saved flow that no member other than the creator and the
    version's author could approve."""
    accountable = {pk for pk in (automation.created_by_id, automation.updated_by_id) if pk}
    warnings = []
    for node in automation.flow.get("nodes", []):
        if not is_approval_node(node):
            continue
        policy = GatePolicy.of(gate_config(node)["policy"])
        warnings += _quorum_warnings(automation, node["node_id"], policy, accountable)
        if independent_reviewer_exists(
            automation=automation, policy=policy, accountable=accountable
        ):
            continue
        barred = " (it is consequential, so they may not approve it)"
        warnings.append(
            {
                "code": NO_INDEPENDENT_REVIEWER,
                "node_id": node["node_id"],
                "message": (
                    "No member of this workspace other than the people accountable for the "
                    f"work can decide gate {node['node_id']!r}"
                    f"{barred if policy.consequential else ''}: grant review (and any elevated "
                    "authority or clearance the gate needs) to someone else, or runs will wait "
                    "at this gate until it expires."
                ),
            }
        )
    return warnings


def _quorum_warnings(
    automation: Automation, node_id: str, policy: GatePolicy, accountable: set[int]
) -> list[dict[str, Any]]:
    """A quorum no set of members could meet today: fewer people able to approve than it
    needs in all, or in one of its groups (a group the workspace does not have has nobody).
    One query for the total and one per group; none without a quorum."""
    quorum = policy.quorum
    if quorum.single:
        return []
    eligible = independent_reviewers(automation=automation, policy=policy, accountable=accountable)
    shortfalls = []
    total = eligible.count()
    if total < quorum.required_approvals:
        shortfalls.append(
            f"it needs {quorum.required_approvals} different people to approve but only {total} "
            "member(s) not accountable for the work can"
        )
    for requirement in quorum.groups:
        in_group = eligible.filter(
            user__groups__name=requirement.group,
            user__groups__workspace_link__workspace_id=automation.workspace_id,
        ).count()
        if in_group < requirement.approvals:
            shortfalls.append(
                f"it needs {requirement.approvals} approval(s) from group {requirement.group!r} "
                f"but {in_group} member(s) of that workspace group can approve it"
            )
    if not shortfalls:
        return []
    message = (
        f"The quorum of gate {node_id!r} cannot be met: {'; '.join(shortfalls)}. Grant review "
        "(and any authority the gate needs) or add members to the group, or runs will wait at "
        "this gate until it expires."
    )
    return [{"code": QUORUM_UNSATISFIABLE, "node_id": node_id, "message": message}]
