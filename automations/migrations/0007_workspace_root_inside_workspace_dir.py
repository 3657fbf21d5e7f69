"""Confine existing workspace roots to their workspace's own directory (issue 14).

Before, `workspace_root` had to be absolute and could be anywhere. A root already inside the
workspace's directory (`<FLOWGATE_WORKSPACES_DIR>/<org slug>/<workspace slug>/`) is kept; any
other absolute root becomes the same path *relative to* that directory (`/srv/acme` →
`srv/acme`), so the automation keeps working, confined, and never reaches the old location
again (move any artifacts there by hand: docs/operations.md). Runs started before keep their
snapshot, whose root is refused at use (`handoff_failed`) unless it lies inside.
"""

import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import migrations

logger = logging.getLogger(__name__)


def confine_roots(apps, schema_editor):
    Automation = apps.get_model("automations", "Automation")
    base = Path(os.path.realpath(settings.FLOWGATE_WORKSPACES_DIR))
    rows = Automation.objects.exclude(workspace_root="").select_related("workspace__organization")
    for automation in rows.iterator():
        workspace = automation.workspace
        home = base / workspace.organization.slug / workspace.slug
        value = automation.workspace_root
        if not os.path.isabs(value):
            continue
        normal = Path(os.path.normpath(value))
        if normal.is_relative_to(home):
            continue
        confined = str(normal).lstrip("/") or "."
        logger.warning(
            "automation %s: workspace_root %r is outside %s; now %r inside it",
            automation.automation_id,
            value,
            home,
            confined,
        )
        automation.workspace_root = confined
        automation.save(update_fields=["workspace_root"])


class Migration(migrations.Migration):

    dependencies = [
        ("automations", "0006_accountability"),
        ("governance", "0001_initial"),
    ]

    operations = [migrations.RunPython(confine_roots, migrations.RunPython.noop)]
