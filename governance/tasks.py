"""Periodic audit work: verify every chain and write each chain head to the log.

The logged heads are the external record of SPEC §7: the chain alone cannot show that its tail
was removed together with the head row, but a head seq lower than an earlier log line can.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from governance import events, idempotency
from governance.audit import verify_chain
from governance.models import AuditChainHead, Workspace

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def audit_verify_all() -> dict[str, object]:
    """Verify every workspace's chain; log its head, and an error for a broken chain.

    Read-only and idempotent, so a retried or overlapping run is harmless.
    """
    stored_heads = {head.workspace_id: head for head in AuditChainHead.objects.all()}
    verified, broken = 0, []
    for workspace in Workspace.objects.select_related("organization").order_by("pk"):
        verified += 1
        result = verify_chain(workspace)
        if result.ok:
            seq, digest = result.head["seq"], result.head["hash"]
        else:
            stored = stored_heads.get(workspace.pk)
            seq, digest = (stored.seq, stored.hash) if stored else (None, None)
        logger.info("audit head workspace=%s seq=%s hash=%s", workspace.path, seq, digest or "-")
        if not result.ok:
            broken.append(workspace.path)
            fault = result.first_break
            logger.error(
                "audit chain broken workspace=%s seq=%s event_id=%s reason=%s",
                workspace.path,
                fault.seq,
                fault.event_id,
                fault.reason,
            )
    return {"workspaces": verified, "broken": broken}


@shared_task(name="governance.forget_idempotency_records", ignore_result=True)
def forget_idempotency_records() -> int:
    """Beat: delete stored Idempotency-Key responses past their retention window."""
    return idempotency.forget_expired()


@shared_task(name="governance.stamp_events", ignore_result=True)
def stamp_events() -> int:
    """Beat: stamp the domain events whose after-commit stamp never ran (`governance.events`)."""
    return events.events_stamp_overdue()


@shared_task(name="governance.forget_events", ignore_result=True)
def forget_events() -> int:
    """Beat: delete the domain events past their retention (`events.events_forget`)."""
    return events.events_forget(now=timezone.now())
