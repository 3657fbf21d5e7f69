"""Each workspace's own directory: where its automations' files (handoff dirs) may live.

Every workspace gets `<FLOWGATE_WORKSPACES_DIR>/<org slug>/<workspace slug>/` (slugs are
letters, digits, `-` and `_`, so they cannot climb out). An automation's `workspace_root` is a
path inside it: relative to it, or absolute and inside it. It is resolved here on every save and
every use, first lexically (so a path outside is refused without the file system being asked
anything about it: no probing for what exists elsewhere) and then with symlinks followed (so a
link cannot lead out). Another workspace's directory is outside, so no API, node or listing of
one workspace reaches another's files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings

from automations.flow.problems import Problems
from governance.models import Workspace

OUTSIDE = (
    "must be a path inside this workspace's directory {home}/ (relative to it, or absolute "
    "and inside it)"
)


def workspace_dir(workspace: Workspace) -> Path:
    """The workspace's own directory (not created here: the handoff writer creates it)."""
    base = Path(os.path.realpath(settings.FLOWGATE_WORKSPACES_DIR))
    return base / workspace.organization.slug / workspace.slug


def workspace_root_path(workspace: Workspace, value: Any) -> Path:
    """The real directory `value` names inside the workspace's directory; raises `InvalidFlow`
    (400) naming `workspace_root` when it is not a usable path inside it."""
    problems = Problems()
    home = workspace_dir(workspace)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        problems.add(None, "workspace_root", "must be a non-empty path")
        problems.raise_if_any()
    lexical = Path(os.path.normpath(os.path.join(home, value)))
    if not lexical.is_relative_to(home):
        problems.add(None, "workspace_root", OUTSIDE.format(home=home))
        problems.raise_if_any()
    real = Path(os.path.realpath(lexical))
    if not real.is_relative_to(os.path.realpath(home)):
        problems.add(None, "workspace_root", OUTSIDE.format(home=home) + " (symlinks followed)")
        problems.raise_if_any()
    return real
