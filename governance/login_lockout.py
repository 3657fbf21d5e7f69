"""Login lockout (django-axes, configured in config/settings/base.py): audited and releasable.

Every password sign-in (the admin, the approval pages' sign-in, the link page's password check)
goes through `django.contrib.auth.authenticate`, where axes counts failures per account and
source address and refuses a locked-out pair. API tokens never pass there, so they are unaffected.

A lockout is recorded when it starts (`governance.login.locked_out`) and an admin's unlock when
it happens (`governance.login.unlocked`), in the audit chain of every workspace the account
belongs to (an account name nobody has belongs to no workspace: logged only).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from axes.models import AccessAttempt
from django.conf import settings
from django.db import transaction

from governance.actors import Actor
from governance.audit import audit_record
from governance.models import Membership, User

logger = logging.getLogger(__name__)


def lockout_record(*, username: str, ip_address: str | None) -> None:
    """Audit a lockout that has just started (receiver of axes' `user_locked_out`)."""
    logger.warning("login locked out: user %r from %s", username, ip_address)
    payload = {
        "username": username,
        "ipAddress": ip_address,
        "failureLimit": settings.AXES_FAILURE_LIMIT,
        "lockoutSeconds": int(settings.AXES_COOLOFF_TIME.total_seconds()),
    }
    with transaction.atomic():
        for membership in _memberships(username):
            audit_record(
                workspace=membership.workspace,
                event_type="governance.login.locked_out",
                actor=Actor.system(membership.workspace, "login"),
                payload=payload,
            )


def lockout_release(*, by: User, attempts: Iterable[AccessAttempt]) -> int:
    """An admin unlocks: the failed-attempt records go (the count starts again), each release
    audited with who released it. Returns how many records were deleted."""
    released = 0
    with transaction.atomic():
        for attempt in attempts:
            for membership in _memberships(attempt.username):
                audit_record(
                    workspace=membership.workspace,
                    event_type="governance.login.unlocked",
                    actor=Actor.for_admin(by, membership.workspace),
                    payload={
                        "username": attempt.username,
                        "ipAddress": attempt.ip_address,
                        "failures": attempt.failures_since_start,
                    },
                )
            deleted, _ = AccessAttempt.objects.filter(pk=attempt.pk).delete()
            released += deleted
    return released


def _memberships(username: str | None) -> list[Membership]:
    if not username:
        return []
    return list(
        Membership.objects.select_related("workspace__organization").filter(user__username=username)
    )


def on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    """axes sends `user_locked_out` for the attempt that locks, and again for each attempt
    refused while locked; only the first (where axes counted the failures) starts a lockout."""
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    lockout_record(username=username or "", ip_address=ip_address)
