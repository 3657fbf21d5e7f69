"""The Celery application shared by web processes (which enqueue) and workers (which execute).

Without DJANGO_SETTINGS_MODULE a bare `celery -A config worker` loads the production settings
(fail closed); `./flowgate run` and the test harness name their settings explicitly.
"""

import os

from celery import Celery
from celery.signals import task_postrun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("flowgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def release_database_connections(sender=None, **kwargs) -> None:
    """Close connections that are broken or past CONN_MAX_AGE after each task.

    Celery's Django fixup would otherwise close every connection around every task (a new
    PostgreSQL connection per node execution); `CELERY_DB_REUSE_MAX` turns that off and this
    applies Django's own rules instead, as a web request would. Eager calls (`task.apply()`)
    run inside the caller's transaction and are left alone, as Celery's fixup does.
    """
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
