"""Handoff dirs: the workspace root and the inbox/approved/archived dirs confined below it.

Handoff dirs must lie strictly below the workspace root and be distinct from one another.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from automations.flow.problems import Problems, Report
from automations.flow.values import JSON, reject_unknown_keys

HANDOFF_DEFAULTS: JSON = {
    "inbox_dir": "shared/handoffs/inbox",
    "approved_dir": "shared/handoffs/approved",
    "archived_dir": "shared/handoffs/archived",
    "auto_approve": True,
}
# handoff_dirs() key → handoff_config key.
HANDOFF_DIR_KEYS = {"inbox": "inbox_dir", "approved": "approved_dir", "archived": "archived_dir"}


def handoff_dirs(workspace_root: Any, handoff_config: Any = None) -> dict[str, Path]:
    """The resolved `inbox`/`approved`/`archived` dirs of an automation, checked again at use.

    Re-resolving when handoffs are read or moved (not only at save) matters because a symlink
    created after validation could otherwise lead outside the workspace root (SPEC §10.10).
    `handoff_config=None` means the defaults, as the original's `effective_handoff_config`.
    Raises `InvalidFlow` naming the offending `handoff_config.*` field or `workspace_root`.
    """
    problems = Problems()
    report = problems.reporter(None)
    config = _handoff_config(handoff_config, report)
    dirs = _resolve_handoff_dirs(workspace_root, config, report)
    problems.raise_if_any()
    return dirs


def normalise_handoff(workspace_root: Any, handoff_config: Any, problems: Problems) -> JSON | None:
    """The handoff config with defaults filled in (None stays None), its dirs checked on disk."""
    report = problems.reporter(None)
    if handoff_config is None:
        if workspace_root not in (None, ""):
            _workspace_root(workspace_root, report)
        return None
    config = _handoff_config(handoff_config, report)
    _resolve_handoff_dirs(workspace_root, config, report)
    return config


def _handoff_config(value: Any, report: Report) -> JSON:
    """Each field defaulted individually, as the original's `AutomationHandoffConfig`."""
    if value is None:
        return dict(HANDOFF_DEFAULTS)
    if not isinstance(value, Mapping):
        report("handoff_config", "must be an object")
        return dict(HANDOFF_DEFAULTS)
    reject_unknown_keys(value, HANDOFF_DEFAULTS.keys(), "handoff_config", report)
    given = {key: v for key, v in value.items() if key in HANDOFF_DEFAULTS and v is not None}
    config = {**HANDOFF_DEFAULTS, **given}
    if not isinstance(config["auto_approve"], bool):
        report("handoff_config.auto_approve", "must be true or false")
    return config


def _workspace_root(value: Any, report: Report) -> Path | None:
    """The real (symlink-free) workspace root, or None after reporting why it is unusable."""
    if not isinstance(value, str) or not value:
        report(
            "workspace_root",
            "is required (a path inside the workspace's directory) when handoffs are configured",
        )
        return None
    if "\x00" in value or not os.path.isabs(value):
        report("workspace_root", "must be an absolute path")
        return None
    return Path(os.path.realpath(value))


def _resolve_handoff_dirs(workspace_root: Any, config: JSON, report: Report) -> dict[str, Path]:
    root = _workspace_root(workspace_root, report)
    dirs: dict[str, Path] = {}
    for name, key in HANDOFF_DIR_KEYS.items():
        resolved = _resolve_dir(root, config[key], f"handoff_config.{key}", report)
        if resolved is None:
            continue
        clash = next((other for other, path in dirs.items() if path == resolved), None)
        if clash:
            report(f"handoff_config.{key}", f"is the same directory as {HANDOFF_DIR_KEYS[clash]}")
        dirs[name] = resolved
    return dirs


def _resolve_dir(root: Path | None, value: Any, path: str, report: Report) -> Path | None:
    """`root/value` with symlinks resolved, refused unless strictly below the real root.

    The syntax checks run even without a usable root so every problem is reported at once.
    """
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        report(path, "must be a non-empty relative path")
        return None
    if os.path.isabs(value) or value.startswith(("\\", "~")):
        report(path, "must be relative to workspace_root, not absolute")
        return None
    if ".." in re.split(r"[\\/]+", value):
        report(path, "must not contain a '..' component")
        return None
    if root is None:
        return None
    resolved = Path(os.path.realpath(root / value))
    if resolved == root or not resolved.is_relative_to(root):
        report(path, "must resolve to a directory inside workspace_root (symlinks are followed)")
        return None
    return resolved
