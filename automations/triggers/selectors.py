"""Scoped reads of an automation's schedules and webhook triggers (the automation itself is
read, and the caller's view of it checked, by `automations.selectors.automation_get`)."""

from __future__ import annotations

from django.db.models import QuerySet

from automations.models import Automation, Schedule, WebhookTrigger
from automations.triggers.schedules import ScheduleNotFound
from automations.triggers.webhooks import WebhookTriggerNotFound


def schedules_of(automation: Automation) -> QuerySet[Schedule]:
    """The automation's schedules, ready to render without a query per row."""
    return Schedule.objects.filter(automation=automation).select_related("created_by")


def schedule_get(automation: Automation, schedule_id: str) -> Schedule:
    schedule = schedules_of(automation).filter(schedule_id=schedule_id).first()
    if schedule is None:
        raise ScheduleNotFound(schedule_id)
    schedule.automation = automation
    return schedule


def webhook_triggers_of(automation: Automation) -> QuerySet[WebhookTrigger]:
    """The automation's webhook triggers, revoked ones included (they are evidence)."""
    return WebhookTrigger.objects.filter(automation=automation).select_related("created_by")


def webhook_trigger_get(automation: Automation, trigger_id: str) -> WebhookTrigger:
    trigger = webhook_triggers_of(automation).filter(trigger_id=trigger_id).first()
    if trigger is None:
        raise WebhookTriggerNotFound(trigger_id)
    trigger.automation = automation
    return trigger
