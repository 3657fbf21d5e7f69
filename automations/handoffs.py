"""Handoff artifacts: JSON files a node leaves for another automation (reference §2.8).

A node that declares `handoff` writes, after its result is committed, one artifact into its
automation's inbox dir under `workspace_root`, moved to the approved dir when `auto_approve`.
Dirs are re-resolved on every use, so they cannot escape the workspace root.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from automations.flow import HANDOFF_DEFAULTS, handoff_dirs
from automations.lifecycle import lifecycle_record
from automations.models import Run, RunNode
from automations.spec import RunSpec
from governance.errors import FlowgateError

logger = logging.getLogger(__name__)


def _atomic_write(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".handoff-", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def build_artifact(run: Run, node_id: str, output: Any, declared: dict[str, Any]) -> dict:
    content = json.dumps(output, sort_keys=True, separators=(",", ":"), default=str)
    now = timezone.now()
    return {
        "handoff_id": f"hoff-{now:%Y%m%d}-{uuid.uuid4()}",
        "source_automation_id": run.automation_snapshot.get("automation_id", ""),
        "source_run_id": run.run_id,
        "source_node_id": node_id,
        "target_automation_id": declared.get("target_automation_id", ""),
        "artifact_type": declared.get("artifact_type", "node_output"),
        "created_at_ms": int(time.time() * 1000),
        "content_digest": hashlib.sha256(content.encode()).hexdigest(),
        "metadata": {**(declared.get("metadata") or {}), "output": output},
    }


def write_artifact(*, run_id: str, node_id: str) -> Path | None:
    """Write the node's artifact to the inbox (then approved, with auto_approve).

    Failures are recorded on the run as `handoff_failed`; they never fail the node, whose
    result is already committed.
    """
    run = Run.objects.get(run_id=run_id)
    spec = RunSpec.from_snapshot(run.automation_snapshot)
    declared = spec.handoff(node_id) or {}
    config = run.automation_snapshot.get("handoff_config")
    output = RunNode.objects.filter(run=run, node_id=node_id).values_list("output", flat=True)
    try:
        dirs = handoff_dirs(spec.workspace_root, config)
        artifact = build_artifact(run, node_id, output.first(), declared)
        name = f"{artifact['handoff_id']}.json"
        target = dirs["inbox"] / name
        _atomic_write(target, artifact)
        auto_approve = (config or HANDOFF_DEFAULTS).get("auto_approve", True)
        if auto_approve:
            approved = dirs["approved"] / name
            approved.parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, approved)
            target = approved
    except (OSError, FlowgateError) as exc:
        logger.warning("handoff of run %s node %s failed: %s", run_id, node_id, exc)
        with transaction.atomic():
            lifecycle_record(run, "handoff_failed", reason=str(exc), node_id=node_id)
        return None
    with transaction.atomic():
        lifecycle_record(
            run,
            "handoff_written",
            node_id=node_id,
            handoff_id=artifact["handoff_id"],
            path=str(target),
        )
    return target
