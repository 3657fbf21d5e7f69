"""Writes to automations: create, update, delete, and per-automation grants.

Each service authorises (denials audited in their own transaction), then in one transaction
locks what it changes, writes, and appends the audit event. Flow validation happens before
anything is written, so a bad spec never leaves a partial change.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from automations.flow import validate_automation
from automations.lifecycle import lifecycle_record
from automations.models import (
    Automation,
    AutomationGroupObjectPermission,
    AutomationStatus,
    AutomationUserObjectPermission,
    Run,
    RunNode,
)
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict, InvalidRequest, NotFound
from governance.models import Membership
from governance.policy import GRANTABLE, Action, authorize, authorize_create

AUTOMATION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Path segments under /api/automations/v2 that are routes, not automation ids.
RESERVED_IDS = frozenset({"runs"})
SPEC_FIELDS = ("flow", "agents", "execution", "workspace_root", "handoff_config")
PLAIN_FIELDS = ("name", "description", "status", "metadata")


def _check_automation_id(automation_id: str) -> None:
    if not AUTOMATION_ID_PATTERN.match(automation_id) or automation_id in RESERVED_IDS:
        raise InvalidRequest(
            "automation_id must be 1-128 letters, digits, '.', '_', ':' or '-' "
            "(and not a reserved word)",
            code="INVALID_REQUEST",
            fields={"automation_id": ["Invalid automation id."]},
        )


def _validated_spec(values: dict[str, Any]) -> dict[str, Any]:
    return validate_automation(**{name: values.get(name) for name in SPEC_FIELDS})


def automation_create(*, actor: Actor, data: dict[str, Any]) -> Automation:
    """Create an automation owned by the actor; `automation_id` is generated when absent."""
    authorize_create(actor)
    automation_id = data.get("automation_id") or f"automation-{uuid.uuid4().hex}"
    _check_automation_id(automation_id)
    spec = _validated_spec(
        {
            "flow": data.get("flow", {"nodes": []}),
            "agents": data.get("agents", []),
            "execution": data.get("execution", {}),
            "workspace_root": data.get("workspace_root", ""),
            "handoff_config": data.get("handoff_config"),
        }
    )
    automation = Automation(
        workspace=actor.workspace,
        automation_id=automation_id,
        name=data["name"],
        description=data.get("description", ""),
        status=data.get("status", "active"),
        metadata=data.get("metadata") or {},
        workspace_root=data.get("workspace_root", ""),
        created_by=actor.user,
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
    silently overwriting someone else's change.
    """
    authorize(actor, Action.CHANGE, automation)
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=automation.pk)
        if locked.deleted_at is not None:
            raise NotFound(
                "Automation not found",
                code="AUTOMATION_V2_NOT_FOUND",
                automationID=automation.automation_id,
            )
        expected = data.get("version")
        if expected is not None and expected != locked.version:
            raise Conflict(
                "The automation changed since you read it",
                code="AUTOMATION_V2_VERSION_CONFLICT",
                currentVersion=locked.version,
            )
        changed = [f for f in (*PLAIN_FIELDS, *SPEC_FIELDS) if f in data]
        if any(f in data for f in SPEC_FIELDS):
            merged = {f: data.get(f, getattr(locked, f)) for f in SPEC_FIELDS}
            spec = _validated_spec(merged)
            locked.workspace_root = merged["workspace_root"] or ""
            for name in ("flow", "agents", "execution", "handoff_config"):
                setattr(locked, name, spec[name])
        for name in PLAIN_FIELDS:
            if name in data:
                setattr(locked, name, data[name] if name != "metadata" else data[name] or {})
        locked.version += 1
        locked.save()
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


def automation_delete(*, actor: Actor, automation: Automation) -> None:
    """Soft-delete: runs, gates and the audit trail keep their automation; the id is freed."""
    authorize(actor, Action.DELETE, automation)
    with transaction.atomic():
        updated = Automation.objects.filter(pk=automation.pk, deleted_at__isnull=True).update(
            deleted_at=timezone.now()
        )
        if not updated:
            raise NotFound(
                "Automation not found",
                code="AUTOMATION_V2_NOT_FOUND",
                automationID=automation.automation_id,
            )
        audit_record(
            workspace=actor.workspace,
            event_type="automation.deleted",
            actor=actor,
            payload={"automationID": automation.automation_id, "version": automation.version},
        )


def _grant_target(actor: Actor, *, username: str | None, group_name: str | None):
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
    group = Group.objects.filter(name=group_name).first()
    if group is None:
        raise InvalidRequest(f"No group named {group_name!r}", code="GRANT_PRINCIPAL_NOT_FOUND")
    return group


def grant_add(
    *,
    actor: Actor,
    automation: Automation,
    permission: str,
    username: str | None = None,
    group_name: str | None = None,
):
    """Grant one permission on the automation to a workspace member or a group (idempotent)."""
    authorize(actor, Action.MANAGE_GRANTS, automation)
    if permission not in GRANTABLE:
        raise InvalidRequest(
            f"permission must be one of {', '.join(GRANTABLE)}",
            fields={"permission": ["Unknown permission."]},
        )
    target = _grant_target(actor, username=username, group_name=group_name)
    with transaction.atomic():
        row = assign_perm(f"automations.{GRANTABLE[permission]}", target, automation)
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
    """Revoke a grant by its id (`u<n>` for a user grant, `g<n>` for a group grant)."""
    authorize(actor, Action.MANAGE_GRANTS, automation)
    model = {"u": AutomationUserObjectPermission, "g": AutomationGroupObjectPermission}.get(
        grant_id[:1]
    )
    pk = grant_id[1:]
    if model is None or not pk.isdigit():
        raise NotFound("Grant not found", code="GRANT_NOT_FOUND", grantID=grant_id)
    with transaction.atomic():
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
        "created_by": automation.created_by.username,
    }


def run_start(*, actor: Actor, automation: Automation, trigger_type: str = "manual") -> Run:
    """Create a queued run of the automation's current spec and schedule its execution.

    Only `active` automations start runs: a paused or draft automation answers 409
    `AUTOMATION_V2_NOT_ACTIVE`. The automation row is locked so a concurrent automation pause
    either sees this run (and pauses it) or makes this call fail.
    """
    from automations import tasks

    authorize(actor, Action.OPERATE, automation)
    with transaction.atomic():
        locked = (
            Automation.objects.select_for_update()
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
        run = Run.objects.create(
            run_id=f"run-{uuid.uuid4().hex}",
            workspace=actor.workspace,
            automation=locked,
            requested_by=actor.user,
            trigger_type=trigger_type,
            automation_snapshot=automation_snapshot(locked),
        )
        RunNode.objects.bulk_create(
            [RunNode(run=run, node_id=node["node_id"]) for node in locked.flow.get("nodes", [])]
        )
        lifecycle_record(run, "run_queued", reason=f"started by {actor.actor_id}")
        audit_record(
            workspace=actor.workspace,
            event_type="automation.run_started",
            actor=actor,
            payload={
                "automationID": locked.automation_id,
                "runID": run.run_id,
                "version": locked.version,
                "trigger": trigger_type,
            },
        )
        transaction.on_commit(lambda: tasks.schedule_advance(run.run_id))
    return run
