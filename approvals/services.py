"""Writes to gates. Opening a gate is done by the run engine inside its run transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from approvals import hooks
from approvals.models import Gate
from approvals.reviewers import gate_lacks_independent_reviewer
from automations.lifecycle import lifecycle_record
from automations.models import Run, RunStatus


def reviewed_digest(upstream_outputs: dict[str, Any]) -> str:
    """SHA-256 of the upstream outputs shown to reviewers, in canonical JSON.

    A decision records the digest it was given, so "approved what was seen" can be checked.
    """
    canonical = json.dumps(upstream_outputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def gate_open(
    *, run: Run, node_id: str, gate: dict[str, Any], upstream_outputs: dict[str, Any], now
) -> Gate:
    """Open the next round of `node_id`'s gate and park the run on it.

    Must run inside the engine's transaction with the run row locked; the chat hook is
    scheduled for after that commit.
    """
    previous = Gate.objects.filter(run=run, node_id=node_id).aggregate(Max("round"))["round__max"]
    expiry = gate.get("expiry") or {}
    expires_after = expiry.get("expires_after_s") or settings.FLOWGATE_GATE_DEFAULT_EXPIRY_S
    opened = Gate.objects.create(
        id=f"gate-{uuid.uuid4().hex}",
        run=run,
        workspace_id=run.workspace_id,
        node_id=node_id,
        round=(previous or 0) + 1,
        title=gate["title"],
        instructions=gate.get("instructions") or "",
        decisions=gate["decisions"],
        rework_targets=gate["rework_targets"],
        upstream_node_ids=sorted(upstream_outputs),
        policy=gate["policy"],
        expiry_policy={
            **expiry,
            "expires_after_s": expires_after,
            "on_expiry": expiry.get("on_expiry") or "cancel",
        },
        requested_by_id=run.requested_by_id,
        requested_at=now,
        expires_at=now + timedelta(seconds=expires_after),
        reviewed_digest=reviewed_digest(upstream_outputs),
        lacks_independent_reviewer=gate_lacks_independent_reviewer(run=run, policy=gate["policy"]),
    )
    run.status = RunStatus.AWAITING_APPROVAL
    run.detail = f"awaiting approval for gate `{node_id}`"
    lifecycle_record(
        run,
        "approval_gate_opened",
        reason=run.detail,
        node_id=node_id,
        gate_id=opened.id,
        round=opened.round,
        expires_at=opened.expires_at.isoformat(),
        lacks_independent_reviewer=opened.lacks_independent_reviewer,
    )
    transaction.on_commit(lambda: hooks.gate_opened(opened.id))
    return opened
