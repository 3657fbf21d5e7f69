"""Handoff artifacts: JSON files a node leaves for another automation (reference §2.8).

A node that declares `handoff` writes, after its result is committed, one artifact into its
automation's inbox dir under `workspace_root`, moved to the approved dir when `auto_approve`.
The root is re-resolved inside the run's workspace's own directory (`automations.workspace_files`)
and the dirs below it on every use, so they cannot escape either, and are then written
through directory fds opened one component at a time from the root with `O_NOFOLLOW` (SPEC
§10.10): a dir swapped for a symlink between the check and the write fails the write instead of
leading it outside the root.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from automations.flow import HANDOFF_DEFAULTS, handoff_dirs
from automations.lifecycle import lifecycle_record
from automations.models import Run, RunNode
from automations.run_spec import NodeSpec
from automations.workspace_files import workspace_root_path
from governance.errors import FlowgateError

logger = logging.getLogger(__name__)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@contextmanager
def _dir_below(root: Path, path: Path) -> Iterator[int]:
    """A directory fd for `path`, walked from `root` without following any symlink; missing
    components are created (as `mkdir(parents=True)` did). Raises OSError when a component is
    a symlink or not a directory, or when `path` is not below `root`."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:  # the root itself moved between the two resolutions
        raise OSError(f"{path} is not inside workspace_root {root}") from None
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            try:
                child = _open_or_create(part, fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise OSError(
                    exc.errno, f"{part!r} of {path} is a symlink or not a directory"
                ) from exc
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open_or_create(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        with suppress(FileExistsError):  # created concurrently: opened (and checked) below
            os.mkdir(name, dir_fd=dir_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _atomic_write(dir_fd: int, name: str, body: dict[str, Any]) -> None:
    """Write `name` in the directory `dir_fd` through a temp file and an atomic rename."""
    tmp = f".handoff-{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, _TMP_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(body, handle, indent=2, sort_keys=True)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(tmp, dir_fd=dir_fd)
        raise


def build_artifact(run: Run, node_id: str, output: Any, declared: dict[str, Any]) -> dict:
    content = json.dumps(output, sort_keys=True, separators=(",", ":"), default=str)
    now = timezone.now()
    return {
        "handoff_id": f"hoff-{now:%Y%m%d}-{uuid.uuid4()}",
        "source_automation_id": run.automation.automation_id,  # never changes
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
    # Only the snapshot's `handoff_config` is read, not the whole snapshot into Python.
    run = (
        Run.objects.select_related("workspace__organization", "automation")
        .defer("automation_snapshot", "automation__flow", "automation__agents")
        .annotate(handoff_config=KeyTransform("handoff_config", "automation_snapshot"))
        .get(run_id=run_id)
    )
    node, output = RunNode.objects.filter(run=run, node_id=node_id).values_list("spec", "output")[0]
    declared = NodeSpec(node).handoff or {}
    config = run.handoff_config
    try:
        root = workspace_root_path(run.workspace, run.workspace_root)
        dirs = handoff_dirs(str(root), config)
        artifact = build_artifact(run, node_id, output, declared)
        name = f"{artifact['handoff_id']}.json"
        auto_approve = (config or HANDOFF_DEFAULTS).get("auto_approve", True)
        with _dir_below(root, dirs["inbox"]) as inbox:
            _atomic_write(inbox, name, artifact)
            target = dirs["inbox"] / name
            if auto_approve:
                with _dir_below(root, dirs["approved"]) as approved:
                    os.replace(name, name, src_dir_fd=inbox, dst_dir_fd=approved)
                target = dirs["approved"] / name
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
