"""The automation page's schedules and webhook triggers: what its forms post, turned into calls
of the services the API uses (`automations.triggers`), with the staff user as the actor.

Each request names one change (`delete`, `toggle`, `rotate`, `revoke`, or none: add); the
lookups happen inside the action, so a stale id is reported as a message, like any refusal. A
new or rotated webhook URL is shown once, in the success message: only its digest is stored.
"""

from __future__ import annotations

import json

from automations.triggers import schedules, webhooks
from automations.triggers import selectors as trigger_selectors
from governance.admin_actions import AdminAction
from governance.errors import InvalidRequest


def _inputs(text: str) -> dict:
    """The inputs field: a JSON object, or empty for none."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest("Inputs must be a JSON object (or empty)")
    return value


def schedule_action(post) -> AdminAction:
    """The change a POST to the automation page's schedules form asks for."""
    if post.get("delete"):
        schedule_id = post["delete"]

        def delete(actor, automation, **_):
            schedule = trigger_selectors.schedule_get(automation, schedule_id)
            schedules.schedule_delete(actor=actor, schedule=schedule)
            return f"deleted schedule {schedule_id}"

        return AdminAction("Delete schedule", delete)
    if post.get("toggle"):
        schedule_id = post["toggle"]

        def toggle(actor, automation, **_):
            schedule = trigger_selectors.schedule_get(automation, schedule_id)
            enabled = not schedule.enabled
            schedules.schedule_update(actor=actor, schedule=schedule, data={"enabled": enabled})
            return f"schedule {schedule_id} {'enabled' if enabled else 'disabled'}"

        return AdminAction("Enable or disable schedule", toggle)

    def add(actor, automation, **_):
        data = {
            "cron": post.get("cron", "").strip(),
            "timezone": post.get("timezone", "").strip() or "UTC",
            "inputs": _inputs(post.get("inputs", "")),
        }
        schedule = schedules.schedule_create(actor=actor, automation=automation, data=data)
        return f"added schedule {schedule.schedule_id} ({schedule.cron} {schedule.timezone})"

    return AdminAction("Add schedule", add)


def webhook_trigger_action(post) -> AdminAction:
    """The change a POST to the automation page's webhook triggers form asks for."""
    if post.get("revoke"):
        trigger_id = post["revoke"]

        def revoke(actor, automation, **_):
            trigger = trigger_selectors.webhook_trigger_get(automation, trigger_id)
            webhooks.webhook_trigger_revoke(actor=actor, trigger=trigger)
            return f"revoked webhook trigger {trigger_id}"

        return AdminAction("Revoke webhook trigger", revoke)
    if post.get("rotate"):
        trigger_id = post["rotate"]

        def rotate(actor, automation, **_):
            trigger = trigger_selectors.webhook_trigger_get(automation, trigger_id)
            _, token = webhooks.webhook_trigger_rotate(actor=actor, trigger=trigger)
            return f"new URL of {trigger_id} (shown once): {webhooks.hook_url(token)}"

        return AdminAction("Rotate webhook trigger", rotate)

    def add(actor, automation, **_):
        name = post.get("trigger_name", "").strip()[:200]
        trigger, token = webhooks.webhook_trigger_create(
            actor=actor, automation=automation, name=name
        )
        return f"added webhook trigger {trigger.trigger_id}; its URL (shown once): " + (
            webhooks.hook_url(token)
        )

    return AdminAction("Add webhook trigger", add)
