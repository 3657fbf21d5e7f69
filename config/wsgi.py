"""WSGI entry point (gunicorn config.wsgi).

Without DJANGO_SETTINGS_MODULE this serves the production settings, which refuse to start
without real secrets: a server started bare fails closed instead of running on dev keys.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()
