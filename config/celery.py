"""The Celery application shared by web processes (which enqueue) and workers (which execute).

Without DJANGO_SETTINGS_MODULE a bare `celery -A config worker` loads the production settings
(fail closed); `./flowgate run` and the test harness name their settings explicitly.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("flowgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
