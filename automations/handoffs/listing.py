"""Reading an automation's handoff dirs for `GET /api/automations/v2/{id}/handoffs`.

The original's listing (reference §1.4 (3)): each of the inbox, approved and archived dirs is
read up to its first 512 entries (entries of any kind count), `*.json` files that parse as a
`HandoffArtifact` (§2.8) are kept, sorted ascending by `created_at_ms`; a missing dir is `[]`.

Confinement (SPEC §10.10, issue 14). `workspace_root` is re-resolved inside the automation's
workspace's own directory (`automations.workspace_files`: a root outside it, e.g. a row saved
before confinement, is refused with the 409 below, and nothing outside is ever looked at), and
the dirs with `handoff_dirs` below it on every read (a
symlink created since the automation was saved may now lead out of `workspace_root`: the whole
request is refused with 409 `AUTOMATION_V2_HANDOFF_DIR_UNSAFE` and nothing is read). The
resolved, symlink-free dirs are then opened component by component from the root with
`O_NOFOLLOW`, and every file with `O_NOFOLLOW` too, so a symlink swapped in between the check and
the read is refused as well instead of followed. A symlinked `*.json` file is never followed; it
is skipped like any other file that is not an artifact.

Decisions beyond the original, each visible in the response:
- `skipped` counts the `*.json` entries within the cap that were not returned (unparseable,
  missing or mistyped required fields, larger than `MAX_ARTIFACT_BYTES`, not a regular file, a
  symlink); other entries (the writer's `.handoff-*.tmp` files, subdirectories) are not counted.
- `truncated` says whether a dir had more than `MAX_DIR_ENTRIES` entries.
- An automation without `workspace_root` has no handoff dirs: 200 with empty lists and
  `workspace_root: null` (the original fell back to a global root; Flowgate has none).
Reading never creates a dir or writes anything.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import stat
from pathlib import Path
from typing import Any

from automations.flow import HANDOFF_DEFAULTS, HANDOFF_DIR_KEYS, handoff_dirs
from automations.models import Automation
from automations.workspace_files import workspace_root_path
from governance.api.parsers import json_problem
from governance.errors import Conflict, InvalidFlow

logger = logging.getLogger(__name__)

# Entries read per dir, as the original (every kind of entry counts).
MAX_DIR_ENTRIES = 512
# An artifact file larger than this is skipped, so one listing reads at most ~1.5 GiB in the
# worst case instead of whatever a node wrote; the engine's artifacts are a few kB.
MAX_ARTIFACT_BYTES = 1024 * 1024

REQUIRED_STRINGS = (
    "handoff_id",
    "source_automation_id",
    "source_run_id",
    "source_node_id",
    "target_automation_id",
    "artifact_type",
)
MAX_U64 = 2**64 - 1


def _is_u64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_U64


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


# Optional fields in the original's order, each with its type check (null means absent).
OPTIONAL_FIELDS = {
    "content_path": _is_str,
    "content_digest": _is_str,
    "metadata": lambda value: True,
    "consumed_by_run_id": _is_str,
    "consumed_by_automation_id": _is_str,
    "consumed_at_ms": _is_u64,
}

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO named `x.json` must not hang the request.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class HandoffDirUnsafe(Conflict):
    """A handoff dir no longer resolves inside `workspace_root` (or its config is unusable)."""

    code = "AUTOMATION_V2_HANDOFF_DIR_UNSAFE"
    message = "A handoff directory does not resolve inside workspace_root; nothing was read"


def handoff_listing(automation: Automation) -> dict[str, Any]:
    """The original's handoffs response for `automation`, plus `skipped` and `truncated`."""
    config = effective_handoff_config(automation.handoff_config)
    root = automation.workspace_root or None
    listed: dict[str, _DirListing] = {name: _DirListing() for name in HANDOFF_DIR_KEYS}
    if root is not None:
        try:
            real_root = workspace_root_path(automation.workspace, root)
            dirs = handoff_dirs(str(real_root), automation.handoff_config)
        except InvalidFlow as exc:
            raise HandoffDirUnsafe(
                automationID=automation.automation_id, errors=exc.extra.get("errors", [])
            ) from exc
        for name, path in dirs.items():
            listed[name] = _read_dir(real_root, path, HANDOFF_DIR_KEYS[name], automation)
    counts = {name: len(listing.artifacts) for name, listing in listed.items()}
    skipped = {name: listing.skipped for name, listing in listed.items()}
    return {
        "automation_id": automation.automation_id,
        "workspace_root": root,
        "handoff_config": config,
        **{name: listing.artifacts for name, listing in listed.items()},
        "counts": {**counts, "total": sum(counts.values())},
        "skipped": {**skipped, "total": sum(skipped.values())},
        "truncated": {name: listing.truncated for name, listing in listed.items()},
    }


def effective_handoff_config(value: Any) -> dict[str, Any]:
    """Each field defaulted individually, as the original's `effective_handoff_config`."""
    config = dict(HANDOFF_DEFAULTS)
    if isinstance(value, dict):
        config.update({k: v for k, v in value.items() if k in HANDOFF_DEFAULTS and v is not None})
    return config


class _DirListing:
    def __init__(self) -> None:
        self.artifacts: list[dict[str, Any]] = []
        self.skipped = 0
        self.truncated = False


def _read_dir(root: Path, path: Path, field: str, automation: Automation) -> _DirListing:
    listing = _DirListing()
    dir_fd = _open_below(root, path, field, automation)
    if dir_fd is None:
        return listing
    try:
        names = []
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                if len(names) == MAX_DIR_ENTRIES:
                    listing.truncated = True
                    break
                names.append(entry.name)
        for name in names:
            if not name.endswith(".json"):
                continue
            artifact = _read_artifact(dir_fd, name)
            if artifact is None:
                listing.skipped += 1
            else:
                listing.artifacts.append(artifact)
    finally:
        os.close(dir_fd)
    listing.artifacts.sort(key=lambda a: (a["created_at_ms"], a["handoff_id"]))
    return listing


def _open_below(root: Path, path: Path, field: str, automation: Automation) -> int | None:
    """A directory fd for `path`, walked from `root` without following any symlink.

    None when the dir (or the root) does not exist, cannot be opened, or a component is not a
    directory; 409 when a component has become a symlink since `handoff_dirs` resolved it.
    """
    try:
        parts = path.relative_to(root).parts
    except ValueError:  # the root itself moved between the two resolutions
        raise _unsafe(automation, field, "does not resolve inside workspace_root") from None
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        _log_unreadable(root, exc)
        return None
    for part in parts:
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            symlink = exc.errno in (errno.ENOTDIR, errno.ELOOP) and _is_symlink(part, fd)
            os.close(fd)
            if symlink:
                raise _unsafe(automation, field, "a path component is a symlink") from exc
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                _log_unreadable(path, exc)
            return None
        os.close(fd)
        fd = child
    return fd


def _unsafe(automation: Automation, field: str, message: str) -> HandoffDirUnsafe:
    error = {"node_id": None, "field": f"handoff_config.{field}", "message": message}
    return HandoffDirUnsafe(automationID=automation.automation_id, errors=[error])


def _log_unreadable(path: Path, exc: OSError) -> None:
    logger.warning("handoff dir %s is not readable, listed as empty: %s", path, exc)


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _read_artifact(dir_fd: int, name: str) -> dict[str, Any] | None:
    """The artifact in `name`, or None when it is not one (or not safe to read)."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:  # a symlink (ELOOP), vanished, unreadable
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ARTIFACT_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(MAX_ARTIFACT_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(raw) > MAX_ARTIFACT_BYTES:
        return None
    return parse_artifact(raw)


def parse_artifact(raw: bytes) -> dict[str, Any] | None:
    """`raw` as a `HandoffArtifact` (reference §2.8), or None.

    Required: the six id/type strings and `created_at_ms` (an unsigned integer). Optional
    fields are omitted when absent or null; unknown keys are dropped, as the original's serde
    round trip does. JSON the response could not render (NaN, unpaired surrogates, nesting
    beyond 32 levels) is refused here rather than failing the request.
    """
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse, parse_float=_finite)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or json_problem(data) is not None:
        return None
    artifact: dict[str, Any] = {}
    for key in REQUIRED_STRINGS:
        if not isinstance(data.get(key), str):
            return None
        artifact[key] = data[key]
    if not _is_u64(data.get("created_at_ms")):
        return None
    artifact["created_at_ms"] = data["created_at_ms"]
    for key, valid in OPTIONAL_FIELDS.items():
        value = data.get(key)
        if value is None:
            continue
        if not valid(value):
            return None
        artifact[key] = value
    return artifact


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value
