"""Production settings: refuse to start without real secrets; secure cookies and HSTS."""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import env
from governance.audit_keys import parse_audit_keys

DEBUG = env.bool("DEBUG", default=False)

if len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure"):  # noqa: F405
    raise ImproperlyConfigured("SECRET_KEY must be set to a random value of 32+ characters.")
if not AUDIT_HMAC_KEYS:  # noqa: F405
    raise ImproperlyConfigured("AUDIT_HMAC_KEYS must be set (keyid:hexsecret[,...]).")
# Parsed now, so a malformed or short key stops the process at start, not at the first audited
# change. 32 bytes: HMAC-SHA256's own output size.
parse_audit_keys(AUDIT_HMAC_KEYS, min_bytes=32)  # noqa: F405
# The embedded SQLite database and filesystem broker are for one machine only.
for _name in ("DATABASE_URL", "REDIS_URL"):
    if not env.str(_name, default=""):
        raise ImproperlyConfigured(f"{_name} must be set in production.")

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
