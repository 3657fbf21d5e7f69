"""Inbound webhook triggers: a secret URL per trigger (`POST /api/hooks/<token>`) whose JSON body
starts a run of the automation with that body as its inputs (`trigger_type` `webhook`).

The token is the only credential, so it is treated like an API token (`governance.tokens`):
256 random bits, shown once when the trigger is created or rotated, stored as its SHA-256
digest, looked up by digest. An unknown, rotated-away or revoked token, or one whose automation
was deleted, answers exactly like a route that does not exist (404 `NOT_FOUND`), so a caller
learns nothing about which tokens exist. Editors of the automation (change permission)
create, rotate and revoke triggers; every change and every run a trigger starts is audited, the
latter with the trigger as the actor (`kind` `trigger`, `actor_id` `webhook:<trigger_id>`).

A trigger acts for its creator, who must still be allowed to change the automation when it is
called (`automations.triggers.owners`); otherwise the call revokes it (audited, actor the
trigger) and answers 404: an editor creates a new one.

Lock order: the trigger row, then the automation row, then the audit chain head (so a revoke
that commits first is seen by every fire that follows it).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automations import scheduling, services
from automations.inputs import validate_inputs
from automations.models import Automation, Run, TriggerType, WebhookTrigger
from automations.triggers.owners import OWNER_NOT_AUTHORISED, owner_refusal
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import NotFound
from governance.policy import Action, authorize
from governance.tokens import token_digest

TOKEN_PREFIX = "fgh_"


class WebhookTriggerNotFound(NotFound):
    code = "WEBHOOK_TRIGGER_NOT_FOUND"
    message = "Webhook trigger not found"

    def __init__(self, trigger_id: str):
        super().__init__(triggerID=trigger_id)


def hook_not_found() -> NotFound:
    """The answer to any token that starts nothing: the same as an unknown /api route."""
    return NotFound("No such API route", code="NOT_FOUND")


def hook_url(token: str) -> str:
    return f"{settings.FLOWGATE_PUBLIC_URL.rstrip('/')}/api/hooks/{token}"


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _describe(trigger: WebhookTrigger) -> dict[str, Any]:
    return {"automationID": trigger.automation.automation_id, "triggerID": trigger.trigger_id}


def webhook_trigger_create(
    *, actor: Actor, automation: Automation, name: str = ""
) -> tuple[WebhookTrigger, str]:
    """Add a webhook trigger to the automation (change permission); returns it and its token,
    which is not stored and cannot be shown again."""
    authorize(actor, Action.CHANGE, automation)
    token = _new_token()
    with transaction.atomic():
        locked = services.lock_live(automation)
        trigger = WebhookTrigger.objects.create(
            trigger_id=f"hook-{uuid.uuid4().hex[:20]}",
            workspace=locked.workspace,
            automation=locked,
            name=name,
            token_digest=token_digest(token),
            created_by=actor.user,
        )
        audit_record(
            workspace=actor.workspace,
            event_type="automation.webhook_trigger.created",
            actor=actor,
            payload={**_describe(trigger), "name": name},
        )
    return trigger, token


def _locked(trigger: WebhookTrigger) -> WebhookTrigger:
    locked = (
        WebhookTrigger.objects.select_for_update(of=("self",))
        .select_related("created_by")
        .filter(pk=trigger.pk)
        .first()
    )
    if locked is None or locked.revoked_at is not None:
        raise WebhookTriggerNotFound(trigger.trigger_id)
    locked.automation = trigger.automation
    return locked


def webhook_trigger_rotate(*, actor: Actor, trigger: WebhookTrigger) -> tuple[WebhookTrigger, str]:
    """Replace the trigger's token: the old URL stops working when this commits. A revoked
    trigger cannot be rotated (404)."""
    authorize(actor, Action.CHANGE, trigger.automation)
    token = _new_token()
    with transaction.atomic():
        locked = _locked(trigger)
        locked.token_digest = token_digest(token)
        locked.rotated_at = timezone.now()
        locked.save(update_fields=["token_digest", "rotated_at"])
        audit_record(
            workspace=actor.workspace,
            event_type="automation.webhook_trigger.rotated",
            actor=actor,
            payload=_describe(locked),
        )
    return locked, token


def webhook_trigger_revoke(*, actor: Actor, trigger: WebhookTrigger) -> None:
    """Revoke the trigger for good: its URL answers 404 from this commit on. Revoking a revoked
    trigger changes nothing (and is not audited again)."""
    authorize(actor, Action.CHANGE, trigger.automation)
    with transaction.atomic():
        try:
            locked = _locked(trigger)
        except WebhookTriggerNotFound:
            return
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(
            workspace=actor.workspace,
            event_type="automation.webhook_trigger.revoked",
            actor=actor,
            payload=_describe(locked),
        )


def webhook_fire(*, token: str, inputs: dict[str, Any]) -> Run:
    """Start a run of the trigger's automation with `inputs` (validated against its
    `input_schema`: 400 `RUN_INPUTS_INVALID` and no run). 404 for any token that starts
    nothing; 409 `AUTOMATION_V2_NOT_ACTIVE` while the automation is paused. A trigger whose
    creator may no longer change the automation (`automations.triggers.owners`) is revoked by
    this call (audited) and answers 404 like any revoked one."""
    if not token.startswith(TOKEN_PREFIX):
        raise hook_not_found()
    with transaction.atomic():
        trigger = (
            WebhookTrigger.objects.select_for_update(of=("self",))
            .select_related("automation", "created_by", "workspace__organization")
            .filter(
                token_digest=token_digest(token),
                revoked_at__isnull=True,
                automation__deleted_at__isnull=True,
            )
            .first()
        )
        if trigger is None:
            raise hook_not_found()
        refusal = owner_refusal(trigger.created_by, trigger.automation)
        if refusal is None:
            return _start(trigger, inputs)
        _revoke_for_owner(trigger, refusal)  # commits; the caller learns nothing more
    raise hook_not_found()


def _start(trigger: WebhookTrigger, inputs: dict[str, Any]) -> Run:
    locked = services.automation_lock_for_run(trigger.automation)
    validate_inputs(locked.input_schema, inputs)
    run = services.run_create(
        actor=Actor.trigger(trigger.workspace, f"webhook:{trigger.trigger_id}"),
        locked=locked,
        trigger_type=TriggerType.WEBHOOK,
        inputs=inputs,
        snapshot=services.automation_snapshot(locked),
        requester_grantors=services.requester_grantors(trigger.created_by, locked),
        requested_by=trigger.created_by,
        trigger_id=trigger.trigger_id,
    )
    scheduling.advance_after_commit(run.run_id)
    trigger.last_used_at = timezone.now()
    trigger.save(update_fields=["last_used_at"])
    return run


def _revoke_for_owner(trigger: WebhookTrigger, reason: str) -> None:
    trigger.revoked_at = timezone.now()
    trigger.save(update_fields=["revoked_at"])
    audit_record(
        workspace=trigger.workspace,
        event_type="automation.webhook_trigger.revoked",
        actor=Actor.trigger(trigger.workspace, f"webhook:{trigger.trigger_id}"),
        payload={**_describe(trigger), "code": OWNER_NOT_AUTHORISED, "reason": reason},
    )
