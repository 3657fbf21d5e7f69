"""Writes to automations: create, update, delete, and per-automation grants.

Each service authorises (denials audited in their own transaction), then in one transaction
locks what it changes, writes, and appends the audit event. Flow validation happens before
anything is written, so a bad spec never leaves a partial change.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from automations import scheduling
from automations.flow import validate_automation
from automations.ids import AUTOMATION_ID_PATTERN, RESERVED_IDS
from automations.inputs import check_input_schema, validate_inputs
from automations.lifecycle import lifecycle_record
from automations.models import (
    Automation,
    AutomationGroupObjectPermission,
    AutomationStatus,
    AutomationUserObjectPermission,
    Run,
    StopKind,
    TriggerType,
)
from automations.run_nodes import nodes_plan, run_settings
from automations.run_spec import RunSpec
from automations.runs import state
from automations.runs.transitions import CANCELLABLE, Cause
from automations.workspace_files import workspace_root_path
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import AutomationNotFound, Conflict, InvalidRequest, NotFound
from governance.models import Membership, PrincipalKind, WorkspaceGroup
from governance.policy import (
    ADMIN_ONLY_GRANTS,
    GRANTABLE,
    OPERATE,
    Action,
    authorize,
    authorize_create,
    deny,
)

SPEC_FIELDS = ("flow", "agents", "execution", "workspace_root", "handoff_config")
PLAIN_FIELDS = ("name", "description", "status", "metadata", "input_schema")
# `grant_id` as `automations.selectors.automation_grants` renders it: `u<pk>` or `g<pk>`.
GRANT_ID_PATTERN = re.compile(r"([ug])([0-9]{1,18})")
# The reason (detail, `stop_reason`, `run_stopped`) of the runs an automation delete cancels.
AUTOMATION_DELETED_REASON = "automation deleted"


def _check_automation_id(automation_id: str) -> None:
    if not AUTOMATION_ID_PATTERN.fullmatch(automation_id) or automation_id in RESERVED_IDS:
        raise InvalidRequest(
            "automation_id must be 1-128 letters, digits, '.', '_', ':' or '-' "
            "(and not a reserved word)",
            code="INVALID_REQUEST",
            fields={"automation_id": ["Invalid automation id."]},
        )


def _validated_spec(values: dict[str, Any], workspace) -> dict[str, Any]:
    """The normalised spec; `workspace_root` must lie inside the workspace's own directory
    (`automations.workspace_files`), and the handoff dirs are checked below its real path."""
    spec = {name: values.get(name) for name in SPEC_FIELDS}
    if spec["workspace_root"]:
        spec["workspace_root"] = str(workspace_root_path(workspace, spec["workspace_root"]))
    return validate_automation(**spec)


# What a create stores for a spec field it was not given.
CREATE_DEFAULTS = {
    "flow": {"nodes": []},
    "agents": [],
    "execution": {},
    "workspace_root": "",
    "handoff_config": None,
}


def automation_spec_check(
    *, workspace, data: dict[str, Any], current: Automation | None = None
) -> dict[str, Any]:
    """The spec a create (`current` None) or an update of `current` with `data` would store,
    normalised, or the `InvalidFlow` / `InvalidRequest` it would raise; nothing is written.

    The one validation of a spec: `automation_create` and `automation_apply_change` call it,
    and the admin's preview calls it before anything is saved, so a flow previewed as valid is
    judged by exactly the rules the save applies. Returns the `SPEC_FIELDS`, with
    `workspace_root` as given (the stored form).
    """
    if current is None or "input_schema" in data:
        check_input_schema(data.get("input_schema"))
    base = CREATE_DEFAULTS if current is None else {f: getattr(current, f) for f in SPEC_FIELDS}
    merged = {f: data.get(f, base[f]) for f in SPEC_FIELDS}
    spec = _validated_spec(merged, workspace)
    return {**spec, "workspace_root": merged["workspace_root"] or ""}


def lock_live(automation: Automation) -> Automation:
    """Lock the automation's row (inside the caller's transaction) and re-check it is live.

    `authorize` judged the row as read before the transaction; a concurrent delete may have
    committed since, and the lock makes the check hold until this transaction commits.
    """
    locked = Automation.objects.select_for_update().filter(pk=automation.pk).first()
    if locked is None or locked.deleted_at is not None:
        raise AutomationNotFound(automation.automation_id)
    return locked


def automation_create(*, actor: Actor, data: dict[str, Any]) -> Automation:
    """Create an automation owned by the actor; `automation_id` is generated when absent."""
    authorize_create(actor)
    automation_id = data.get("automation_id") or f"automation-{uuid.uuid4().hex}"
    _check_automation_id(automation_id)
    spec = automation_spec_check(workspace=actor.workspace, data=data)
    automation = Automation(
        workspace=actor.workspace,
        automation_id=automation_id,
        name=data["name"],
        description=data.get("description", ""),
        status=data.get("status", "active"),
        metadata=data.get("metadata") or {},
        input_schema=data.get("input_schema"),
        workspace_root=spec["workspace_root"],
        created_by=actor.user,
        updated_by=actor.user,
        **{k: spec[k] for k in ("flow", "agents", "execution", "handoff_config")},
    )
    try:
        with transaction.atomic():
            automation.save()
            audit_record(
                workspace=actor.workspace,
                event_type="automation.created",
                actor=actor,
                payload={"automationID": automation_id, "version": 1, "name": automation.name},
            )
    except IntegrityError as exc:
        raise Conflict(
            "An automation with this id already exists",
            code="AUTOMATION_V2_ALREADY_EXISTS",
            automationID=automation_id,
        ) from exc
    return automation


def automation_update(*, actor: Actor, automation: Automation, data: dict[str, Any]) -> Automation:
    """Apply a partial update; the merged spec is validated and `version` goes up by one.

    An optional `version` in `data` is a precondition: a stale client gets 409 instead of
    silently overwriting someone else's change. An update naming no field (`{}`, or only
    `version`) changes nothing: no version bump, no audit event.
    """
    authorize(actor, Action.CHANGE, automation)
    with transaction.atomic():
        locked = lock_live(automation)
        expected = data.get("version")
        if expected is not None and expected != locked.version:
            raise Conflict(
                "The automation changed since you read it",
                code="AUTOMATION_V2_VERSION_CONFLICT",
                currentVersion=locked.version,
            )
        changed = automation_apply_change(locked=locked, data=data, changed_by=actor.user)
        if not changed:
            locked.created_by = automation.created_by
            locked.workspace = automation.workspace
            return locked
        audit_record(
            workspace=actor.workspace,
            event_type="automation.updated",
            actor=actor,
            payload={
                "automationID": locked.automation_id,
                "version": locked.version,
                "changed": changed,
            },
        )
    locked.created_by = automation.created_by
    locked.workspace = automation.workspace
    return locked


def automation_apply_change(*, locked: Automation, data: dict[str, Any], changed_by) -> list[str]:
    """Validate and write a partial change to an automation whose row the caller has locked.

    The one validated write path of an automation's spec (used by `automation_update` and by
    run repair): the merged spec is validated before anything is written and `version` goes up
    by one, recording `changed_by` (the user whose change it is) as the version's author.
    Returns the API fields changed (empty: nothing written, no version bump). The caller
    authorises and writes the audit event in the same transaction.
    """
    changed = [f for f in (*PLAIN_FIELDS, *SPEC_FIELDS) if f in data]
    if not changed:
        return []
    if "input_schema" in data:
        check_input_schema(data["input_schema"])
    if any(f in data for f in SPEC_FIELDS):
        spec = automation_spec_check(workspace=locked.workspace, data=data, current=locked)
        for name in SPEC_FIELDS:
            setattr(locked, name, spec[name])
    for name in PLAIN_FIELDS:
        if name in data:
            setattr(locked, name, data[name] if name != "metadata" else data[name] or {})
    locked.version += 1
    locked.updated_by = changed_by
    locked.save(update_fields=[*_stored_fields(changed), "version", "updated_by", "updated_at"])
    return changed


def _stored_fields(changed: list[str]) -> list[str]:
    """The model fields an update of the API fields `changed` writes (spec fields are stored
    normalised together, so a change to one rewrites all of them)."""
    plain = [f for f in PLAIN_FIELDS if f in changed]
    return plain + (list(SPEC_FIELDS) if any(f in changed for f in SPEC_FIELDS) else [])


def automation_delete(*, actor: Actor, automation: Automation) -> None:
    """Soft-delete: runs, gates and the audit trail keep their automation; the id is freed.

    Deleting is a change like any other: the version goes up and the audit event records the
    deleted version. A deleted automation's runs answer 404, so nobody could stop them
    afterwards: every run that is not terminal is cancelled in the same transaction (its open
    gates superseded, its in-flight node results fenced out) and the audit event counts them.
    """
    authorize(actor, Action.DELETE, automation)
    now = timezone.now()
    with transaction.atomic():
        locked = lock_live(automation)
        locked.deleted_at = now
        locked.version += 1
        locked.updated_by = actor.user
        locked.save(update_fields=["deleted_at", "version", "updated_by", "updated_at"])
        # Locked in primary-key order, ids only; the statuses an operator cancel accepts.
        run_pks = list(
            Run.objects.select_for_update()
            .filter(automation=locked, status__in=CANCELLABLE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        cancelled = state.runs_cancel(
            run_pks,
            Cause.AUTOMATION_DELETE,
            reason=AUTOMATION_DELETED_REASON,
            stop_kind=StopKind.OPERATOR_STOPPED,
            now=now,
            automation_deleted=True,
        )
        audit_record(
            workspace=actor.workspace,
            event_type="automation.deleted",
            actor=actor,
            payload={
                "automationID": locked.automation_id,
                "version": locked.version,
                "cancelledRuns": cancelled,
            },
        )


def _grant_target(actor: Actor, *, username: str | None, group_name: str | None):
    """The member or workspace group a grant names; anything else (unknown, another
    workspace's) is the same 400, so grants reveal nothing about other tenants."""
    if bool(username) == bool(group_name):
        raise InvalidRequest(
            "Give exactly one of user or group",
            fields={"user": ["Give exactly one of user or group."]},
        )
    if username:
        membership = (
            Membership.objects.select_related("user")
            .filter(workspace=actor.workspace, user__username=username)
            .first()
        )
        if membership is None:
            raise InvalidRequest(
                f"No member named {username!r} in this workspace", code="GRANT_PRINCIPAL_NOT_FOUND"
            )
        return membership.user
    link = (
        WorkspaceGroup.objects.select_related("group")
        .filter(workspace=actor.workspace, group__name=group_name)
        .first()
    )
    if link is None:
        raise InvalidRequest(
            f"No group named {group_name!r} in this workspace", code="GRANT_PRINCIPAL_NOT_FOUND"
        )
    return link.group


def grant_add(
    *,
    actor: Actor,
    automation: Automation,
    permission: str,
    username: str | None = None,
    group_name: str | None = None,
):
    """Grant one permission on the automation to a workspace member or one of the workspace's
    groups (idempotent; the grant keeps its first grantor in `granted_by`). The automation row
    is locked so a concurrent delete cannot slip in.

    Review grants (`review`, `review_elevated`) are for workspace admins to give: an owner
    could otherwise pick the reviewers of their own work (403 `AUTOMATION_V2_GRANT_FORBIDDEN`,
    audited). A grant never lets anyone approve work they are accountable for (`approvals.policy`).
    """
    authorize(actor, Action.MANAGE_GRANTS, automation)
    if permission not in GRANTABLE:
        raise InvalidRequest(
            f"permission must be one of {', '.join(GRANTABLE)}",
            fields={"permission": ["Unknown permission."]},
        )
    if permission in ADMIN_ONLY_GRANTS and not actor.is_workspace_admin:
        deny(
            actor,
            action=Action.MANAGE_GRANTS,
            automation_id=automation.automation_id,
            code="AUTOMATION_V2_GRANT_FORBIDDEN",
            message=f"Only workspace admins may grant {permission}",
        )
    target = _grant_target(actor, username=username, group_name=group_name)
    with transaction.atomic():
        lock_live(automation)
        row = assign_perm(f"automations.{GRANTABLE[permission]}", target, automation)
        if row.granted_by_id is None:
            row.granted_by = actor.user
            row.save(update_fields=["granted_by"])
        audit_record(
            workspace=actor.workspace,
            event_type="automation.grant.added",
            actor=actor,
            payload={
                "automationID": automation.automation_id,
                "permission": permission,
                "user": username,
                "group": group_name,
            },
        )
    return row


def grant_revoke(*, actor: Actor, automation: Automation, grant_id: str) -> None:
    """Revoke a grant by its id (`u<n>` for a user grant, `g<n>` for a group grant).

    Lock order: the automation row, then the grant row, then (in `audit_record`) the chain head.
    """
    authorize(actor, Action.MANAGE_GRANTS, automation)
    match = GRANT_ID_PATTERN.fullmatch(grant_id)
    if match is None:
        raise NotFound("Grant not found", code="GRANT_NOT_FOUND", grantID=grant_id)
    kind, pk = match.groups()
    model = {"u": AutomationUserObjectPermission, "g": AutomationGroupObjectPermission}[kind]
    with transaction.atomic():
        lock_live(automation)
        row = (
            model.objects.select_for_update()
            .select_related("permission")
            .filter(pk=int(pk), content_object=automation)
            .first()
        )
        if row is None:
            raise NotFound("Grant not found", code="GRANT_NOT_FOUND", grantID=grant_id)
        row.delete()
        audit_record(
            workspace=actor.workspace,
            event_type="automation.grant.revoked",
            actor=actor,
            payload={
                "automationID": automation.automation_id,
                "grantID": grant_id,
                "permission": row.permission.codename,
            },
        )


def automation_snapshot(automation: Automation) -> dict[str, Any]:
    """The spec a run executes, frozen at start (later edits of the automation don't leak in)."""
    return {
        "automation_id": automation.automation_id,
        "name": automation.name,
        "version": automation.version,
        "flow": automation.flow,
        "agents": automation.agents,
        "execution": automation.execution,
        "workspace_root": automation.workspace_root,
        "handoff_config": automation.handoff_config,
        "input_schema": automation.input_schema,
        "created_by": automation.created_by.username,
        # The author of this version (`Automation.updated_by`), accountable for what runs.
        "changed_by_id": automation.updated_by_id,
    }


def requester_grantors(user, automation: Automation) -> list[str]:
    """Who granted `user` (an agent or service) the right to run `automation`: the grantors of
    its `operate` grants, to it or to one of its groups; user pks as strings, sorted. Empty for
    a human, who answers for their own runs."""
    if user is None or user.kind == PrincipalKind.HUMAN:
        return []
    to_user = AutomationUserObjectPermission.objects.filter(
        content_object=automation, user=user, permission__codename=OPERATE
    ).values_list("granted_by_id", flat=True)
    to_group = AutomationGroupObjectPermission.objects.filter(
        content_object=automation, group__user=user, permission__codename=OPERATE
    ).values_list("granted_by_id", flat=True)
    return sorted({str(pk) for pk in to_user.union(to_group) if pk is not None})


def run_start(
    *,
    actor: Actor,
    automation: Automation,
    trigger_type: str = TriggerType.MANUAL,
    inputs: dict[str, Any] | None = None,
) -> Run:
    """Create a queued run of the automation's current spec and schedule its execution.

    Only `active` automations start runs: a paused or draft automation answers 409
    `AUTOMATION_V2_NOT_ACTIVE`. The automation row is locked so a concurrent automation pause
    either sees this run (and pauses it) or makes this call fail. `inputs` must satisfy the
    locked row's `input_schema` (400 `RUN_INPUTS_INVALID`): the schema the run starts under.
    """
    authorize(actor, Action.OPERATE, automation)
    with transaction.atomic():
        locked = automation_lock_for_run(automation)
        inputs = inputs or {}
        validate_inputs(locked.input_schema, inputs)
        run = run_create(
            actor=actor,
            locked=locked,
            trigger_type=trigger_type,
            inputs=inputs,
            snapshot=automation_snapshot(locked),
            requester_grantors=requester_grantors(actor.user, locked),
        )
        scheduling.advance_after_commit(run.run_id)
    return run


def automation_lock_for_run(automation: Automation) -> Automation:
    """Lock the automation's row (inside the caller's transaction) for starting a run: 404 if
    deleted meanwhile, 409 `AUTOMATION_V2_NOT_ACTIVE` unless active. Used by `run_start` and by
    the triggers (`automations.triggers`)."""
    locked = (
        Automation.objects.select_for_update(of=("self",))
        .select_related("created_by")
        .get(pk=automation.pk)
    )
    if locked.deleted_at is not None:
        raise NotFound(
            "Automation not found",
            code="AUTOMATION_V2_NOT_FOUND",
            automationID=automation.automation_id,
        )
    if locked.status != AutomationStatus.ACTIVE:
        raise Conflict(
            f"Automation is {locked.status}; only active automations start runs",
            code="AUTOMATION_V2_NOT_ACTIVE",
            automationID=locked.automation_id,
            automationStatus=locked.status,
        )
    return locked


def run_create(
    *,
    actor: Actor,
    locked: Automation,
    trigger_type: str,
    inputs: dict[str, Any],
    snapshot: dict[str, Any],
    requester_grantors: list[str],
    requested_by=None,
    trigger_id: str = "",
    scheduled_for=None,
) -> Run:
    """Insert a queued run of `snapshot` (its node rows, lifecycle and audit event) in the
    caller's transaction, the automation row locked by the caller; the caller authorised it,
    validated the inputs, and schedules or advances it. `run_start` uses it, and so do approval
    requests (`approvals.requests`), whose runs execute a snapshot made for the request, and the
    triggers (`automations.triggers`): there the trigger is the actor, `requested_by` the editor
    who set it up (default: the actor's user), `trigger_id` names the schedule or webhook trigger
    and `scheduled_for` the fire time (unique per schedule)."""
    spec = RunSpec.from_snapshot(snapshot)
    run = Run.objects.create(
        run_id=f"run-{uuid.uuid4().hex}",
        workspace=actor.workspace,
        automation=locked,
        requested_by=requested_by or actor.user,
        requester_grantors=requester_grantors,
        trigger_type=trigger_type,
        trigger_id=trigger_id,
        scheduled_for=scheduled_for,
        automation_snapshot=snapshot,
        inputs=inputs,
        **run_settings(spec),
    )
    nodes_plan(run, spec)
    lifecycle_record(
        run,
        "run_queued",
        reason=f"started by {actor.actor_id}",
        **({"scheduled_for": scheduled_for.isoformat()} if scheduled_for else {}),
    )
    payload = {
        "automationID": locked.automation_id,
        "runID": run.run_id,
        "version": locked.version,
        "trigger": trigger_type,
    }
    if trigger_id:
        payload["triggerID"] = trigger_id
    if scheduled_for is not None:
        payload["scheduledFor"] = scheduled_for.isoformat()
    audit_record(
        workspace=actor.workspace,
        event_type="automation.run_started",
        actor=actor,
        payload=payload,
    )
    return run
