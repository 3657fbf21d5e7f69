"""Fixtures of the automations tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workspaces_dir(settings, tmp_path) -> Path:
    """FLOWGATE_WORKSPACES_DIR for this test (in this process: pass
    `{"FLOWGATE_WORKSPACES_DIR": str(workspaces_dir)}` to a worker). Each workspace's own
    directory is `<it>/<org slug>/<workspace slug>/` (`automations.workspace_files`)."""
    path = tmp_path / "workspaces"
    path.mkdir()
    settings.FLOWGATE_WORKSPACES_DIR = path
    return path
