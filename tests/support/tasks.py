"""Tasks that exist only for the test suite; workers started by `CeleryWorker` import them (-I).

Never imported by app code, so production workers do not know them.
"""

from __future__ import annotations

import os
import time

from celery import shared_task


@shared_task(name="tests.support.tasks.create_organization")
def create_organization(slug: str, *, sleep_after: float = 0.0) -> None:
    """Create an Organization (name = "pid:<worker child pid>"), then optionally keep busy."""
    from governance.models import Organization

    Organization.objects.create(slug=slug, name=f"pid:{os.getpid()}")
    if sleep_after:
        time.sleep(sleep_after)


@shared_task(name="tests.support.tasks.record_setting")
def record_setting(slug: str, setting: str) -> None:
    """Create an Organization whose name is the worker's `settings.<setting>` (as a string)."""
    from django.conf import settings

    from governance.models import Organization

    Organization.objects.create(slug=slug, name=str(getattr(settings, setting)))
