"""Template filters of the operator's console pages (templates/admin/automations/…)."""

from __future__ import annotations

from django import template

from automations import admin_format

register = template.Library()


@register.filter
def timestamp(value):
    """A datetime to the second (`2026-12-03 13:31:12`), or "—"."""
    return admin_format.timestamp(value)
