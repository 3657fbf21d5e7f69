"""Driving the Django admin (the operator's console) as a staff member: sign in, read the
messages and redirects a POST produced, and the URLs of object pages."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from automations.models import Run


def console(member) -> Client:
    """A Django test client signed in to the admin as `member` made staff (not superuser)."""
    user = getattr(member, "user", member)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    """The messages the page a POST redirected to shows (each shown once)."""
    return [str(m) for m in response.context["messages"]]


def redirected_to(response) -> str:
    return response.redirect_chain[-1][0]


def change_url(obj) -> str:
    """The object's admin page; a run's is by run id (its integer URL redirects there)."""
    meta = obj._meta
    key = obj.run_id if isinstance(obj, Run) else obj.pk
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[key])
