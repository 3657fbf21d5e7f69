"""Who may do what: the one action → permission table, used by every surface.

Permissions live on the automation (django-guardian object permissions). A caller holds one when:
- they own the automation (`created_by`) or are a workspace admin: every permission;
- their workspace role includes it (humans only, see below);
- a guardian grant gives it to them or to one of their groups.
Agents get `view` from their role and nothing else from it: an agent may change or operate only
automations it created or holds a grant on (SPEC §6.2). Deleting and managing grants are for
owners and admins only. Another workspace's automation does not exist for the caller (404).

Workspace-level actions (creating automations, reading the audit trail) have their own small
table, `WORKSPACE_ACTION_ROLES`, below.

Denied mutations are audited (`automation.governance.denied`, in their own transaction); denied
reads are not, because GETs never write (SPEC §10.11): callers pass `audit=False` for reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from functools import cache

from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from guardian.core import ObjectPermissionChecker

from governance.actors import Actor
from governance.audit import audit_record_committed
from governance.errors import AutomationNotFound, Forbidden
from governance.models import (
    Role,
    User,
    WorkspaceGroupObjectPermission,
    WorkspaceUserObjectPermission,
    clearance_codename,
)


class Action(StrEnum):
    VIEW = "view"
    CHANGE = "change"
    DELETE = "delete"
    OPERATE = "operate"
    REVIEW = "review"
    REVIEW_ELEVATED = "review_elevated"
    MANAGE_GRANTS = "manage_grants"


# Permission codenames on Automation (SPEC §2); grants name them without the suffix.
VIEW = "view_automation"
CHANGE = "change_automation"
OPERATE = "operate_automation"
REVIEW = "review_automation"
REVIEW_ELEVATED = "review_elevated_automation"
GRANTABLE = {
    "view": VIEW,
    "change": CHANGE,
    "operate": OPERATE,
    "review": REVIEW,
    "review_elevated": REVIEW_ELEVATED,
}
# Grants only a workspace admin may give: who reviews a piece of work is not for its owner
# to choose (separation of duties, `approvals.policy`).
ADMIN_ONLY_GRANTS = frozenset({"review", "review_elevated"})
# Not grantable: held only by owners and workspace admins.
OWNER_ONLY = "owner"

ACTION_PERMISSION: dict[Action, str] = {
    Action.VIEW: VIEW,
    Action.CHANGE: CHANGE,
    Action.DELETE: OWNER_ONLY,
    Action.OPERATE: OPERATE,
    Action.REVIEW: REVIEW,
    Action.REVIEW_ELEVATED: REVIEW_ELEVATED,
    Action.MANAGE_GRANTS: OWNER_ONLY,
}

ALL_PERMISSIONS = frozenset({*GRANTABLE.values(), OWNER_ONLY})

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({VIEW}),
    Role.OPERATOR: frozenset({VIEW, OPERATE}),
    Role.REVIEWER: frozenset({VIEW, REVIEW}),
    Role.ADMIN: ALL_PERMISSIONS,
}
# Roles that may create automations in their workspace (agents included: they then own them).
CREATOR_ROLES = frozenset({Role.OPERATOR, Role.ADMIN})


class WorkspaceAction(StrEnum):
    CREATE_AUTOMATION = "create"
    READ_AUDIT = "read_audit"
    # Asking humans to approve an action (`POST /api/approvals/requests`), agents included.
    REQUEST_APPROVAL = "request_approval"


# Workspace-level actions: the roles that may take them ...
WORKSPACE_ACTION_ROLES: dict[WorkspaceAction, frozenset[str]] = {
    WorkspaceAction.CREATE_AUTOMATION: CREATOR_ROLES,
    WorkspaceAction.READ_AUDIT: frozenset({Role.ADMIN}),
    WorkspaceAction.REQUEST_APPROVAL: frozenset({Role.OPERATOR, Role.ADMIN}),
}
# ... and those only humans may take, whatever the role (an agent holding the admin role does
# not read the audit trail).
HUMAN_ONLY_WORKSPACE_ACTIONS = frozenset({WorkspaceAction.READ_AUDIT})
WORKSPACE_DENIALS: dict[WorkspaceAction, tuple[str, str]] = {
    WorkspaceAction.CREATE_AUTOMATION: (
        "AUTOMATION_V2_ACCESS_DENIED",
        "Your role may not create automations",
    ),
    WorkspaceAction.READ_AUDIT: (
        "AUDIT_ACCESS_DENIED",
        "Only workspace admins may read the audit log",
    ),
    WorkspaceAction.REQUEST_APPROVAL: (
        "APPROVAL_REQUEST_FORBIDDEN",
        "Your role may not request approvals in this workspace",
    ),
}


def automation_permissions(
    actor: Actor, automation, *, clearances: Iterable[str] | None = None
) -> frozenset[str]:
    """Every permission `actor` holds on `automation` (empty when it is invisible to them).

    With `clearances` (data classes, possibly none) the guardian grants are read in one query
    (`grants_held`) together with those clearances (`clearance_codename`), which are added to
    the result: what a gate decision needs, in one query. Clearances are never implied by
    ownership or a role.
    """
    if actor.user is None or automation.workspace_id != actor.workspace.pk:
        return frozenset()
    if automation.deleted_at is not None:
        return frozenset()
    wanted = frozenset(clearance_codename(c) for c in clearances or ())
    if automation.created_by_id == actor.user.pk:
        held = set(ALL_PERMISSIONS)
    elif actor.is_agent:
        held = {VIEW} & ROLE_PERMISSIONS.get(actor.role, frozenset())
    else:
        held = set(ROLE_PERMISSIONS.get(actor.role, frozenset()))
    if held >= ALL_PERMISSIONS and not wanted:
        return ALL_PERMISSIONS
    if clearances is not None:
        held |= grants_held(actor.user, automation, wanted)
    else:
        held |= set(ObjectPermissionChecker(actor.user).get_perms(automation))
    return frozenset(held)


def grants_held(user, automation, workspace_codenames: frozenset[str] = frozenset()) -> set[str]:
    """The guardian grants of `user` (directly or through a group) on `automation`, and those of
    `workspace_codenames` on its workspace, in one query (guardian's checker takes two queries
    per object, four for both). As guardian: an inactive user holds nothing and a superuser
    every grantable permission, but (unlike guardian) only the clearances granted to them. Used
    where clearances are wanted too (gate decisions); other checks keep guardian's checker,
    whose query count the endpoints' tests pin.

    Plain SQL over guardian's direct-foreign-key tables: every authorised request runs it, and
    composing the four-part union through the ORM cost more than the query itself.
    """
    if not user.is_active:
        return set()
    # Superusers hold every grantable permission, but clearances only when granted: they are
    # personal, for superusers and workspace admins like everyone else.
    implied = set(GRANTABLE.values()) if user.is_superuser else set()
    if implied and not workspace_codenames:
        return implied
    sql, params = _grants_on_automation(), [automation.pk, user.pk, automation.pk, user.pk]
    if workspace_codenames:
        listed = ", ".join(["%s"] * len(workspace_codenames))
        sql = f"{sql} UNION ALL {_GRANTS_ON_WORKSPACE.format(codenames=listed)}"
        codenames = sorted(workspace_codenames)
        params += [automation.workspace_id, user.pk, *codenames]
        params += [automation.workspace_id, user.pk, *codenames]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return implied | {row[0] for row in cursor.fetchall()}


def _grant_sql(user_table: str, group_table: str, extra: str = "") -> str:
    """Codenames granted on one object (`content_object_id`) to one user (`user_id`), directly
    or through a group, in guardian's per-model tables."""
    memberships = User.groups.through._meta.db_table
    permissions = Permission._meta.db_table
    return (
        f"SELECT p.codename FROM {user_table} g JOIN {permissions} p ON p.id = g.permission_id "
        f"WHERE g.content_object_id = %s AND g.user_id = %s{extra} UNION ALL "
        f"SELECT p.codename FROM {group_table} g JOIN {permissions} p ON p.id = g.permission_id "
        f"JOIN {memberships} m ON m.group_id = g.group_id "
        f"WHERE g.content_object_id = %s AND m.user_id = %s{extra}"
    )


_automation_grant_tables: list[tuple[str, str]] = []


def register_automation_grant_tables(user_model: type, group_model: type) -> None:
    """Name guardian's direct-foreign-key grant tables of automations (the user and the group
    table). `automations` registers them in its `AppConfig.ready()`: this app sits below it and
    never imports it."""
    _automation_grant_tables[:] = [(user_model._meta.db_table, group_model._meta.db_table)]
    _grants_on_automation.cache_clear()


@cache
def _grants_on_automation() -> str:
    if not _automation_grant_tables:
        raise ImproperlyConfigured("the automations app has not registered its grant tables")
    return _grant_sql(*_automation_grant_tables[0])


_GRANTS_ON_WORKSPACE = _grant_sql(
    WorkspaceUserObjectPermission._meta.db_table,
    WorkspaceGroupObjectPermission._meta.db_table,
    " AND p.codename IN ({codenames})",
)


def _denial_code(actor: Actor) -> tuple[str, str]:
    if actor.is_agent:
        return (
            "AUTOMATION_V2_MODIFY_FORBIDDEN",
            "Agents may only modify automations they created or hold a grant on",
        )
    return "AUTOMATION_V2_ACCESS_DENIED", "Automation access denied"


def deny(actor: Actor, *, action: str, automation_id: str | None, code: str, message: str):
    """Record the denial in its own committed transaction, then raise 403."""
    audit_record_committed(
        workspace=actor.workspace,
        event_type="automation.governance.denied",
        actor=actor,
        payload={
            "automationID": automation_id,
            "action": action,
            "code": code,
            "actor": actor.describe(),
        },
    )
    raise Forbidden(message, code=code)


def authorize(
    actor: Actor,
    action: Action,
    automation,
    *,
    audit: bool = True,
    held: frozenset[str] | None = None,
) -> frozenset[str]:
    """Raise 404 if the automation is invisible, 403 if the action is not permitted.

    The 403 is audited unless `audit=False`, which reads pass (GETs never write). `held` is
    what `automation_permissions` returned, when the caller read it already (with clearances).
    """
    if held is None:
        held = automation_permissions(actor, automation)
    if VIEW not in held:
        raise AutomationNotFound(automation.automation_id)
    if ACTION_PERMISSION[action] not in held:
        code, message = _denial_code(actor)
        if not audit:
            raise Forbidden(message, code=code)
        deny(
            actor, action=action, automation_id=automation.automation_id, code=code, message=message
        )
    return held


def workspace_allows(actor: Actor, action: WorkspaceAction) -> bool:
    """Whether the actor may take a workspace-level action in its workspace."""
    if action in HUMAN_ONLY_WORKSPACE_ACTIONS and not actor.is_human:
        return False
    return actor.role in WORKSPACE_ACTION_ROLES[action]


def authorize_workspace(actor: Actor, action: WorkspaceAction, *, audit: bool = True) -> None:
    """Raise 403 unless the actor may take `action`; audited unless `audit=False` (reads)."""
    if workspace_allows(actor, action):
        return
    code, message = WORKSPACE_DENIALS[action]
    if not audit:
        raise Forbidden(message, code=code)
    deny(actor, action=action, automation_id=None, code=code, message=message)


def authorize_create(actor: Actor) -> None:
    """Creating an automation (audited when denied)."""
    authorize_workspace(actor, WorkspaceAction.CREATE_AUTOMATION)
