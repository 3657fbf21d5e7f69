"""The Celery application shared by web processes (which enqueue) and workers (which execute).

Without DJANGO_SETTINGS_MODULE a bare `celery -A config worker` loads the production settings
(fail closed); `./flowgate run` and the test harness name their settings explicitly.
"""

import logging.config
import os

from celery import Celery
from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun
from django.conf import settings
from django.db import close_old_connections
from structlog.contextvars import bind_contextvars, clear_contextvars

from config.log_context import TASK_HEADER, current_request_id

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


@setup_logging.connect
def use_django_logging(**kwargs) -> None:
    """Workers log through settings.LOGGING (JSON with run and node ids), not Celery's own
    plain-text root handler: connecting this signal is how Celery is told to leave logging
    alone."""
    logging.config.dictConfig(settings.LOGGING)


@before_task_publish.connect
def send_request_id(headers=None, **kwargs) -> None:
    """A task published while serving a request carries the request's id to the worker."""
    request_id = current_request_id()
    if request_id and headers is not None:
        headers[TASK_HEADER] = request_id


@task_prerun.connect
def bind_task_context(task_id=None, task=None, **kwargs) -> None:
    """Each task logs with its own context only: its id, name and the publisher's request id
    (the engine adds run_id / node_id / workspace around node execution)."""
    request = getattr(task, "request", None)
    if getattr(request, "is_eager", False):
        return  # runs inside its caller, whose context it shares
    clear_contextvars()
    context = {"task_id": task_id, "task": getattr(task, "name", None)}
    request_id = getattr(request, TASK_HEADER, None)
    if request_id:
        context["request_id"] = request_id
    bind_contextvars(**context)
